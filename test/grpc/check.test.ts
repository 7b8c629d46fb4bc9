/**
 * verdict.v1.Authorization over a real socket: `verdict serve` runs as a child process on a free
 * port and is called with a grpc-js client. These tests only read, so they share one server.
 */
import { expect } from 'chai';
import { toProtoCheckRequest, unary } from '../../src/grpc/client.js';
import { cleanupServerProcesses, startServer, type VerdictProcess } from '../support/server-process.js';
import { authzClient, check, closeClients, docRequest, getPolicySet, policyDir, UUID, type AuthzClient, type CheckResponse } from './fixtures.js';
import { attributesToStruct } from '../../src/grpc/struct.js';

describe('gRPC Authorization service (real server process)', function () {
  this.timeout(20_000);
  let server: VerdictProcess;
  let client: AuthzClient;
  let dir: string;

  before(async () => {
    dir = policyDir();
    server = await startServer({ policies: dir });
    client = authzClient(server.address);
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('binds a free port and logs it in the "verdict serving" line', () => {
    expect(server.port).to.be.greaterThan(0);
    expect(server.address).to.equal(`127.0.0.1:${server.port}`);
    const line = server.findLog('verdict serving')!;
    expect(line).to.include({ policies: dir, events: false });
    expect(line.revision).to.match(/^sha256:/);
  });

  describe('Check', () => {
    it('allows: an employee reads a document', async () => {
      const res = await check(client, docRequest('read'));
      expect(res).to.include({ decision: 'EFFECT_ALLOW', allowed: true, policy: 'document.yaml', rule: 'employees-read', reason: 'RULE_ALLOW' });
      expect(res.errors ?? []).to.deep.equal([]);
      expect(res.explanation ?? []).to.deep.equal([], 'no explanation unless asked');
    });

    it('denies with RULE_DENY when a deny rule applies', async () => {
      const res = await check(client, docRequest('read', { attributes: { suspended: true } }));
      expect(res).to.include({ decision: 'EFFECT_DENY', policy: 'document.yaml', rule: 'deny-suspended', reason: 'RULE_DENY' });
      expect(res.allowed ?? false).to.equal(false);
    });

    it('denies with NO_MATCHING_RULE when the type has policies but no rule applies', async () => {
      const res = await check(client, docRequest('delete'));
      expect(res).to.include({ decision: 'EFFECT_DENY', reason: 'NO_MATCHING_RULE' });
      expect(res.allowed ?? false).to.equal(false);
      expect(res.policy ?? '').to.equal('');
      expect(res.rule ?? '').to.equal('');
    });

    it('denies an unknown resource type with NO_POLICY: a normal decision, not an error', async () => {
      const res = await check(client, { subject: { id: 'alice', roles: ['admin', 'employee'] }, action: 'read', resource: { type: 'spaceship', id: 'x' } });
      expect(res).to.include({ decision: 'EFFECT_DENY', reason: 'NO_POLICY' });
      expect(res.allowed ?? false).to.equal(false);
      expect(res.decisionId).to.match(UUID);
      expect(res.errors ?? []).to.deep.equal([]);
    });

    it('explain=true returns every rule considered with its outcome', async () => {
      const res = await check(client, docRequest('read'), { explain: true });
      expect(res.reason).to.equal('RULE_ALLOW');
      const byRule = Object.fromEntries((res.explanation ?? []).map((t) => [t.rule, t]));
      expect(Object.keys(byRule)).to.have.members(['deny-suspended', 'employees-read', 'every-kind', 'count-above-three']);
      expect(byRule['employees-read']).to.include({ policy: 'document.yaml', effect: 'allow', outcome: 'RULE_OUTCOME_APPLIED' });
      expect(byRule['deny-suspended']).to.include({ effect: 'deny', outcome: 'RULE_OUTCOME_CONDITION_FALSE' });
      expect(byRule['every-kind']).to.include({ outcome: 'RULE_OUTCOME_ACTION_MISMATCH' });
      expect(byRule['every-kind']!.detail).to.contain('inspect');

      const folder = await check(client, { subject: { id: 'bob', roles: ['employee'] }, action: 'read', resource: { type: 'folder' } }, { explain: true });
      expect(folder.reason).to.equal('NO_MATCHING_RULE');
      expect(folder.explanation).to.have.length(1);
      expect(folder.explanation![0]).to.include({ policy: 'folders/folder.yaml', rule: 'admins-manage', outcome: 'RULE_OUTCOME_ROLE_MISMATCH' });
    });

    it('reports condition errors in errors[] (and as CONDITION_ERROR in the explanation)', async () => {
      const res = await check(client, docRequest('count', {}, { attributes: { count: 'many' } }), { explain: true });
      expect(res).to.include({ decision: 'EFFECT_DENY', reason: 'NO_MATCHING_RULE' });
      expect(res.errors).to.have.length(1);
      expect(res.errors![0]).to.include({ policy: 'document.yaml', rule: 'count-above-three' });
      expect(res.errors![0]!.message).to.be.a('string').and.not.equal('');
      expect(res.explanation!.find((t) => t.rule === 'count-above-three')).to.include({ outcome: 'RULE_OUTCOME_CONDITION_ERROR' });

      const ok = await check(client, docRequest('count', {}, { attributes: { count: 4 } }));
      expect(ok).to.include({ allowed: true, rule: 'count-above-three' });
      expect(ok.errors ?? []).to.deep.equal([]);
    });

    it('gives every decision a unique UUID decisionId', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, () => check(client, docRequest('read'))));
      const ids = results.map((r) => r.decisionId);
      for (const id of ids) expect(id).to.match(UUID);
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it('returns the revision that GetPolicySet reports', async () => {
      const [res, set] = await Promise.all([check(client, docRequest('read')), getPolicySet(client)]);
      expect(res.revision).to.match(/^sha256:[0-9a-f]+$/);
      expect(res.revision).to.equal(set.revision);
    });

    it('passes Struct attributes of every kind (string, number, bool, null, list, nested map) to conditions', async () => {
      const req = {
        subject: { id: 'carol', attributes: { s: 'text', n: 42.5, b: true, z: null, l: [1, 'two', false] } },
        action: 'inspect',
        resource: { type: 'document', attributes: { m: { inner: { k: 'v', list: [1, 2] } } } },
        context: { ip: '10.1.2.3' },
      };
      const res = await check(client, req);
      expect(res, JSON.stringify(res)).to.include({ allowed: true, rule: 'every-kind' });

      // Each value matters: change any one and the rule no longer applies.
      const variants: [string, (r: typeof req) => void][] = [
        ['string', (r) => (r.subject.attributes.s = 'other')],
        ['number as string', (r) => ((r.subject.attributes as Record<string, unknown>).n = '42.5')],
        ['bool', (r) => (r.subject.attributes.b = false)],
        ['null', (r) => ((r.subject.attributes as Record<string, unknown>).z = 0)],
        ['list', (r) => (r.subject.attributes.l = [1, 'two', true])],
        ['nested map', (r) => (r.resource.attributes.m.inner.k = 'w')],
        ['list in a nested map', (r) => (r.resource.attributes.m.inner.list = [1, 3])],
        ['context', (r) => (r.context.ip = '10.1.2.4')],
      ];
      for (const [what, change] of variants) {
        const copy = structuredClone(req);
        change(copy);
        const denied = await check(client, copy);
        expect(denied.allowed ?? false, `changed ${what}`).to.equal(false);
      }
    });

    it('decides the same when the caller sets a request_id', async () => {
      const res = await check(client, docRequest('read'), { requestId: 'req-123' });
      expect(res.allowed).to.equal(true);
    });
  });

  describe('CheckBatch', () => {
    it('answers every item in request order, mixing allow and deny, under one revision', async () => {
      const items = [
        { action: 'read', type: 'document' },
        { action: 'delete', type: 'document' },
        { action: 'read', type: 'folder' },
        { action: 'read', type: 'spaceship' },
        { action: 'read', type: 'document' },
      ];
      const res = await unary<{ results: CheckResponse[]; revision: string }>(client, 'CheckBatch', {
        subject: { id: 'alice', roles: ['employee'], attributes: attributesToStruct({}) },
        items: items.map((i, n) => ({ action: { name: i.action }, resource: { type: i.type, id: `r${n}` } })),
        explain: false,
        requestId: 'batch-1',
      });
      expect(res.results.map((r) => r.reason)).to.deep.equal(['RULE_ALLOW', 'NO_MATCHING_RULE', 'NO_MATCHING_RULE', 'NO_POLICY', 'RULE_ALLOW']);
      expect(res.results.map((r) => r.allowed ?? false)).to.deep.equal([true, false, false, false, true]);
      const set = await getPolicySet(client);
      expect(res.revision).to.equal(set.revision);
      for (const r of res.results) expect(r.revision).to.equal(res.revision);
      const ids = res.results.map((r) => r.decisionId);
      for (const id of ids) expect(id).to.match(UUID);
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it('applies the batch subject and context to every item, and explains each on request', async () => {
      const res = await unary<{ results: CheckResponse[] }>(client, 'CheckBatch', {
        subject: { id: 'dave', roles: ['employee'], attributes: attributesToStruct({ suspended: true }) },
        items: [{ action: { name: 'read' }, resource: { type: 'document' } }, { action: { name: 'read' }, resource: { type: 'folder' } }],
        explain: true,
      });
      expect(res.results[0]).to.include({ reason: 'RULE_DENY', rule: 'deny-suspended' });
      expect(res.results[1]).to.include({ reason: 'NO_MATCHING_RULE' });
      expect(res.results[0]!.explanation).to.not.be.empty;
      expect(res.results[1]!.explanation).to.not.be.empty;
    });
  });

  describe('GetPolicySet', () => {
    it('describes the live set: revision, loadedAt, policies, resource types, rule count; no failure', async () => {
      const before = Date.now();
      const set = await getPolicySet(client);
      expect(set.revision).to.equal(server.findLog('verdict serving')!.revision);
      expect(set.source).to.equal(dir);
      const loadedAtMs = Number(set.loadedAt!.seconds) * 1000 + (set.loadedAt!.nanos ?? 0) / 1e6;
      expect(loadedAtMs).to.be.within(before - 60_000, before + 1000);
      expect(set.policies!.map((p) => ({ ...p, derivedRoles: p.derivedRoles ?? 0, variables: p.variables ?? 0 }))).to.have.deep.members([
        { id: 'document.yaml', resource: 'document', rules: 4, derivedRoles: 0, variables: 0 },
        { id: 'folders/folder.yaml', resource: 'folder', rules: 1, derivedRoles: 0, variables: 0 },
      ]);
      expect(set.resourceTypes).to.have.members(['document', 'folder']);
      expect(set.ruleCount).to.equal(5);
      expect(set.lastFailure).to.equal(undefined);
    });
  });

  it('serves requests built by toProtoCheckRequest with explicit empty attribute maps', async () => {
    const res = await unary<CheckResponse>(client, 'Check', toProtoCheckRequest({ subject: { id: 'x', roles: ['employee'], attributes: {} }, action: 'read', resource: { type: 'document', attributes: {} }, context: {} }));
    expect(res.allowed).to.equal(true);
  });
});
