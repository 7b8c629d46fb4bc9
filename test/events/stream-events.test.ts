import { expect } from 'chai';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash, GENESIS_HASH } from '../../src/events/chain.js';
import { CHECKPOINT_SCHEMA_V2 as CHECKPOINT_SCHEMA } from '../../src/events/checkpoint.js';
import { EVENT_SCHEMA, MASK } from '../../src/events/event.js';
import { POLICY_SCHEMA } from '../../src/evidence/policy-record.js';
import { toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';
import {
  check, checkBatch, countEvents, NATS_URL, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies,
  type CheckResponse, type ServerProc, type StoredMessage,
} from '../support/events-harness.js';

interface Asked {
  readonly request: JsonCheckRequest;
  readonly requestId: string;
  readonly source: 'check' | 'check_batch';
  readonly response: CheckResponse;
}

const SECRET = `tok_${randomToken(12)}`;

/** A mix of allows and denies for different reasons and resource types. */
function requests(): JsonCheckRequest[] {
  const employee = { id: 'alice', roles: ['employee'], attributes: { email: 'alice@example.com', department: 'eng' } };
  return [
    { subject: employee, action: 'read', resource: { type: 'document', id: 'd1', attributes: { department: 'eng' } }, context: { token: SECRET } },
    { subject: { ...employee, attributes: { ...employee.attributes, suspended: true } }, action: 'read', resource: { type: 'document', id: 'd2' } },
    { subject: { id: 'bob', roles: ['viewer'] }, action: 'read', resource: { type: 'document', id: 'd3' } },
    { subject: employee, action: 'delete', resource: { type: 'document', id: 'd4' } },
    { subject: employee, action: 'read', resource: { type: 'folder', id: 'f1' } },
    { subject: { type: 'service', id: 'svc-1', roles: ['employee', 'robot'] }, action: 'read', resource: { type: 'document', id: 'd5' } },
  ];
}

/** Waits until the stream holds `n` events, then a little longer to catch any extra one. */
async function eventsInStream(res: Resources, stream: string, prefix: string, n: number): Promise<StoredMessage[]> {
  const nc = await res.nats(NATS_URL);
  await waitFor(`${n} events in ${stream}`, async () => (await countEvents(nc, stream, prefix)) >= n, 10_000);
  await sleep(300);
  return readStream(nc, stream);
}

function expectEventMatches(e: Record<string, any>, asked: Asked, instance: string): void {
  const { request, response } = asked;
  expect(e.schema).to.equal(EVENT_SCHEMA);
  expect(e.id).to.equal(response.decisionId);
  expect(e.decision).to.equal(response.allowed ? 'ALLOW' : 'DENY');
  expect(response.decision).to.equal(response.allowed ? 'EFFECT_ALLOW' : 'EFFECT_DENY');
  expect(e.policy).to.equal(response.policy);
  expect(e.rule).to.equal(response.rule);
  expect(e.reason).to.equal(response.reason);
  expect(e.revision).to.equal(response.revision);
  expect(e.requestId).to.equal(asked.requestId);
  expect(e.source).to.equal(asked.source);
  expect(e.instance).to.equal(instance);
  expect(e.action).to.equal(request.action);
  expect(e.subject).to.deep.equal({ id: request.subject.id, roles: request.subject.roles ?? [], type: request.subject.type ?? 'user' });
  expect(e.resource).to.deep.equal({ id: request.resource.id ?? '', type: request.resource.type });
  expect(e.caller).to.deep.equal({ id: '', kind: 'anonymous' });
  expect(e.evaluationUs).to.be.a('number').and.at.least(0);
  expect(Date.parse(e.time)).to.be.closeTo(Date.now(), 60_000);
}

describe('events: every decision is stored exactly once (real NATS, real server)', function () {
  this.timeout(30_000);
  const res = new Resources();
  let names: { stream: string; prefix: string };
  let instance: string;
  let policies: string;

  beforeEach(() => {
    names = uniqueNames();
    instance = `vt-${randomToken(3)}`;
    res.stream(NATS_URL, names.stream);
    policies = writePolicies(res.tmpDir('policies'));
  });
  afterEach(() => res.cleanup());
  after(() => res.cleanup()); // also when a beforeEach hook failed

  async function serve(configYaml?: string): Promise<ServerProc> {
    return startVerdict(res, { policies, natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: instance, ...(configYaml ? { configYaml } : {}) });
  }

  async function askAll(server: ServerProc): Promise<Asked[]> {
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const asked: Asked[] = [];
    for (const [i, request] of requests().entries()) {
      const requestId = `req-${i}`;
      asked.push({ request, requestId, source: 'check', response: await check(client, request, requestId) });
    }
    for (const [i, request] of requests().entries()) {
      asked.push({ request, requestId: '', source: 'check', response: await check(client, request) });
      if (i === 2) break;
    }
    const subject = { id: 'carol', roles: ['employee'], attributes: { email: 'carol@example.com' } };
    const items = [
      { action: 'read', resource: { type: 'document', id: 'b1' } },
      { action: 'write', resource: { type: 'document', id: 'b2' } },
      { action: 'read', resource: { type: 'report.v2', id: 'b3' } },
    ];
    const batch = await checkBatch(client, subject, items, 'batch-1', { token: SECRET });
    expect(batch.results).to.have.length(3);
    items.forEach((item, i) => asked.push({ request: { subject, ...item }, requestId: 'batch-1', source: 'check_batch', response: batch.results[i]! }));
    return asked;
  }

  it('N Check and CheckBatch calls → exactly N chained events with the right fields and subjects', async () => {
    const server = await serve();
    const asked = await askAll(server);
    const n = asked.length;
    expect(new Set(asked.map((a) => a.response.decisionId)).size).to.equal(n);
    expect(asked.some((a) => a.response.allowed) && asked.some((a) => !a.response.allowed)).to.equal(true);

    const stored = await eventsInStream(res, names.stream, names.prefix, n);
    const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA);
    const checkpoints = stored.filter((m) => m.data.schema === CHECKPOINT_SCHEMA);
    const policies = stored.filter((m) => m.data.schema === POLICY_SCHEMA);
    expect(policies.map((m) => m.data.status), 'the policy set that went live at start').to.deep.equal(['applied']);
    expect(events.length + checkpoints.length + policies.length, 'only events, checkpoints and the policy record in the stream').to.equal(stored.length);
    expect(events).to.have.length(n);
    expect(checkpoints.length).to.be.greaterThan(0);

    const byId = new Map(asked.map((a) => [a.response.decisionId, a]));
    // The chain starts with the policy record, then the events follow it.
    const policy = policies[0]!.data as Record<string, any>;
    expect(policy.chain.seq).to.equal(1);
    expect(policy.chain.prev).to.equal(GENESIS_HASH);
    expect(policies[0]!.subject).to.equal(`${names.prefix}._policy.${instance}.applied`);
    let prev = policy.chain.hash as string;
    let chainId: string | undefined = policy.chain.id;
    events.forEach((m, i) => {
      const e = m.data as Record<string, any>;
      const a = byId.get(e.id);
      expect(a, `event ${e.id} answers a call`).to.not.equal(undefined);
      expectEventMatches(e, a!, instance);
      // Sequential calls: the stream holds them in call order.
      expect(e.id).to.equal(asked[i]!.response.decisionId);
      const type = e.resource.type.replace(/[.*>\s]/g, '_');
      expect(m.subject).to.equal(`${names.prefix}.${type}.${e.decision === 'ALLOW' ? 'allow' : 'deny'}`);
      expect(m.msgId).to.equal(e.id);
      chainId ??= e.chain.id;
      expect(e.chain.id).to.equal(chainId);
      expect(e.chain.id.startsWith(`${instance}/`)).to.equal(true);
      expect(e.chain.seq).to.equal(i + 2);
      expect(e.chain.prev).to.equal(prev);
      expect(eventHash(e)).to.equal(e.chain.hash);
      expect(m.raw).to.equal(canonicalJson(e));
      expect(e).to.not.have.property('attributes');
      prev = e.chain.hash;
    });
    expect(stored.find((m) => m.subject === `${names.prefix}.report_v2.deny`)).to.not.equal(undefined);
    for (const c of checkpoints) {
      expect(c.subject).to.equal(`${names.prefix}._chain.${instance}.checkpoint`);
      expect(c.data.chain).to.equal(chainId);
      const covered = [...policies, ...events].find((m) => (m.data as any).chain.seq === c.data.seq);
      expect(covered, 'a checkpoint names a stored event').to.not.equal(undefined);
      expect(c.data.hash).to.equal((covered!.data as any).chain.hash);
      expect(covered!.seq).to.be.lessThan(c.seq);
    }
    for (const m of stored) expect(m.raw).to.not.include(SECRET).and.not.include('alice@example.com');

    // A graceful stop writes a final checkpoint covering the last event.
    expect(await server.stop('SIGTERM')).to.equal(0);
    const after = await readStream(await res.nats(NATS_URL), names.stream);
    const final = after.filter((m) => m.data.schema === CHECKPOINT_SCHEMA && m.data.final === true);
    expect(final).to.have.length(1);
    expect(final[0]!.data.seq).to.equal(n + 1);
    expect(after.filter((m) => m.data.schema === EVENT_SCHEMA)).to.have.length(n);
    expect(server.log('decision publisher closed')?.events).to.include({ recorded: n, spooled: n + 1, published: n + 1, failed: 0 });
  });

  it('includeAttributes: all with maskAttributes → attributes present, masked paths "***", secrets never leave', async () => {
    const server = await serve(['events:', '  includeAttributes: all', '  maskAttributes: [subject.attributes.email, context.token]', ''].join('\n'));
    const asked = await askAll(server);
    // A subject token on the wire is refused (no issuers configured) and never recorded.
    const client = res.client(server.address);
    const withToken = { ...toProtoCheckRequest(requests()[0]!), token: SECRET };
    const refused = await unary(client, 'Check', withToken).then(() => undefined, (err: { code: number }) => err);
    expect(refused?.code).to.equal(3); // INVALID_ARGUMENT

    const stored = await eventsInStream(res, names.stream, names.prefix, asked.length);
    const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data as Record<string, any>);
    expect(events).to.have.length(asked.length);
    for (const e of events) {
      expect(e).to.have.property('attributes');
      expect(eventHash(e)).to.equal(e.chain.hash);
    }
    const first = events.find((e) => e.id === asked[0]!.response.decisionId)!;
    expect(first.attributes).to.deep.equal({
      context: { token: MASK },
      resource: { attributes: { department: 'eng' } },
      subject: { attributes: { department: 'eng', email: MASK } },
    });
    const fromBatch = events.filter((e) => e.source === 'check_batch');
    expect(fromBatch).to.have.length(3);
    for (const e of fromBatch) expect(e.attributes.subject.attributes.email).to.equal(MASK);
    const suspended = events.find((e) => e.id === asked[1]!.response.decisionId)!;
    expect(suspended.attributes.subject.attributes.suspended).to.equal(true);
    for (const m of stored) expect(m.raw).to.not.include(SECRET).and.not.include('alice@example.com').and.not.include('carol@example.com');
    expect(server.stdout + server.stderr).to.not.include(SECRET);
  });
});
