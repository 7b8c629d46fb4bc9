/**
 * Policy reload benchmark (`make bench-reload`): for generated sets of 1,000 and 10,000 resource
 * types, against real `verdict serve` processes (one worker and a cluster):
 *  - cold start: spawn to the first Check answered;
 *  - a one-file change (atomic rename) and a change to a "*" policy: time until every worker answers
 *    with the new revision, and the longest Check on each worker meanwhile (cheap Checks every ~5 ms
 *    on two connections per worker, sent from a process of their own; a quiet period without
 *    changes for comparison), with each worker's own longest event-loop delay in the same windows
 *    (loop-monitor.ts) and, for reference, the same probes against the empty grpc-js server;
 *  - RSS of each process idle and under load, server CPU per check under load;
 *  - a reload storm (one change a second under load): Check p99 against the same load without
 *    changes, and whether every change went live, in order;
 *  - CPU per check, smallest against largest set, paired: one single-process server per set, both
 *    up at once, load rounds alternating between them (the order flips each round), so both see
 *    the same machine; the median of the per-round ratios. Each case's own load above runs minutes
 *    apart from the other's, on a shared VM, and its ratio moved 0.9–1.4× from run to run.
 *
 *   node dist/bench/reload/run.js [--types 1000,10000] [--workers 1,2] [--changes 5] [--cold-reps 3]
 *        [--load-seconds 10] [--storm 60] [--storm-types 1000] [--in-flight 16]
 *        [--paired-rounds 6] [--paired-seconds 8] [--paired-only] [--json] [--write-docs]
 *        [--from-json FILE]   (render / write the docs from the results of an earlier --json run)
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { createAuthorizationClient, toProtoCheckRequest, unary } from '../../src/grpc/client.js';
import { policyRevision, sha256Hex } from '../../src/policy/index.js';
import { writeLargePolicySet, type LargePolicySet } from '../generate/large-policy-set.js';
import { runLoad } from '../grpc/driver.js';
import { NODE_FLAGS } from '../servers.js';
import { monotonicNow, probeRequest, type ProbeMessage, type ProbeSetup } from './probe-process.js';
import { peakRssBytes, processTree, resetPeakRss, rssBytes, treeCpuMicros } from '../grpc/proc.js';
import { writeDocs } from '../report.js';
import { ROOT, fmtInt, fmtNum, median, parseFlags } from '../util.js';

const PROBE_PROCESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'probe-process.js');
const LOOP_MONITOR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loop-monitor.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 2 ** 20;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Server {
  readonly child: ChildProcess;
  readonly address: string;
  readonly logs: Record<string, unknown>[];
  readonly startedAt: number;
  /** The same instant on the monotonic clock the probe samples use (the CPU profiles' clock too). */
  readonly startedAtMonotonic: number;
}

