/**
 * The AuthZEN Access Evaluations API over a real `verdict serve --http` process: the certification
 * scenario's batch requests, default values and their merging, every evaluations semantic with
 * what the answer holds after a short-circuit, bad items, and the limits of a call.
 */
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, writeFile } from '../support/server-process.js';
import { post, type Target } from './helpers/client.js';
import { CERTIFICATION_POLICY, SPEC_EXAMPLES_POLICY, startAuthzen } from './helpers/server.js';

const EVALUATIONS = '/access/v1/evaluations';
const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const record = (id: string, status?: string) => ({ type: 'record', id, ...(status ? { properties: { status } } : {}) });

type Item = { decision: boolean; context?: Record<string, unknown> & { error?: { status: number; message: string } } };

describe('http: AuthZEN access evaluations (real server process)', function () {
  this.timeout(30_000);
  let target: Target;

  before(async () => {
    const policies = makeTempDir('authzen-batch');
    writeFile(policies, 'record.yaml', CERTIFICATION_POLICY);
    writeFile(policies, 'spec.yaml', SPEC_EXAMPLES_POLICY);
    const server = await startAuthzen({ policies, config: { limits: { maxBatchItems: 6 }, logDecisions: true } });
    target = { port: server.httpPort };
  });
  after(cleanupServerProcesses);

  const evaluate = async (body: unknown): Promise<Item[]> => {
    const a = await post(target, EVALUATIONS, body);
    expect(a.status, a.text).to.equal(200);
    expect(a.json).not.to.have.property('decision');
    return a.json.evaluations as Item[];
  };
  const decisions = (items: Item[]) => items.map((i) => i.decision);

  describe('certification requests', () => {
    it('a batch with an evaluations array and defaults', async () => {
      const items = await evaluate({ subject: alice, action: { name: 'read' }, evaluations: [{ resource: record('record-1') }, { resource: record('record-2') }] });
      expect(decisions(items)).to.deep.equal([true, true]);
    });

    it('answers in request order (bob: read yes, write no)', async () => {
      const items = await evaluate({ subject: bob, resource: record('record-1'), evaluations: [{ action: { name: 'read' } }, { action: { name: 'write' } }] });
      expect(decisions(items)).to.deep.equal([true, false]);
      expect(items[0]!.context).to.include({ rule: 'anyone-reads' });
    });

    it('evaluates resource properties per item', async () => {
      const items = await evaluate({ subject: alice, action: { name: 'write' }, evaluations: [{ resource: record('record-1', 'active') }, { resource: record('record-2', 'archived') }] });
      expect(decisions(items)).to.deep.equal([true, false]);
    });

    it('evaluates subject properties per item', async () => {
      const items = await evaluate({ action: { name: 'write' }, resource: record('record-2', 'archived'), evaluations: [{ subject: alice }, { subject: { ...bob, properties: { role: 'admin' } } }] });
      expect(decisions(items)).to.deep.equal([false, true]);
    });

    it('fully specified evaluations, no defaults', async () => {
      const items = await evaluate({
        evaluations: [
          { subject: alice, action: { name: 'read' }, resource: record('record-1') },
          { subject: bob, action: { name: 'write' }, resource: record('record-1') },
        ],
      });
      expect(decisions(items)).to.deep.equal([true, false]);
    });

    it('a top-level context applies unless an item has its own, which replaces it as a whole', async () => {
      // soft-deletes reads context.action.soft: from the default action's properties in item 1,
      // from the item's own action in item 2, and an item context does not bring the default's keys.
      const items = await evaluate({
        subject: alice,
        action: { name: 'delete', properties: { soft: true } },
        context: { time: '2025-06-27T18:03-07:00' },
        evaluations: [{ resource: record('record-1') }, { resource: record('record-2'), action: { name: 'delete', properties: { soft: false } }, context: { source: 'batch-override' } }],
      });
      expect(decisions(items)).to.deep.equal([true, false]);
    });

    it('merges required identifiers from the default entity, never its properties', async () => {
      const items = await evaluate({
        subject: alice,
        action: { name: 'write' },
        resource: { type: 'record', properties: { status: 'archived' } },
        evaluations: [{ resource: { id: 'record-1', properties: { status: 'active' } } }, { resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } }, { resource: { id: 'record-3' } }],
      });
      // record-3 takes type "record" from the default but not its archived status.
      expect(decisions(items)).to.deep.equal([true, false, true]);
    });
  });

  describe("the specification's examples, as printed", () => {
    const aliceSpec = { type: 'user', id: 'alice@example.com' };
    const time = { time: '2024-05-31T15:22-07:00' };

    it('Access Evaluation request (account 123, can_read with method GET)', async () => {
      const a = await post(target, '/access/v1/evaluation', {
        subject: { type: 'user', id: 'alice@example.com' },
        resource: { type: 'account', id: '123' },
        action: { name: 'can_read', properties: { method: 'GET' } },
        context: { time: '1985-10-26T01:22-07:00' },
      });
      expect(a.status).to.equal(200);
      expect(a.json.decision).to.equal(true);
      expect(a.json.context.rule).to.equal('alice-reads-with-get');
    });

    it('three requests with no default values', async () => {
      const items = await evaluate({
        evaluations: ['boxcarring.md', 'subject-search.md', 'resource-search.md'].map((id) => ({ subject: aliceSpec, action: { name: 'can_read' }, resource: { type: 'document', id }, context: time })),
      });
      expect(decisions(items)).to.deep.equal([true, true, true]);
    });

    it('a default subject and context, the third item overriding the action', async () => {
      const items = await evaluate({
        subject: aliceSpec,
        context: time,
        action: { name: 'can_read' },
        evaluations: [{ resource: { type: 'document', id: 'boxcarring.md' } }, { resource: { type: 'document', id: 'subject-search.md' } }, { action: { name: 'can_edit' }, resource: { type: 'document', id: 'resource-search.md' } }],
      });
      expect(decisions(items)).to.deep.equal([true, true, false]);
    });

    it('the three semantics example (1 and 3 readable, 2 of a type no policy governs)', async () => {
      const body = (semantic: string) => ({
        subject: aliceSpec,
        action: { name: 'read' },
        options: { evaluations_semantic: semantic },
        evaluations: [{ resource: { type: 'document', id: '1' } }, { resource: { type: 'invoice', id: '2' } }, { resource: { type: 'document', id: '3' } }],
      });
      expect(decisions(await evaluate(body('execute_all')))).to.deep.equal([true, false, true]);
      expect(decisions(await evaluate(body('deny_on_first_deny')))).to.deep.equal([true, false]);
      expect(decisions(await evaluate(body('permit_on_first_permit')))).to.deep.equal([true]);
    });
  });

  describe('without items it is one evaluation', () => {
    for (const [name, extra] of [['no evaluations key', {}], ['an empty evaluations array', { evaluations: [] }], ['evaluations null', { evaluations: null }]] as const) {
      it(name, async () => {
        const a = await post(target, EVALUATIONS, { subject: alice, action: { name: 'read' }, resource: record('record-1'), ...extra });
        expect(a.status).to.equal(200);
        expect(a.json.decision).to.equal(true);
        expect(a.json).not.to.have.property('evaluations');
      });
    }

    it('and a missing field is then a 400, not an item error', async () => {
      const a = await post(target, EVALUATIONS, { subject: alice, action: { name: 'read' }, evaluations: [] });
      expect(a.status).to.equal(400);
      expect(a.json.error.message).to.equal('resource: is required');
    });
  });

  describe('a bad item is decision false with context.error, not a failed call', () => {
    it('answers every item; the bad ones say why', async () => {
      const items = await evaluate({
        subject: alice,
        action: { name: 'read' },
        evaluations: [{ resource: record('record-1') }, {}, { resource: { type: 'record' } }, 7, { resource: record('record-9'), subject: { id: 'x', type: 5 } }, { resource: record('record-2') }],
      });
      expect(decisions(items)).to.deep.equal([true, false, false, false, false, true]);
      expect(items[1]!.context!.error).to.deep.equal({ status: 400, code: 'INVALID_REQUEST', message: 'resource: is required' });
      expect(items[2]!.context!.error!.message).to.equal('resource.id: is required');
      expect(items[3]!.context!.error!.message).to.equal('evaluation: must be an object');
      expect(items[4]!.context!.error!.message).to.equal('subject.type: must be a string');
      expect(items[0]!.context).to.have.property('decision_id');
      expect(items[1]!.context).not.to.have.property('decision_id');
    });
  });

  describe('evaluations semantics', () => {
    // record-1: alice may write; record-2 archived: she may not.
    const ALLOW = { resource: record('record-1') };
    const DENY = { resource: record('record-2', 'archived') };
    const BAD = { resource: { type: 'record' } };
    const call = (semantic: string | undefined, evaluations: unknown[]) => evaluate({ subject: alice, action: { name: 'write' }, ...(semantic ? { options: { evaluations_semantic: semantic } } : {}), evaluations });

    it('execute_all (the default) answers every item', async () => {
      expect(decisions(await call(undefined, [ALLOW, DENY, ALLOW, DENY]))).to.deep.equal([true, false, true, false]);
      expect(decisions(await call('execute_all', [DENY, ALLOW, DENY]))).to.deep.equal([false, true, false]);
    });

    it('deny_on_first_deny stops at the first deny and answers up to it', async () => {
      expect(decisions(await call('deny_on_first_deny', [ALLOW, ALLOW, DENY, ALLOW, DENY]))).to.deep.equal([true, true, false]);
      expect(decisions(await call('deny_on_first_deny', [ALLOW, ALLOW]))).to.deep.equal([true, true]);
      expect(decisions(await call('deny_on_first_deny', [DENY, ALLOW]))).to.deep.equal([false]);
    });

    it('deny_on_first_deny counts a bad item as the first deny', async () => {
      const items = await call('deny_on_first_deny', [ALLOW, BAD, ALLOW, DENY]);
      expect(decisions(items)).to.deep.equal([true, false]);
      expect(items[1]!.context!.error!.message).to.equal('resource.id: is required');
    });

    it('permit_on_first_permit stops at the first permit; bad items before it are answered', async () => {
      expect(decisions(await call('permit_on_first_permit', [DENY, DENY, ALLOW, DENY, ALLOW]))).to.deep.equal([false, false, true]);
      expect(decisions(await call('permit_on_first_permit', [DENY, DENY]))).to.deep.equal([false, false]);
      const items = await call('permit_on_first_permit', [BAD, DENY, ALLOW, ALLOW]);
      expect(decisions(items)).to.deep.equal([false, false, true]);
      expect(items[0]!.context).to.have.property('error');
    });

    it('an unknown semantic is a 400 naming the three', async () => {
      const a = await post(target, EVALUATIONS, { subject: alice, action: { name: 'read' }, options: { evaluations_semantic: 'first_applicable' }, evaluations: [ALLOW] });
      expect(a.status).to.equal(400);
      expect(a.json.error.message).to.equal('options.evaluations_semantic: must be one of execute_all, deny_on_first_deny, permit_on_first_permit (got "first_applicable")');
    });

    it('explains every item with options.explain', async () => {
      const items = await evaluate({ subject: alice, action: { name: 'write' }, options: { explain: true }, evaluations: [ALLOW, DENY] });
      for (const i of items) expect(i.context!.explanation).to.be.an('array').that.is.not.empty;
    });
  });

  describe('limits of a call', () => {
    it('more items than limits.maxBatchItems is a 400', async () => {
      const a = await post(target, EVALUATIONS, { subject: alice, action: { name: 'read' }, evaluations: Array.from({ length: 7 }, () => ({ resource: record('record-1') })) });
      expect(a.status).to.equal(400);
      expect(a.json.error.message).to.equal('evaluations: has 7 items; at most 6 allowed (limits.maxBatchItems)');
    });

    it('evaluations that are not a list is a 400', async () => {
      const a = await post(target, EVALUATIONS, { subject: alice, action: { name: 'read' }, evaluations: { resource: record('record-1') } });
      expect(a.status).to.equal(400);
      expect(a.json.error.message).to.equal('evaluations: must be a list of evaluation objects');
    });
  });
});
