/**
 * `verdict serve --workers N` end to end: real processes (a Node cluster primary and its workers),
 * real sockets, real NATS JetStream. Every call that must reach "some worker" goes over a NEW
 * connection (own channel, local subchannel pool), which the cluster spreads over the workers.
 *
 * Cleanup (afterEach, also on failure): every worker pid seen in the logs is SIGKILLed together
 * with its primary, the processes are awaited (their stdout pipe closes only when the last worker
 * is gone), and then the test's streams, consumers and temp dirs are removed.
 */
import { readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { expect } from 'chai';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { POLICY_SCHEMA } from '../../src/evidence/policy-record.js';
import { eventHash } from '../../src/events/chain.js';
import { CHECKPOINT_SCHEMA_V2 as CHECKPOINT_SCHEMA } from '../../src/events/checkpoint.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';
import {
  countEvents,
  NATS_URL,
  randomToken,
  readStream,
  readTrail,
  Resources,
  runVerdict,
  sleep,
  startConsumer,
  trailFiles,
  uniqueNames,
  waitFor,
  type StoredMessage,
} from '../support/events-harness.js';
import { documentPolicy } from '../grpc/fixtures.js';
import { cleanupServerProcesses, replaceFile, startServer, writeFile, type LogLine, type StartServerOptions, type VerdictProcess } from '../support/server-process.js';

type AnyClient = Client & Record<string, Function>;

/** The decoded CheckResponse (proto-loader `defaults: false`: fields left unset are absent). */
interface CheckResponse {
  allowed?: boolean;
  decision?: string;
  reason?: string;
  revision?: string;
  decisionId?: string;
}

interface PolicySetResponse {
  revision?: string;
  loadedAt?: { seconds?: string; nanos?: number };
  lastFailure?: { message?: string; issues?: { file?: string; line?: number; code?: string; message?: string }[] };
}

/** A misspelled field on line 7: the whole change must be rejected. */
const BROKEN_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read]
    efect: allow
    roles: [employee]
