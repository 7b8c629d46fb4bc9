/**
 * Property-based fuzzing of the AuthZEN adapter (src/http/authzen-*.ts) over the example policy
 * set, in process: arbitrary JSON bodies and mutated realistic requests. Properties: every body
 * gets a decision or a 400 (never another exception); an accepted request is decided exactly as
 * the engine decides the request a reference mapping builds from it (so no ALLOW the reference
 * would deny); evaluations answers obey their semantics. VERDICT_FUZZ_RUNS raises the runs (make fuzz).
 */
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { decide, InvalidRequestError, parseCheckRequest, type CheckRequest } from '../../src/engine/index.js';
import { AuthzenApi } from '../../src/http/authzen-api.js';
import { HttpError } from '../../src/http/errors.js';
import { DISCARDING_SINK } from '../../src/service/decision-record.js';
import { DecisionService } from '../../src/service/decision-service.js';
import { PolicyStore } from '../../src/server/policy-store.js';
import { REPO_ROOT } from '../support/server-process.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 300);
const limits = DEFAULT_CONFIG.limits;
const call = { requestId: 'fuzz', caller: undefined };

type Json = Record<string, unknown>;

/** Realistic pieces: the example policies' vocabulary, so mutations reach the rules. */
const roles = fc.subarray(['employee', 'admin', 'auditor', 'editor', 'viewer', 'contractor']);
const subjectArb = fc.record({
  type: fc.constantFrom('user', 'service'),
  id: fc.constantFrom('alice', 'bob', 'carol', 'dave'),
  properties: fc.record({ roles, department: fc.constantFrom('engineering', 'legal', 'it'), clearance: fc.integer({ min: 0, max: 4 }), suspended: fc.boolean() }, { requiredKeys: ['roles'] }),
});
const resourceArb = fc.record({
  type: fc.constantFrom('document', 'folder', 'report', 'invoice'),
  id: fc.string({ minLength: 1, maxLength: 8 }),
  properties: fc.record(
    { owner: fc.constantFrom('alice', 'bob', 'carol'), department: fc.constantFrom('engineering', 'legal'), classification: fc.integer({ min: 0, max: 4 }), status: fc.constantFrom('draft', 'published'), legalHold: fc.boolean(), viewers: fc.array(fc.constantFrom('alice', 'bob', 'carol'), { maxLength: 3 }) },
    { requiredKeys: [] },
  ),
});
const actionArb = fc.record({ name: fc.constantFrom('read', 'edit', 'delete', 'publish', 'list', 'create', 'report:run', 'report:export'), properties: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })), { nil: undefined }) });
const contextArb = fc.option(fc.record({ ip: fc.constantFrom('10.20.0.7', '203.0.113.9'), network: fc.constantFrom('corp', 'home') }, { requiredKeys: [] }), { nil: undefined });
const requestArb = fc.record({ subject: subjectArb, action: actionArb, resource: resourceArb, context: contextArb }, { requiredKeys: ['subject', 'action', 'resource'] });

const REPLACEMENTS: unknown[] = [undefined, null, '', 0, -1, 1e308, true, [], {}, 'x'.repeat(2000), [''], JSON.parse('{"__proto__":{"roles":["admin"]}}'), ['admin'], 'admin', { soft: true }];

/** One change: the key at `pick` (of all keys, depth first) removed, or replaced by a hostile value. */
function mutate(body: Json, pick: number, replacement: number): Json {
  const copy = JSON.parse(JSON.stringify(body)) as Json;
  const paths: string[][] = [];
  const walk = (node: unknown, at: string[]) => {
    if (node && typeof node === 'object' && !Array.isArray(node)) for (const [k, v] of Object.entries(node)) (paths.push([...at, k]), walk(v, [...at, k]));
  };
  walk(copy, []);
  const target = paths[pick % paths.length]!;
  let parent: Json = copy;
  for (const k of target.slice(0, -1)) parent = parent[k] as Json;
  const key = target[target.length - 1]!;
  const v = REPLACEMENTS[replacement % REPLACEMENTS.length];
  if (v === undefined) delete parent[key];
  else parent[key] = v;
  return copy;
}

