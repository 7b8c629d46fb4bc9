/**
 * Runs one load scenario: forks the load-generator processes, spreads the calls in flight over
 * them, warms up, measures a window (by duration or call count), merges their latency histograms,
 * and charges the server's (and the generators') CPU over exactly that window from /proc.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram } from './histogram.js';
import type { FromGenerator, GeneratorConfig, GeneratorResult, ToGenerator } from './loadgen.js';
import { cpuSnapshot, processTree, resetTreePeakRss, treePeakRssBytes } from './proc.js';
import { protocol, type MethodName } from './protocols.js';
import type { ClientKind } from './unary-transport.js';
import type { WorkloadName } from '../workloads.js';

const LOADGEN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loadgen.js');

export interface LoadSpec {
  readonly address: string;
  readonly protocol: string;
  readonly method: MethodName;
  readonly workload: WorkloadName;
  /** Calls outstanding in total, spread over the generators. */
  readonly inFlight: number;
  /** Generator processes (at most inFlight). */
  readonly generators: number;
  /** The generators' transport (default h2: raw HTTP/2). */
  readonly client?: ClientKind;
  readonly warmupMs: number;
  /** Measure for this long... */
  readonly durationMs?: number;
  /** ...or for this many calls in total (split over the generators). */
  readonly count?: number;
  /** The server process to charge CPU and memory to; omitted for a server the harness did not start. */
  readonly serverPid?: number;
  /** For a server with decision events on: events stored so far, read at the window's start and end. */
  readonly countEvents?: () => Promise<number>;
}

export interface LoadResult {
  readonly method: MethodName;
  readonly workload: WorkloadName;
  readonly inFlight: number;
  readonly generators: number;
  readonly windowMs: number;
  readonly calls: number;
  readonly checks: number;
  readonly errors: number;
  readonly errorSamples: string[];
  readonly callsPerSecond: number;
  readonly checksPerSecond: number;
  readonly requestBytes: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number; readonly mean: number };
  /** Server figures cover the server process and its descendants (a cluster's workers). */
  readonly server?: { readonly processes: number; readonly cores: number; readonly cpuMicrosPerCall: number; readonly cpuMicrosPerCheck: number; readonly peakRssMB: number };
  /** CPU of each generator over the window, in cores (1.0 = one core fully busy). */
  readonly generatorCores: number[];
  readonly generatorCpuMicrosPerCall: number;
  /** Decision events stored over the window ÷ window (servers with events on). */
  readonly eventsPerSecond?: number;
  /** Whole machine over the window, in cores: busy (any process, ours or not) and idle. */
  readonly machine: { readonly busyCores: number; readonly idleCores: number; readonly otherCores: number };
}

class GeneratorProcess {
  readonly child: ChildProcess;
  private waiters: { type: string; resolve: (m: FromGenerator) => void; reject: (e: Error) => void }[] = [];
  private exited = false;
  pid = 0;