`;

const docRequest = (action: string, id = 'd1', subject = 'alice'): JsonCheckRequest => ({
  subject: { id: subject, roles: ['employee'] },
  action,
  resource: { type: 'document', id },
});

const res = new Resources();
const servers: VerdictProcess[] = [];
const openClients: Client[] = [];

/** A client with a connection of its own (grpc-js shares subchannels between clients unless told not to). */
function freshClient(address: string): AnyClient {
  const c = createAuthorizationClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  openClients.push(c);
  return c;
}

/** Runs `fn` over a new connection, closed afterwards. */
async function overFreshConnection<T>(address: string, fn: (c: AnyClient) => Promise<T>): Promise<T> {
  const c = freshClient(address);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function check(c: AnyClient, req: JsonCheckRequest, requestId = '', deadlineMs = 5_000): Promise<CheckResponse> {
  return unary<CheckResponse>(c, 'Check', toProtoCheckRequest(req, { requestId }), deadlineMs);
}

function getPolicySet(c: AnyClient): Promise<PolicySetResponse> {
  return unary<PolicySetResponse>(c, 'GetPolicySet', {}, 5_000);
}

/** grpc.health.v1.Health over a new connection. */
async function healthStatus(address: string, service = ''): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
  const Ctor = (((loadPackageDefinition(def).grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;
  const c = new Ctor(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as AnyClient;
  openClients.push(c);
  try {
    return (await unary<{ status: string }>(c, 'Check', { service }, 5_000)).status;
  } finally {
    c.close();
  }
}

async function serve(opts: StartServerOptions): Promise<VerdictProcess> {
  const p = await startServer({ name: `verdict serve --workers ${opts.workers ?? '?'}`, ...opts });
  servers.push(p);
  return p;
}

/** A cluster with the decision stream on: a unique stream and subject prefix, deleted after the test. */
async function serveWithEvents(workers: number, extra: Partial<StartServerOptions> = {}) {
  const names = uniqueNames();
  res.stream(NATS_URL, names.stream);
  const instanceId = `vc-${randomToken(3)}`;
  const policies = res.tmpDir('cluster-policies');
  writeFile(policies, 'document.yaml', documentPolicy(false));
  const server = await serve({
    policies,
    workers,
    noEvents: false,
    args: ['--nats', NATS_URL, '--spool-dir', res.tmpDir('cluster-spool'), '--instance-id', instanceId],
    env: { VERDICT_EVENTS_STREAM: names.stream, VERDICT_EVENTS_SUBJECT_PREFIX: names.prefix },
    ...extra,
  });
  return { server, names, instanceId, policies };
}

/** The first log line of worker `index` with message `msg` (optionally only those matching `more`). */
const workerLine = (index: number, msg: string, more: (l: LogLine) => boolean = () => true) => (l: LogLine) =>
  l.worker === index && l.msg === msg && more(l);

/** Worker pids seen in the logs of a primary, by worker index (latest last). */
function workerPids(server: VerdictProcess): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const l of server.logs) {
    if (typeof l.worker !== 'number' || typeof l.pid !== 'number' || l.pid === server.pid) continue;
    const list = out.get(l.worker) ?? [];
    if (!list.includes(l.pid)) list.push(l.pid);
    out.set(l.worker, list);
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL a pid only while it still is one of ours (a `verdict` node process), not a reused pid. */
function killIfOurs(pid: number): void {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('verdict.js')) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * A check and GetPolicySet over one new connection, and the worker that answered both (from the
 * decision's log line: the server must run with logDecisions).
 */
function probe(server: VerdictProcess, action = 'edit') {
  return overFreshConnection(server.address, async (c) => {
    const answer = await check(c, docRequest(action));
    const set = await getPolicySet(c);
    const line = await server.waitForLog((l) => l.msg === 'decision' && l.decisionId === answer.decisionId, 5_000);
    return { answer, set, worker: line.worker as number, pid: line.pid as number };
  });
}

/** The decision events and checkpoints of the stream, split by chain id (in stream order). */
function byChain(messages: readonly StoredMessage[]) {
  const events = new Map<string, Record<string, any>[]>();
  const all = new Map<string, Record<string, any>[]>();
  for (const m of messages) {
    const d = m.data as Record<string, any>;
    // Chained records: decision events, and the policy records (each chain starts with its worker's policy set).
    const chained = d.schema === EVENT_SCHEMA || d.schema === POLICY_SCHEMA;
    const chain = chained ? String(d.chain.id) : d.schema === CHECKPOINT_SCHEMA ? String(d.chain) : undefined;
    if (chain === undefined) throw new Error(`unexpected message in the stream: ${m.raw}`);
    if (chained) events.set(chain, [...(events.get(chain) ?? []), d]);
    all.set(chain, [...(all.get(chain) ?? []), d]);
  }
  return { events, all };
}

/** Each chain: seq 1..k without gaps, prev links, and every hash recomputes. */
function expectIntactChains(events: Map<string, Record<string, any>[]>): void {
  for (const [chain, list] of events) {
    expect(list.map((e) => e.chain.seq), `chain ${chain} is gap-free`).to.deep.equal(list.map((_, i) => i + 1));
    list.forEach((e, i) => {
      expect(eventHash(e), `hash of ${chain} #${e.chain.seq}`).to.equal(e.chain.hash);
      expect(e.chain.prev, `prev of ${chain} #${e.chain.seq}`).to.equal(i === 0 ? '0'.repeat(64) : list[i - 1]!.chain.hash);
    });
  }
}