/** `loopFile`: record each server process's event-loop delays there (loop-monitor.ts). */
async function startServer(dir: string, workers: number, logDecisions: boolean, loopFile?: string): Promise<Server> {
  const port = await freePort();
  const cfg = path.join(dir, '..', `verdict-${port}.yaml`);
  await writeFile(cfg, `logDecisions: ${logDecisions}\nreload:\n  pollIntervalMs: 2000\n`);
  const startedAt = performance.now();
  const startedAtMonotonic = monotonicNow();
  const monitor = loopFile ? ['--import', pathToFileURL(LOOP_MONITOR).href] : [];
  const child = spawn(process.execPath, [...NODE_FLAGS, ...monitor, path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', dir, '--listen', `127.0.0.1:${port}`, '--no-events', '--workers', String(workers), '--config', cfg], {
    cwd: ROOT,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERDICT_'))), ...(loopFile ? { BENCH_LOOP_FILE: loopFile } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  // BENCH_KEEP_LOGS=1 keeps each server's output (with BENCH_NODE_FLAGS=--trace-gc, its GC lines) beside the set.
  const kept = process.env.BENCH_KEEP_LOGS === '1' ? path.join(dir, '..', `server-${port}.log`) : undefined;
  if (kept) process.stderr.write(`bench-reload: server output in ${kept}\n`);
  child.stdout!.on('data', (chunk: Buffer) => {
    if (kept) appendFileSync(kept, chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  return { child, address: `127.0.0.1:${port}`, logs, startedAt, startedAtMonotonic };
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
  await new Promise((r) => s.child.once('exit', r));
  clearTimeout(timer);
}

type Client = ReturnType<typeof createAuthorizationClient>;
const newClient = (address: string): Client => createAuthorizationClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });

/** Whether something accepts TCP connections on host:port now (a connect costs the server next to nothing). */
function portOpen(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Cold start: spawn to the first answered Check (wall ms), and the CPU the server's processes used
 * until then. It waits for the port with plain TCP connects and then asks over one channel: a new
 * gRPC channel every 10 ms (as this did before) took CPU from the starting server on a two-CPU
 * machine, ~350 ms of a 1,000-type start.
 */
async function coldStart(dir: string, workers: number, set: LargePolicySet): Promise<{ ms: number; cpuMs: number }> {
  const server = await startServer(dir, workers, false);
  const exited = () => {
    if (server.child.exitCode !== null) throw new Error('server exited during start');
  };
  try {
    while (!(await portOpen(server.address))) {
      exited();
      await sleep(5);
    }
    const c = newClient(server.address);
    try {
      for (;;) {
        try {
          await unary(c, 'Check', toProtoCheckRequest(probeRequest(set.types, 0)), 5_000);
          return { ms: performance.now() - server.startedAt, cpuMs: treeCpuMicros(server.child.pid!) / 1000 };
        } catch {
          exited();
          await sleep(10);
        }
      }
    } finally {
      c.close();
    }
  } finally {
    await stopServer(server);
  }
}

interface Sample {
  readonly sentAt: number;
  readonly ms: number;
  readonly revision: string;
}

interface Probe {
  worker: number;
  readonly samples: Sample[];
}

async function waitServing(server: Server, workers: number): Promise<void> {
  const deadline = performance.now() + 300_000;
  while (!server.logs.some((l) => l.msg === 'verdict serving' && (workers === 1 || l.workers !== undefined))) {
    if (server.child.exitCode !== null || performance.now() > deadline) throw new Error('server did not start');
    await sleep(20);
  }
}

/** The probe process and its connections, each mapped to the worker that accepted it (from the decision log). */
interface Probes {
  readonly list: Probe[];
  stop(): Promise<void>;
}

async function startProbes(server: Server, set: LargePolicySet, count: number, workers: number): Promise<Probes> {
  const child = fork(PROBE_PROCESS, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const list: Probe[] = Array.from({ length: count }, () => ({ worker: 0, samples: [] }));
  const opened: Promise<void>[] = [];
  const openedBy = new Map<number, (decisionId: string) => void>();
  for (let i = 0; i < count; i++) opened.push(new Promise((resolve) => openedBy.set(i, (id) => void mapWorker(i, id).then(resolve))));
  const mapWorker = async (index: number, decisionId: string): Promise<void> => {
    if (workers === 1) return;
    for (let t = 0; t < 200; t++) {
      const line = server.logs.find((l) => l.msg === 'decision' && l.decisionId === decisionId);
      if (line) {
        list[index]!.worker = Number(line.worker);
        return;
      }
      await sleep(10);
    }
  };
  child.on('message', (m: ProbeMessage) => {
    if (m.kind === 'opened') openedBy.get(m.index)!(m.decisionId);
    else list[m.index]!.samples.push({ sentAt: m.at, ms: m.ms, revision: m.revision });
  });
  const exited = new Promise((r) => child.once('exit', r));
  const setup: ProbeSetup = { address: server.address, connections: count, types: set.types.map((t) => ({ name: t.name, department: t.department })) };
  child.send(setup);
  await Promise.race([Promise.all(opened), exited.then(() => Promise.reject(new Error('the probe process exited')))]);
  return {
    list,
    stop: async () => {
      child.send('stop');
      await exited;
    },
  };
}

/** Writes `text` beside `full` under a hidden name and renames it into place (how to publish a change). */
async function publish(full: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(full), `.${path.basename(full)}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, full);
}

interface ChangeResult {
  readonly kind: 'one file' | '"*" policy';
  /** Rename to the first answer with the new revision, per worker. */
  readonly liveMs: number[];
  /** Longest Check sent from the rename until every worker answered with the new revision + 0.5 s, per worker. */
  readonly maxCheckMs: number[];
  /** That window on the monotonic clock (ms). */
  readonly window?: [number, number];
  /** Longest event-loop delay each worker saw in that window (loop-monitor.ts); absent in older results. */
  maxLoopMs?: number[];
}

interface CaseResult {
  readonly types: number;
  readonly workers: number;
  readonly coldStartMs: number[];
  /** CPU of the server's processes (all of them) from spawn to the first answer. */
  readonly coldStartCpuMs?: number[];
  readonly changes: ChangeResult[];
  readonly quietMaxCheckMs: number[];
  /** Longest event-loop delay per worker in the quiet period; absent in older results. */
  readonly quietMaxLoopMs?: number[];
  /** Longest Check of the same probes against the empty grpc-js server over the reload windows' total time. */
  readonly referenceMaxCheckMs?: number;
  readonly rssIdleMB: { primary?: number; workers: number[] };
  readonly rssLoadMB: { primary?: number; workers: number[] };
  readonly cpuMicrosPerCheck: number;
  readonly checksPerSecond: number;
  readonly loadP99Ms: number;
  readonly storm?: { steadyP99Ms: number; stormP99Ms: number; changes: number; liveInOrder: boolean; revisionsSeen: number };
}

/** Event-loop delays the server's processes recorded (loop-monitor.ts), each mapped to its worker index. */
async function readLoopDelays(file: string, server: Server, workers: number): Promise<{ worker: number; at: number; ms: number }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const workerOf = new Map<number, number>();
  if (workers === 1) workerOf.set(server.child.pid!, 0);
  else for (const l of server.logs) if (l.msg === 'verdict serving' && typeof l.worker === 'number') workerOf.set(Number(l.pid), l.worker);
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('gc '))
    .map((l) => l.split(' ').map(Number) as [number, number, number, number])
    .filter(([pid]) => workerOf.has(pid))
    .map(([pid, at, ms]) => ({ worker: workerOf.get(pid)!, at, ms }));
}

/** The longest Check of `connections` probes against the empty grpc-js server over `ms`. */
async function emptyServerLongestCheck(set: LargePolicySet, connections: number, ms: number): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(ROOT, 'dist/bench/grpc/empty-server.js'), '--listen', `127.0.0.1:${port}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const server: Server = { child, address: `127.0.0.1:${port}`, logs: [], startedAt: performance.now(), startedAtMonotonic: monotonicNow() };
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString('utf8');
        if (out.includes('"listening"')) resolve();
      });
      child.once('exit', () => reject(new Error('the empty server exited')));
    });
    child.stdout!.resume();
    const probing = await startProbes(server, set, connections, 1);
    await sleep(1_000);
    const from = monotonicNow();
    await sleep(ms);
    await probing.stop();
    return Math.max(0, ...probing.list.flatMap((p) => p.samples.filter((x) => x.sentAt >= from).map((x) => x.ms)));
  } finally {
    await stopServer(server);
  }
}