  constructor() {
    this.child = fork(LOADGEN, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.pid = this.child.pid ?? 0;
    this.child.on('message', (m: FromGenerator) => {
      if (m.type === 'fatal') {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`load generator: ${m.message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`load generator exited (code ${code}) before answering "${w.type}"`));
    });
  }

  send(msg: ToGenerator): void {
    if (!this.exited && this.child.connected) this.child.send(msg);
  }

  wait<T extends FromGenerator['type']>(type: T, timeoutMs: number): Promise<Extract<FromGenerator, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromGenerator, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async exit(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Splits `total` into `parts` near-equal positive integers. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const generators = Math.max(1, Math.min(spec.generators, spec.inFlight));
  const inFlight = split(spec.inFlight, generators);
  const procs = inFlight.map(() => new GeneratorProcess());
  try {
    const ready = await Promise.all(
      procs.map((p, index) => {
        const config: GeneratorConfig = { address: spec.address, protocol: spec.protocol, method: spec.method, workload: spec.workload, inFlight: inFlight[index]!, index, client: spec.client ?? 'h2' };
        const r = p.wait('ready', 60_000);
        p.send({ type: 'config', config });
        return r;
      }),
    );
    const pids = [...(spec.serverPid ? [spec.serverPid] : []), ...ready.map((r) => r.pid)];

    if (spec.serverPid) resetTreePeakRss(spec.serverPid);
    for (const p of procs) p.send({ type: 'start' });
    await sleep(spec.warmupMs);

    const results = procs.map((p) => p.wait('result', (spec.durationMs ?? 600_000) + 120_000));
    // Awaited below; a generator dying meanwhile must not be an unhandled rejection.
    for (const r of results) r.catch(() => undefined);
    const eventsBefore = spec.countEvents ? await spec.countEvents() : undefined;
    const before = cpuSnapshot(pids);
    const counts = spec.count !== undefined ? split(spec.count, generators) : undefined;
    procs.forEach((p, i) => p.send(counts ? { type: 'measure', count: counts[i]! } : { type: 'measure' }));
    let after: ReturnType<typeof cpuSnapshot>;
    let collected: GeneratorResult[];
    let eventsAfter: number | undefined;
    if (counts) {
      // Snapshot when the last generator is done.
      collected = await Promise.all(results.map((r) => r.then((m) => m.result)));
      after = cpuSnapshot(pids);
      eventsAfter = spec.countEvents ? await spec.countEvents() : undefined;
    } else {
      await sleep(spec.durationMs ?? 5000);
      after = cpuSnapshot(pids);
      eventsAfter = spec.countEvents ? await spec.countEvents() : undefined;
      for (const p of procs) p.send({ type: 'stop' });
      collected = await Promise.all(results.map((r) => r.then((m) => m.result)));
    }
    const peakRss = spec.serverPid ? treePeakRssBytes(spec.serverPid) : Number.NaN;
    const serverProcesses = spec.serverPid ? processTree(spec.serverPid).length : 0;

    const windowMs = after.at - before.at;
    const histogram = new LatencyHistogram();
    for (const r of collected) histogram.merge(r.histogram);
    const calls = collected.reduce((s, r) => s + r.calls, 0);
    const errors = collected.reduce((s, r) => s + r.errors, 0);
    const perCall = protocol(spec.protocol).checksPerCall(spec.workload, spec.method);
    const checks = calls * perCall;
    const cpu = pids.map((_, i) => after.micros[i]! - before.micros[i]!);
    const serverCpu = spec.serverPid ? cpu[0]! : undefined;
    const genCpu = spec.serverPid ? cpu.slice(1) : cpu;
    const ms = (us: number) => us / 1000;
    return {
      method: spec.method,
      workload: spec.workload,
      inFlight: spec.inFlight,
      generators,
      windowMs,
      calls,
      checks,
      errors,
      errorSamples: [...new Set(collected.flatMap((r) => r.errorSamples))].slice(0, 5),
      callsPerSecond: (calls * 1000) / windowMs,
      checksPerSecond: (checks * 1000) / windowMs,
      requestBytes: Math.round(ready.reduce((s, r) => s + r.requestBytes, 0) / ready.length),
      latencyMs: {
        p50: ms(histogram.percentile(0.5)),
        p90: ms(histogram.percentile(0.9)),
        p99: ms(histogram.percentile(0.99)),
        p999: ms(histogram.percentile(0.999)),
        max: ms(histogram.maxMicros),
        mean: ms(histogram.mean()),
      },
      server:
        serverCpu === undefined
          ? undefined
          : {
              processes: serverProcesses,
              cores: serverCpu / (windowMs * 1000),
              cpuMicrosPerCall: calls > 0 ? serverCpu / calls : Number.NaN,
              cpuMicrosPerCheck: checks > 0 ? serverCpu / checks : Number.NaN,
              peakRssMB: peakRss / 2 ** 20,
            },
      generatorCores: genCpu.map((c) => c / (windowMs * 1000)),
      generatorCpuMicrosPerCall: calls > 0 ? genCpu.reduce((s, c) => s + c, 0) / calls : Number.NaN,
      ...(eventsBefore !== undefined && eventsAfter !== undefined ? { eventsPerSecond: ((eventsAfter - eventsBefore) * 1000) / windowMs } : {}),
      machine: {
        busyCores: (after.machine.busy - before.machine.busy) / (windowMs * 1000),
        idleCores: (after.machine.idle - before.machine.idle) / (windowMs * 1000),
        // CPU used by processes other than the server and the generators (other tenants, the harness itself).
        otherCores: (after.machine.busy - before.machine.busy - cpu.reduce((s, c) => s + c, 0)) / (windowMs * 1000),
      },
    };
  } finally {
    await Promise.all(procs.map((p) => p.exit()));
  }
}