describe('cluster: verdict serve --workers (real processes, sockets and NATS)', function () {
  this.timeout(30_000);

  afterEach(async () => {
    for (const c of openClients.splice(0)) c.close();
    // Workers and primaries in one go: a primary killed first would have its workers flush and
    // reconnect (and so recreate a deleted stream); a worker killed first would be re-forked.
    for (const s of servers.splice(0)) {
      for (const pids of workerPids(s).values()) for (const pid of pids) killIfOurs(pid);
      s.kill('SIGKILL');
    }
    await cleanupServerProcesses();
    await res.cleanup();
  });
  after(() => res.cleanup()); // also when a hook failed

  it('two workers: every check over a new connection is answered and published once, on two gap-free chains that verify', async () => {
    const { server, names, instanceId } = await serveWithEvents(2);
    await Promise.all([0, 1].map((i) => server.waitForLog((l) => l.worker === i && /^NATS available/.test(String(l.msg)))));
    const trail = res.tmpDir('cluster-trail');
    const consumer = await startConsumer(res, { natsUrl: NATS_URL, ...names, outDir: trail, durable: 'cluster-keeper' });

    const N = 30;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => overFreshConnection(server.address, (c) => check(c, docRequest(i % 3 === 0 ? 'edit' : 'read', `doc-${i}`), `req-${i}`))),
    );
    expect(answers.filter((a) => a.allowed === true)).to.have.length(N - Math.ceil(N / 3));
    const ids = answers.map((a) => a.decisionId);
    expect(new Set(ids).size).to.equal(N);

    const nc = await res.nats(NATS_URL);
    await waitFor(`${N} decision events in the stream`, async () => (await countEvents(nc, names.stream, names.prefix)) >= N, 10_000);
    const messages = await readStream(nc, names.stream);
    const events = messages.filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(events, 'exactly one event per check').to.have.length(N);
    expect(events.map((m) => m.data.id).sort()).to.deep.equal([...ids].sort());
    expect(new Set(events.map((m) => m.data.instance)), 'one chain per worker').to.deep.equal(new Set([`${instanceId}-w0`, `${instanceId}-w1`]));

    const chains = byChain(messages);
    expect(chains.events.size).to.equal(2);
    for (const [chain, list] of chains.events) expect(chain.startsWith(`${list[0]!.instance}/`), chain).to.equal(true);
    expectIntactChains(chains.events);

    // The audit consumer's files hold every event and verify.
    await waitFor('the trail to hold every event', () => readTrail(trail).filter((r) => r.data.schema === EVENT_SCHEMA).length >= N, 10_000);
    expect(readTrail(trail).filter((r) => r.data.schema === EVENT_SCHEMA)).to.have.length(N);
    const verified = await runVerdict(['audit', 'verify', ...trailFiles(trail)]);
    expect(verified.code, verified.stdout + verified.stderr).to.equal(0);
    expect(verified.stdout).to.match(new RegExp(`verified \\d+ files, ${N + 2} events, \\d+ checkpoints: OK`)); // and each worker's policy record
    expect(verified.stdout.match(/^chain /gm), verified.stdout).to.have.length(2);
    expect(consumer.running, consumer.tail()).to.equal(true);
    expect(server.logs.filter((l) => (l.level ?? 0) >= 50), 'no errors logged').to.deep.equal([]);
  });

  it('one revision at a time: a reload reaches every worker; a broken change reaches none and every worker reports it', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const server = await serve({ policies, workers: 2, config: { logDecisions: true, reload: { debounceMs: 50, pollIntervalMs: 500 } } });
    const oldRevision = String(server.findLog((l) => l.msg === 'verdict serving' && l.worker === undefined)!.revision);

    const before = await Promise.all(Array.from({ length: 6 }, () => probe(server)));
    expect(new Set(before.map((b) => b.worker)), 'new connections reach both workers').to.deep.equal(new Set([0, 1]));
    for (const b of before) {
      expect(b.answer.allowed === true, 'edit is denied').to.equal(false);
      expect(b.answer.revision).to.equal(oldRevision);
      expect(b.set.revision).to.equal(oldRevision);
    }

    // A change that flips `edit`: poll until 10 consecutive new connections all see it. Every
    // answer on the way is consistent: the old revision denies, the new one allows.
    replaceFile(policies, 'document.yaml', documentPolicy(true));
    const reloaded = await server.waitForLog((l) => l.msg === 'policy set reloaded' && l.worker === undefined, 10_000);
    const newRevision = String(reloaded.revision);
    expect(newRevision).to.not.equal(oldRevision);
    let streak = 0;
    const deadline = Date.now() + 10_000;
    while (streak < 10) {
      if (Date.now() > deadline) throw new Error('timed out waiting for 10 consecutive answers with the new revision');
      const { answer } = await probe(server);
      expect([oldRevision, newRevision]).to.include(answer.revision);
      expect(answer.allowed === true, JSON.stringify(answer)).to.equal(answer.revision === newRevision);
      streak = answer.revision === newRevision ? streak + 1 : 0;
    }
    const after = await Promise.all(Array.from({ length: 6 }, () => probe(server)));
    expect(new Set(after.map((a) => a.worker))).to.deep.equal(new Set([0, 1]));
    for (const a of after) {
      expect(a.answer).to.include({ allowed: true, revision: newRevision });
      expect(a.set.revision).to.equal(newRevision);
      expect(a.set.lastFailure).to.equal(undefined);
    }
    expect(new Set(after.map((a) => JSON.stringify(a.set.loadedAt))).size, 'one loadedAt on every worker').to.equal(1);

    // A broken change: rejected by the primary; every worker keeps deciding with the last good
    // set and names the file in lastFailure.
    replaceFile(policies, 'document.yaml', BROKEN_POLICY);
    await server.waitForLog('policy change rejected; the last good policy set keeps serving', 10_000);
    await waitFor('every worker to report the failure', async () => {
      const probes = await Promise.all(Array.from({ length: 6 }, () => probe(server)));
      return probes.every((p) => p.set.lastFailure !== undefined) && new Set(probes.map((p) => p.worker)).size === 2;
    }, 10_000, 100);
    const held = await Promise.all(Array.from({ length: 8 }, () => probe(server)));
    expect(new Set(held.map((h) => h.worker))).to.deep.equal(new Set([0, 1]));
    for (const h of held) {
      expect(h.answer).to.include({ allowed: true, revision: newRevision });
      expect(h.set.revision).to.equal(newRevision);
      expect(h.set.lastFailure?.issues?.map((i) => i.file), JSON.stringify(h.set.lastFailure)).to.include('document.yaml');
      expect(h.set.lastFailure?.issues?.find((i) => i.code === 'UNKNOWN_FIELD'), JSON.stringify(h.set.lastFailure)).to.include({ file: 'document.yaml', line: 7 });
    }
    // Only the primary validates the files: no worker ever compiled the broken change.
    expect(server.logs.filter((l) => l.worker !== undefined && /rejected/.test(String(l.msg)))).to.deep.equal([]);

    // The files go back to the live content: the failure no longer stands, on any worker.
    replaceFile(policies, 'document.yaml', documentPolicy(true));
    await waitFor('every worker to drop the failure', async () => {
      const probes = await Promise.all(Array.from({ length: 6 }, () => probe(server)));
      return probes.every((p) => p.set.lastFailure === undefined) && new Set(probes.map((p) => p.worker)).size === 2;
    }, 10_000, 100);
  });

  it('health: grpc.health.v1 Check "" is SERVING on every worker once started', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const server = await serve({ policies, workers: 2 });
    await Promise.all([0, 1].map((i) => server.waitForLog(workerLine(i, 'verdict serving'))));
    const statuses = await Promise.all(Array.from({ length: 6 }, () => healthStatus(server.address, '')));
    expect(statuses).to.deep.equal(Array(6).fill('SERVING'));
    expect(await healthStatus(server.address, 'verdict.v1.Authorization')).to.equal('SERVING');
  });

  it('a worker killed with SIGKILL is replaced under the same index; checks keep succeeding', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const server = await serve({ policies, workers: 2, config: { logDecisions: true, reload: { debounceMs: 50, pollIntervalMs: 500 } } });
    // A rejected change stands while the worker dies: its replacement must report it too.
    replaceFile(policies, 'document.yaml', BROKEN_POLICY);
    await server.waitForLog('policy change rejected; the last good policy set keeps serving', 10_000);
    // Each process writes its own log lines (asynchronously): a worker's may follow the primary's.
    const victim = Number((await server.waitForLog(workerLine(0, 'verdict serving'))).pid);
    const survivor = Number((await server.waitForLog(workerLine(1, 'verdict serving'))).pid);
    expect(victim).to.not.equal(survivor);

    /** A check over a new connection, retried a few times (a connection may land on the dying worker). */
    const checkWithRetry = async (i: number): Promise<CheckResponse> => {
      let lastErr: unknown;
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          return await overFreshConnection(server.address, (c) => check(c, docRequest('read', `crash-${i}`), `crash-${i}-${attempt}`, 2_000));
        } catch (err) {
          lastErr = err;
          await sleep(100);
        }
      }
      throw lastErr;
    };

    process.kill(victim, 'SIGKILL');
    const exitLine = await server.waitForLog('worker exited unexpectedly; starting a replacement', 5_000);
    expect(exitLine).to.include({ worker: 0, signal: 'SIGKILL' });
    // While the replacement starts: the other worker answers.
    const during = await Promise.all(Array.from({ length: 10 }, (_, i) => checkWithRetry(i)));
    for (const d of during) expect(d.allowed).to.equal(true);

    const replacement = await server.waitForLog(workerLine(0, 'verdict serving', (l) => l.pid !== victim), 10_000);
    expect(replacement.pid).to.not.equal(victim);
    expect(alive(victim)).to.equal(false);
    expect(alive(survivor)).to.equal(true);
    expect(server.running).to.equal(true);

    // The replacement takes its share of new connections.
    const after = await Promise.all(Array.from({ length: 8 }, (_, i) => checkWithRetry(100 + i)));
    for (const a of after) expect(a.allowed).to.equal(true);
    const deciders = await Promise.all(after.map((a) => server.waitForLog((l) => l.msg === 'decision' && l.decisionId === a.decisionId, 5_000)));
    expect(new Set(deciders.map((l) => l.pid))).to.deep.equal(new Set([replacement.pid, survivor]));
    // Both the survivor and the replacement report the standing rejected change.
    const sets = await Promise.all(Array.from({ length: 8 }, () => probe(server, 'read')));
    expect(new Set(sets.map((p) => p.pid))).to.deep.equal(new Set([replacement.pid, survivor]));
    for (const p of sets) expect(p.set.lastFailure?.issues?.map((i) => i.file), `worker pid ${p.pid}: ${JSON.stringify(p.set)}`).to.include('document.yaml');
  });

  it('SIGTERM to the primary stops everything gracefully: exit 0, "verdict stopped", a final checkpoint on every chain', async () => {
    const { server, names, instanceId } = await serveWithEvents(2);
    const nc = await res.nats(NATS_URL);
    // Decisions over new connections (spread over both workers), all of them in the stream.
    const n = 12;
    await Promise.all(Array.from({ length: n }, (_, i) => overFreshConnection(server.address, (c) => check(c, docRequest('read', `stop-${i}`)))));
    await waitFor(`${n} events in the stream`, async () => (await countEvents(nc, names.stream, names.prefix)) >= n, 10_000);
    const published = (await readStream(nc, names.stream)).filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(new Set(published.map((m) => m.data.instance)), 'both workers decided').to.have.property('size', 2);
    const pids = [...workerPids(server).values()].flat();
    expect(pids).to.have.length(2);

    server.kill('SIGTERM');
    const exit = await server.exitWithin(20_000);
    expect(exit, server.tail()).to.deep.equal({ code: 0, signal: null });
    for (const pid of pids) expect(alive(pid), `worker ${pid} exited`).to.equal(false);
    expect(server.findLog((l) => l.msg === 'verdict stopped' && l.worker === undefined), server.tail()).to.include({ shutdown: 'graceful' });
    for (const i of [0, 1]) expect(server.findLog(workerLine(i, 'verdict stopped')), `worker ${i} stopped`).to.include({ shutdown: 'graceful' });
    expect(server.stderr).to.equal('');

    const messages = await readStream(nc, names.stream);
    const events = messages.filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(events).to.have.length(n);
    const chains = byChain(messages);
    expect(chains.events.size).to.equal(2);
    expectIntactChains(chains.events);
    const instances = new Set<string>();
    for (const [chain, list] of chains.all) {
      const evs = chains.events.get(chain)!;
      const last = list[list.length - 1]!;
      expect(last, `chain ${chain} ends with a final checkpoint`).to.include({ schema: CHECKPOINT_SCHEMA, final: true, chain, seq: evs.length, hash: evs[evs.length - 1]!.chain.hash });
      expect(list.filter((m) => m.final === true), 'one final checkpoint').to.have.length(1);
      instances.add(String(last.instance));
    }
    expect(instances).to.deep.equal(new Set([`${instanceId}-w0`, `${instanceId}-w1`]));
  });

  it('--workers 1 runs a single process (no worker field in any log line)', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const server = await serve({ policies, workers: 1, args: ['--log-level', 'debug'] });
    const answers = await Promise.all(Array.from({ length: 4 }, () => overFreshConnection(server.address, (c) => check(c, docRequest('read')))));
    for (const a of answers) expect(a.allowed).to.equal(true);
    expect(await healthStatus(server.address)).to.equal('SERVING');
    expect(server.logs.length).to.be.greaterThan(0);
    expect(server.logs.filter((l) => 'worker' in l || 'workers' in l)).to.deep.equal([]);
    expect(new Set(server.logs.map((l) => l.pid))).to.deep.equal(new Set([server.pid]));
    expect(server.logs.filter((l) => l.msg === 'verdict serving')).to.have.length(1);
    server.kill('SIGTERM');
    expect(await server.exitWithin(10_000)).to.deep.equal({ code: 0, signal: null });
  });

  it('workers run with a smaller young generation (workerSemiSpaceMB, default 8); 0 or an operator\'s own flag leaves theirs', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const workerFlags = async (opts: Partial<StartServerOptions>) => {
      const server = await serve({ policies, workers: 2, ...opts });
      const pids = [...new Set(server.logs.filter((l) => 'worker' in l).map((l) => Number(l.pid)))];
      expect(pids).to.have.length(2);
      const flags = pids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--max-semi-space-size')));
      server.kill('SIGTERM');
      expect(await server.exitWithin(10_000)).to.deep.equal({ code: 0, signal: null });
      return flags;
    };
    expect(await workerFlags({})).to.deep.equal([['--max-semi-space-size=8'], ['--max-semi-space-size=8']]);
    expect(await workerFlags({ config: { workerSemiSpaceMB: 4 } })).to.deep.equal([['--max-semi-space-size=4'], ['--max-semi-space-size=4']]);
    expect(await workerFlags({ config: { workerSemiSpaceMB: 0 } })).to.deep.equal([[], []]);
    expect(await workerFlags({ env: { NODE_OPTIONS: '--max-semi-space-size=32' } })).to.deep.equal([[], []]);
  });

  it('every process sets its own old-generation growth (heapGrowthPercent, default 50) before loading policies', async () => {
    const policies = res.tmpDir('cluster-policies');
    writeFile(policies, 'document.yaml', documentPolicy(false));
    const growth = async (opts: Partial<StartServerOptions>) => {
      const server = await serve({ policies, ...opts, args: ['--log-level', 'debug'] });
      const lines = server.logs.filter((l) => l.msg === 'V8 old-generation growth before a full collection');
      server.kill('SIGTERM');
      expect(await server.exitWithin(10_000)).to.deep.equal({ code: 0, signal: null });
      expect(new Set(lines.map((l) => l.pid)).size, 'one line per process').to.equal(lines.length);
      return { primary: lines.filter((l) => l.pid === server.pid).map((l) => l.heapGrowth), others: lines.filter((l) => l.pid !== server.pid).map((l) => l.heapGrowth) };
    };
    const config = { percent: 50, from: 'config' };
    expect(await growth({ workers: 1 })).to.deep.equal({ primary: [config], others: [] });
    expect(await growth({ workers: 2 })).to.deep.equal({ primary: [config], others: [config, config] });
    expect(await growth({ workers: 2, config: { heapGrowthPercent: 40 } })).to.deep.equal({ primary: [{ percent: 40, from: 'config' }], others: [{ percent: 40, from: 'config' }, { percent: 40, from: 'config' }] });
    expect(await growth({ workers: 1, env: { VERDICT_HEAP_GROWTH_PERCENT: '0' } })).to.deep.equal({ primary: [{ from: 'V8 default' }], others: [] });
  });
});