/** CPU per check, smallest set against largest, in alternating rounds (see the header). */
interface PairedResult {
  readonly smallTypes: number;
  readonly bigTypes: number;
  readonly seconds: number;
  /** Per round, in the order run: server CPU per check (µs) for each set. */
  readonly rounds: { readonly small: number; readonly big: number; readonly bigFirst: boolean }[];
}

async function measurePaired(smallTypes: number, bigTypes: number, opts: { rounds: number; seconds: number; inFlight: number }): Promise<PairedResult> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-reload-'));
  const servers: Server[] = [];
  try {
    const start = async (types: number): Promise<Server> => {
      const dir = path.join(tmp, `policies-${types}`);
      await writeLargePolicySet(dir, { types });
      const server = await startServer(dir, 1, false);
      servers.push(server);
      await waitServing(server, 1);
      return server;
    };
    process.stderr.write(`bench-reload: CPU per check, ${fmtInt(smallTypes)} against ${fmtInt(bigTypes)} types, ${opts.rounds} alternating rounds\n`);
    const small = await start(smallTypes);
    const big = await start(bigTypes);
    const load = async (server: Server, types: number, warmupMs: number): Promise<number> => {
      const r = await runLoad({ address: server.address, protocol: 'verdict.v1', method: 'Check', workload: `large:${types}`, inFlight: opts.inFlight, generators: 2, warmupMs, durationMs: opts.seconds * 1000, serverPid: server.child.pid });
      if (r.errors > 0) throw new Error(`${r.errors} errors under load (${r.errorSamples[0] ?? ''})`);
      return r.server!.cpuMicrosPerCheck;
    };
    // A first round each, not counted: the JIT and the heap settle.
    await load(small, smallTypes, 2_000);
    await load(big, bigTypes, 2_000);
    const rounds: PairedResult['rounds'][number][] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const bigFirst = r % 2 === 1;
      const first = bigFirst ? await load(big, bigTypes, 1_000) : await load(small, smallTypes, 1_000);
      const second = bigFirst ? await load(small, smallTypes, 1_000) : await load(big, bigTypes, 1_000);
      rounds.push(bigFirst ? { small: second, big: first, bigFirst } : { small: first, big: second, bigFirst });
    }
    return { smallTypes, bigTypes, seconds: opts.seconds, rounds };
  } finally {
    for (const s of servers) await stopServer(s);
    await rm(tmp, { recursive: true, force: true });
  }
}