/** The reference mapping, written apart from src/http: the AuthZEN request as Verdict's request. */
function reference(body: Json): CheckRequest {
  const s = body.subject as Json;
  const a = body.action as Json;
  const r = body.resource as Json;
  const props = { ...((s.properties as Json | undefined) ?? {}) };
  const roleList = props.roles;
  delete props.roles;
  let context = body.context as Json | undefined;
  if (a.properties !== undefined && a.properties !== null) context = { ...(context ?? {}), action: a.properties };
  return parseCheckRequest({ subject: { type: s.type, id: s.id, roles: roleList ?? undefined, attributes: props }, action: a.name, resource: { type: r.type, id: r.id, attributes: r.properties }, context }, limits);
}

describe('fuzz: the AuthZEN adapter (in process, example policies)', function () {
  this.timeout(60_000);
  let api: AuthzenApi;
  let store: PolicyStore;
  const now = new Date();

  before(async () => {
    store = PolicyStore.forDirectory(path.join(REPO_ROOT, 'policies'));
    const loaded = await store.start();
    expect(loaded.result.status).to.equal('applied');
    api = new AuthzenApi({ decisions: new DecisionService(store, DISCARDING_SINK), limits, rolesProperty: 'roles', maxEvaluations: limits.maxBatchItems });
  });

  it('any JSON object as a body: a decision or a 400, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom('subject', 'action', 'resource', 'context', 'options', 'evaluations', 'x'), fc.jsonValue({ maxDepth: 4 })), async (body) => {
        for (const endpoint of ['evaluation', 'evaluations'] as const) {
          try {
            const answer = (await api[endpoint](body as Json, call)) as Json;
            if ('evaluations' in answer) expect(answer.evaluations).to.be.an('array');
            else expect(answer.decision).to.be.a('boolean');
          } catch (err) {
            expect(err, String(err)).to.be.instanceOf(HttpError);
            expect((err as HttpError).status).to.equal(400);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('a mutated realistic request is decided as the reference mapping decides it, or refused with 400', async () => {
    let decided = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 }), async (request, mutations) => {
        let body = JSON.parse(JSON.stringify(request)) as Json;
        for (const [pick, replacement] of mutations) body = mutate(body, pick, replacement);
        let expected: CheckRequest | undefined;
        try {
          expected = reference(body);
        } catch (err) {
          if (!(err instanceof InvalidRequestError) && !(err instanceof TypeError)) throw err;
        }
        let answer: { decision: boolean; context: Json } | undefined;
        try {
          answer = (await api.evaluation(body, call)) as { decision: boolean; context: Json };
        } catch (err) {
          expect(err, String(err)).to.be.instanceOf(HttpError);
          expect((err as HttpError).status).to.equal(400);
        }
        if (!answer) return;
        // Accepted by the adapter: the reference accepts it too (AuthZEN's required ids are checked on top).
        expect(expected, JSON.stringify(body)).not.to.equal(undefined);
        const engine = decide(store.current()!.set, expected!, { now });
        expect(answer.decision, JSON.stringify(body)).to.equal(engine.effect === 'ALLOW');
        expect(answer.context.reason).to.equal(engine.reason);
        decided++;
      }),
      { numRuns: RUNS },
    );
    expect(decided).to.be.greaterThan(RUNS / 10);
  });

  it('evaluations answers obey the semantics, whatever the items', async () => {
    const item = fc.oneof(fc.record({ action: actionArb, resource: resourceArb }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 2 }));
    await fc.assert(
      fc.asyncProperty(subjectArb, fc.array(item, { minLength: 1, maxLength: 12 }), fc.constantFrom('execute_all', 'deny_on_first_deny', 'permit_on_first_permit'), async (subject, items, semantic) => {
        const answer = (await api.evaluations({ subject, action: { name: 'read' }, options: { evaluations_semantic: semantic }, evaluations: items }, call)) as { evaluations: { decision: boolean; context: Json }[] };
        const got = answer.evaluations;
        expect(got.length).to.be.within(1, items.length);
        for (const g of got) expect(g.decision).to.be.a('boolean');
        for (const g of got) if (g.context.error) expect(g.decision).to.equal(false);
        const last = got.length - 1;
        if (semantic === 'execute_all') expect(got).to.have.length(items.length);
        if (semantic === 'deny_on_first_deny') {
          expect(got.slice(0, last).every((g) => g.decision)).to.equal(true);
          if (got.length < items.length) expect(got[last]!.decision).to.equal(false);
        }
        if (semantic === 'permit_on_first_permit') {
          expect(got.slice(0, last).every((g) => !g.decision)).to.equal(true);
          if (got.length < items.length) expect(got[last]!.decision).to.equal(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