function workerPids(server: Server, workers: number): { primary?: number; workers: number[] } {
  const pid = server.child.pid!;
  if (workers === 1) return { workers: [pid] };
  return { primary: pid, workers: processTree(pid).filter((p) => p !== pid) };
}

async function measureCase(types: number, workers: number, opts: { changes: number; coldReps: number; loadSeconds: number; inFlight: number; storm: number }): Promise<CaseResult> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-reload-'));
  const dir = path.join(tmp, 'policies');
  try {
    const set = await writeLargePolicySet(dir, { types });
    const texts = new Map(set.files.map((f) => [f.path, f.text]));
    const digests = new Map(set.files.map((f) => [f.path, sha256Hex(f.text)]));
    const revisionNow = () => policyRevision([...digests].map(([p, sha256]) => ({ path: p, sha256 })));
    let version = 0;
    /** Changes one type's file (its description), or the "*" policy; returns the expected revision. */
    const change = async (kind: ChangeResult['kind']): Promise<string> => {
      version++;
      let rel: string;
      let text: string;
      if (kind === 'one file') {
        rel = set.files[(version * 7919) % set.files.length]!.path;
        text = texts.get(rel)!.replace(/^description: .*$/m, `description: changed ${version}`);
      } else {
        rel = 'common.yaml';
        text = `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: "*"\ndescription: change ${version}\nrules:\n  - name: deny-suspended\n    actions: ["*"]\n    effect: deny\n    when: has(subject.attributes.suspended) && subject.attributes.suspended\n`;
      }
      texts.set(rel, text);
      digests.set(rel, sha256Hex(text));
      await publish(path.join(dir, rel), text);
      return revisionNow();
    };

    process.stderr.write(`bench-reload: ${fmtInt(types)} types, ${workers} worker(s): cold start\n`);
    const coldStartMs: number[] = [];
    const coldStartCpuMs: number[] = [];
    for (let r = 0; r < opts.coldReps; r++) {
      const c = await coldStart(dir, workers, set);
      coldStartMs.push(c.ms);
      coldStartCpuMs.push(c.cpuMs);
    }

    // Reloads, with cheap Checks on every worker.
    process.stderr.write(`bench-reload: ${fmtInt(types)} types, ${workers} worker(s): reloads\n`);
    const loopFile = path.join(tmp, 'event-loop.txt');
    let server = await startServer(dir, workers, true, loopFile);
    await waitServing(server, workers);
    const probing = await startProbes(server, set, 2 * workers, workers);
    const probes = probing.list;
    const byWorker = (fn: (samples: Sample[]) => number) => Array.from({ length: workers }, (_, w) => fn(probes.filter((p) => p.worker === w).flatMap((p) => p.samples)));
    await sleep(1_000);
    const quietFrom = monotonicNow();
    await sleep(3_000);
    const quietMaxCheckMs = byWorker((s) => Math.max(0, ...s.filter((x) => x.sentAt >= quietFrom).map((x) => x.ms)));
    const changes: ChangeResult[] = [];
    const changeTimes: number[] = [];
    for (const kind of ['one file', '"*" policy'] as const) {
      for (let k = 0; k < opts.changes; k++) {
        const at = monotonicNow();
        changeTimes.push(at);
        const expected = await change(kind);
        const deadline = at + 30_000;
        const liveAt = (samples: Sample[]) => {
          const first = samples.find((x) => x.revision === expected);
          return first && first.sentAt + first.ms;
        };
        while (byWorker((s) => (liveAt(s) === undefined ? 1 : 0)).some((x) => x === 1)) {
          if (monotonicNow() > deadline) throw new Error(`revision ${expected} did not go live within 30 s`);
          await sleep(5);
        }
        const allLive = Math.max(...byWorker((s) => liveAt(s)!));
        await sleep(500);
        changes.push({
          kind,
          liveMs: byWorker((s) => liveAt(s)! - at),
          maxCheckMs: byWorker((s) => Math.max(0, ...s.filter((x) => x.sentAt >= at && x.sentAt <= allLive + 500).map((x) => x.ms))),
          window: [at, allLive + 500],
        });
        await sleep(700);
      }
    }
    await probing.stop();
    await stopServer(server);
    const stalls = await readLoopDelays(loopFile, server, workers);
    const longestStall = (w: number, from: number, to: number) => Math.max(0, ...stalls.filter((x) => x.worker === w && x.at >= from && x.at <= to + 50).map((x) => x.ms));
    const quietMaxLoopMs = Array.from({ length: workers }, (_, w) => longestStall(w, quietFrom, quietFrom + 3_000));
    for (const c of changes) c.maxLoopMs = Array.from({ length: workers }, (_, w) => longestStall(w, c.window![0], c.window![1]));
    // The same probes against the empty grpc-js server for as long as all the reload windows together:
    // the longest wait this machine, the probe's client and grpc-js give with no Verdict at all.
    process.stderr.write(`bench-reload: ${fmtInt(types)} types, ${workers} worker(s): the same probes against the empty grpc-js server\n`);
    const referenceMaxCheckMs = await emptyServerLongestCheck(set, 2 * workers, changes.reduce((t, c) => t + (c.window![1] - c.window![0]), 0));
    if (process.env.BENCH_KEEP_LOGS === '1') {
      // Probe samples and change times in ms since the server's spawn, to line up with its GC trace.
      const rel = (t: number) => Math.round((t - server.startedAtMonotonic) * 10) / 10;
      const samples = probes.flatMap((p) => p.samples.map((x) => ({ worker: p.worker, at: rel(x.sentAt), ms: Math.round(x.ms * 10) / 10 })));
      await writeFile(path.join(tmp, `probes-${types}.json`), JSON.stringify({ serverStartMonotonic: server.startedAtMonotonic, changeTimes: changeTimes.map(rel), samples }));
    }

    // Memory and CPU under load, and the storm, without per-decision logging.
    process.stderr.write(`bench-reload: ${fmtInt(types)} types, ${workers} worker(s): load\n`);
    server = await startServer(dir, workers, false);
    await waitServing(server, workers);
    await sleep(1_500);
    const pids = workerPids(server, workers);
    const rss = (pid: number | undefined) => (pid === undefined ? undefined : rssBytes(pid) / MB);
    const rssIdleMB = { primary: rss(pids.primary), workers: pids.workers.map((p) => rss(p)!) };
    for (const p of [pids.primary, ...pids.workers]) if (p !== undefined) resetPeakRss(p);
    const workload = `large:${types}` as const;
    const load = await runLoad({ address: server.address, protocol: 'verdict.v1', method: 'Check', workload, inFlight: opts.inFlight, generators: 2, warmupMs: 2_000, durationMs: opts.loadSeconds * 1000, serverPid: server.child.pid });
    const peak = (pid: number | undefined) => (pid === undefined ? undefined : peakRssBytes(pid) / MB);
    const rssLoadMB = { primary: peak(pids.primary), workers: pids.workers.map((p) => peak(p)!) };
    let storm: CaseResult['storm'];
    if (opts.storm > 0) {
      process.stderr.write(`bench-reload: ${fmtInt(types)} types, ${workers} worker(s): storm (${opts.storm} changes)\n`);
      const steady = await runLoad({ address: server.address, protocol: 'verdict.v1', method: 'Check', workload, inFlight: opts.inFlight, generators: 2, warmupMs: 1_000, durationMs: 20_000 });
      const expected: string[] = [];
      const logsBefore = server.logs.length;
      const storming = runLoad({ address: server.address, protocol: 'verdict.v1', method: 'Check', workload, inFlight: opts.inFlight, generators: 2, warmupMs: 1_000, durationMs: opts.storm * 1000 });
      await sleep(1_500);
      for (let k = 0; k < opts.storm; k++) {
        const t = performance.now();
        expected.push(await change('one file'));
        await sleep(Math.max(0, 1_000 - (performance.now() - t)));
      }
      const stormed = await storming;
      await sleep(2_000);
      const seen = server.logs.slice(logsBefore).filter((l) => l.msg === 'policy set reloaded' && l.worker === undefined).map((l) => String(l.revision));
      // In order: what went live is the expected sequence with nothing out of place (changes that
      // arrive while another compiles are applied together, as the latest, so some may be skipped).
      let at = 0;
      const inOrder = seen.every((r) => (at = expected.indexOf(r, at) + 1) > 0) && seen[seen.length - 1] === expected[expected.length - 1];
      storm = { steadyP99Ms: steady.latencyMs.p99, stormP99Ms: stormed.latencyMs.p99, changes: expected.length, liveInOrder: inOrder, revisionsSeen: seen.length };
    }
    await stopServer(server);
    return {
      types,
      workers,
      coldStartMs,
      coldStartCpuMs,
      changes,
      quietMaxCheckMs,
      quietMaxLoopMs,
      referenceMaxCheckMs,
      rssIdleMB,
      rssLoadMB,
      cpuMicrosPerCheck: load.server?.cpuMicrosPerCheck ?? Number.NaN,
      checksPerSecond: load.checksPerSecond,
      loadP99Ms: load.latencyMs.p99,
      storm,
    };
  } finally {
    if (process.env.BENCH_KEEP_LOGS === '1') process.stderr.write(`bench-reload: kept ${tmp}\n`);
    else await rm(tmp, { recursive: true, force: true });
  }
}

const list = (xs: readonly number[], digits = 0) => xs.map((x) => fmtNum(x, digits)).join(' / ');

function render(results: readonly CaseResult[], paired?: PairedResult): string[] {
  const lines = results.length === 0 ? [] : [
    '| types | workers | cold start to first answer (server CPU) | one-file change live (median, max) | longest Check during it | `"*"` change live (median, max) | longest Check during it | longest Check, quiet | RSS idle | RSS under load | CPU per check |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|',
  ];
  for (const r of results) {
    const of = (kind: ChangeResult['kind']) => r.changes.filter((c) => c.kind === kind);
    const live = (cs: ChangeResult[]) => cs.map((c) => Math.max(...c.liveMs));
    const worst = (cs: ChangeResult[]) => Array.from({ length: r.workers }, (_, w) => Math.max(...cs.map((c) => c.maxCheckMs[w]!)));
    // The longest event-loop delay in the same windows, when recorded: "18.8 ms (loop 6.1 ms)".
    const worstLoop = (cs: ChangeResult[]) => (cs.every((c) => c.maxLoopMs) ? ` (loop ${list(Array.from({ length: r.workers }, (_, w) => Math.max(...cs.map((c) => c.maxLoopMs![w]!))), 1)} ms)` : '');
    const quietLoop = r.quietMaxLoopMs ? ` (loop ${list(r.quietMaxLoopMs, 1)} ms)` : '';
    const one = of('one file');
    const star = of('"*" policy');
    const mem = (m: CaseResult['rssIdleMB']) => `${m.primary !== undefined ? `primary ${fmtNum(m.primary, 0)}, ` : ''}worker${r.workers > 1 ? 's' : ''} ${list(m.workers)} MB`;
    lines.push(
      `| ${fmtInt(r.types)} | ${r.workers} | ${fmtInt(median(r.coldStartMs))} ms (${r.coldStartCpuMs ? `${fmtInt(median(r.coldStartCpuMs))} ms CPU` : list(r.coldStartMs)}) | ${fmtInt(median(live(one)))} / ${fmtInt(Math.max(...live(one)))} ms | ${list(worst(one), 1)} ms${worstLoop(one)} | ${fmtInt(median(live(star)))} / ${fmtInt(Math.max(...live(star)))} ms | ${list(worst(star), 1)} ms${worstLoop(star)} | ${list(r.quietMaxCheckMs, 1)} ms${quietLoop} | ${mem(r.rssIdleMB)} | ${mem(r.rssLoadMB)} | ${fmtNum(r.cpuMicrosPerCheck, 1)} µs |`,
    );
  }
  if (results.length > 0) lines.push('');
  const referenced = results.filter((r) => r.referenceMaxCheckMs !== undefined);
  if (referenced.length > 0) {
    lines.push(
      `- Reference: the same probes against the empty grpc-js server (answers without evaluating anything), for as long as each case's reload windows together: longest Check ${referenced.map((r) => `${fmtNum(r.referenceMaxCheckMs!, 1)} ms (${fmtInt(r.types)} types, ${r.workers} worker${r.workers > 1 ? 's' : ''})`).join(', ')}. "loop": the longest event-loop delay the worker itself saw in the same windows (bench/reload/loop-monitor.ts).`,
    );
  }
  for (const r of results) {
    if (r.storm) {
      const s = r.storm;
      lines.push(
        `- Reload storm, ${fmtInt(r.types)} types, ${r.workers} worker(s): ${s.changes} one-file changes, one a second, under ${fmtInt(r.checksPerSecond)} checks/s: Check p99 ${fmtNum(s.stormP99Ms, 1)} ms against ${fmtNum(s.steadyP99Ms, 1)} ms without changes (**${fmtNum(s.stormP99Ms / s.steadyP99Ms, 2)}×**, target ≤ 2×); ${s.revisionsSeen === s.changes && s.liveInOrder ? '**every change went live, in order**' : `${s.revisionsSeen} revisions went live ${s.liveInOrder ? 'in order, ending with the last change (the others were applied together with a later one)' : '**out of order or without the last change**'}`}.`,
      );
    }
  }
  const byTypes = (t: number) => results.filter((r) => r.types === t && r.workers === 1)[0];
  const [small, big] = [byTypes(1000), byTypes(10_000)];
  if (small && big) {
    lines.push(
      `- 10,000 against 1,000 types (1 worker): cold start ${fmtNum(median(big.coldStartMs) / median(small.coldStartMs), 1)}× (target ≤ 10×); CPU per check ${fmtNum(big.cpuMicrosPerCheck / small.cpuMicrosPerCheck, 2)}× between the two cases' loads above (minutes apart).`,
    );
  }
  if (paired && paired.rounds.length > 0) {
    const ratios = paired.rounds.map((r) => r.big / r.small);
    lines.push(
      `- CPU per check, paired (one process each, ${paired.rounds.length} alternating rounds of ${paired.seconds} s, requests spread over every type of each set): ${fmtInt(paired.smallTypes)} types ${fmtNum(median(paired.rounds.map((r) => r.small)), 1)} µs, ${fmtInt(paired.bigTypes)} types ${fmtNum(median(paired.rounds.map((r) => r.big)), 1)} µs (medians); ratio per round ${list(ratios, 2)}, **median ${fmtNum(median(ratios), 2)}×** (target within 10%).`,
    );
  }
  return lines;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const typesList = flags.list('types', ['1000', '10000']).map(Number);
  const workersList = flags.list('workers', ['1', '2']).map(Number);
  const stormTypes = flags.int('storm-types', 1000);
  const opts = { changes: flags.int('changes', 5), coldReps: flags.int('cold-reps', 3), loadSeconds: flags.num('load-seconds', 10), inFlight: flags.int('in-flight', 16) };
  const stormChanges = flags.int('storm', 60);
  const pairedOpts = { rounds: flags.int('paired-rounds', 6), seconds: flags.num('paired-seconds', 8), inFlight: opts.inFlight };
  const results: CaseResult[] = [];
  let paired: PairedResult | undefined;
  const fromJson = flags.optStr('from-json');
  const partialFile = flags.str('partial', path.join(os.tmpdir(), 'verdict-bench-reload.json'));
  if (fromJson) {
    // An earlier run's --json: { cases, paired }, or (before the paired rounds) the array of cases.
    const saved = JSON.parse(await readFile(fromJson, 'utf8')) as CaseResult[] | { cases: CaseResult[]; paired?: PairedResult };
    results.push(...(Array.isArray(saved) ? saved : saved.cases));
    paired = Array.isArray(saved) ? undefined : saved.paired;
  } else for (const types of flags.bool('paired-only') ? [] : typesList) {
    for (const workers of workersList) {
      results.push(await measureCase(types, workers, { ...opts, storm: types === stormTypes && workers === workersList[workersList.length - 1] ? stormChanges : 0 }));
      // Kept as it goes, so a failure later does not lose what was measured.
      await writeFile(partialFile, JSON.stringify({ cases: results }, null, 2));
    }
  }
  const [smallest, largest] = [Math.min(...typesList), Math.max(...typesList)];
  if (!fromJson && pairedOpts.rounds > 0 && smallest !== largest) {
    paired = await measurePaired(smallest, largest, pairedOpts);
    await writeFile(partialFile, JSON.stringify({ cases: results, paired }, null, 2));
  }
  if (flags.bool('json')) {
    process.stdout.write(`${JSON.stringify({ cases: results, paired }, null, 2)}\n`);
    return;
  }
  const lines = render(results, paired);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (flags.bool('write-docs')) {
    const command = `node dist/bench/reload/run.js ${process.argv.slice(2).filter((a) => a !== '--write-docs').join(' ')}`.trim();
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    const head = `Measured ${when} UTC on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, a shared machine. Command: \`${command}\``;
    await writeDocs(path.join(ROOT, 'docs/performance.md'), `${head}\n\n${lines.join('\n')}`, 'bench-reload');
    process.stderr.write('bench-reload: updated docs/performance.md\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-reload: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
