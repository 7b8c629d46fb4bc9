/**
 * The gRPC benchmark (`make bench`): runs every scenario against every server side by side in the
 * same run (interleaved, repeated), and prints a markdown table of medians.
 *
 *   node dist/bench/run.js [--servers empty,verdict] [--scenarios check-1,check-16,...]
 *                          [--reps 3] [--duration 5] [--warmup 1] [--generators 2] [--client h2|grpc-js] [--count N]
 *                          [--types 1000] [--policies policies] [--quiet-wait 15] [--quick] [--write-docs] [--out results.json]
 *
 * Every flag can also be given as an environment variable BENCH_<FLAG> (e.g. BENCH_DURATION=10).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runLoad } from './grpc/driver.js';
import { cpuSnapshot, machineCpuMicros } from './grpc/proc.js';
import { parseClientKind } from './grpc/unary-transport.js';
import { writeLargePolicySet } from './generate/large-policy-set.js';
import { ROOT, SERVERS, type RunningServer, type ServerDefinition } from './servers.js';
import { protocol as protocolNamed } from './grpc/protocols.js';
import { renderTable, writeDocs, type Row, type Scenario } from './report.js';
import { fmtInt, fmtMs, fmtNum, median, parseFlags } from './util.js';

const SCENARIOS: readonly Scenario[] = [
  { id: 'check-1', label: 'Check, 1 in flight', workload: 'example', method: 'Check', inFlight: 1 },
  { id: 'check-16', label: 'Check, 16 in flight', workload: 'example', method: 'Check', inFlight: 16 },
  { id: 'check-64', label: 'Check, 64 in flight', workload: 'example', method: 'Check', inFlight: 64 },
  { id: 'check-256', label: 'Check, 256 in flight', workload: 'example', method: 'Check', inFlight: 256 },
  { id: 'batch-16', label: 'CheckBatch 10×3, 16 in flight', workload: 'example', method: 'CheckBatch', inFlight: 16 },
  { id: 'extauthz-64', label: 'ext_authz Check, 64 in flight', workload: 'example', method: 'Check', inFlight: 64, protocol: 'envoy.auth.v3' },
  { id: 'authzen-64', label: 'AuthZEN evaluation, 64 in flight', workload: 'example', method: 'Check', inFlight: 64, protocol: 'authzen.v1' },
  { id: 'authzen-batch-16', label: 'AuthZEN evaluations 10×3, 16 in flight', workload: 'example', method: 'CheckBatch', inFlight: 16, protocol: 'authzen.v1' },
  { id: 'large-check-64', label: 'Check, 64 in flight, 1,000 types', workload: 'large', method: 'Check', inFlight: 64 },
  { id: 'large-batch-16', label: 'CheckBatch 10×3, 16 in flight, 1,000 types', workload: 'large', method: 'CheckBatch', inFlight: 16 },
];

/** Window over which idle servers' CPU is measured (CPU time has 10 ms ticks: 10 s gives 1 ms/s). */
const IDLE_WINDOW_MS = 10_000;
const IDLE_SETTLE_MS = 5_000;

/** --quick: one scenario per server (the smoke test). */
const QUICK_SCENARIOS = ['check-16'];

/**
 * On a shared machine, waits (at most `maxMs`) until other processes use less than `threshold`
 * cores, sampled over 500 ms, so a scenario does not start in the middle of someone else's burst.
 * Returns the last sample (cores busy).
 */
async function waitForQuiet(maxMs: number, threshold = 0.25): Promise<number> {
  const deadline = performance.now() + maxMs;
  let busy = 0;
  do {
    const a = machineCpuMicros();
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    busy = (machineCpuMicros().busy - a.busy) / ((performance.now() - t) * 1000);
    if (busy < threshold) break;
  } while (performance.now() < deadline);
  return busy;
}

/** Whether a server's protocol can run a scenario (ext_authz runs only its own scenarios, on its workloads). */
function canRun(server: ServerDefinition, scenario: Scenario): boolean {
  if (server.workloads && !server.workloads.includes(scenario.workload)) return false;
  if (scenario.protocol) return server.protocol === scenario.protocol;
  return !protocolNamed(server.protocol).dedicated;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The command line to repeat this run, with any BENCH_* settings from the environment. */
function invokedAs(argv: readonly string[]): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_COMMAND' && k !== 'BENCH_ARGS')
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return `${env}${process.env.BENCH_COMMAND ?? `node dist/bench/run.js ${argv.join(' ')}`.trim()}`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const flags = parseFlags(argv);
  if (flags.bool('help')) {
    process.stdout.write(`usage: node dist/bench/run.js [--servers ${SERVERS.map((s) => s.name).join(',')}] [--scenarios ${SCENARIOS.map((s) => s.id).join(',')}]
  [--reps 3] [--duration 5] [--warmup 1] [--generators 2] [--client h2|grpc-js] [--count N] [--types 1000] [--policies DIR] [--quiet-wait 15] [--quick] [--write-docs] [--out results.json]
Flags may also be set as BENCH_<FLAG> environment variables (BENCH_DURATION=10).\n`);
    return 0;
  }
  const quick = flags.bool('quick');
  const reps = flags.int('reps', quick ? 1 : 3);
  const durationMs = flags.num('duration', quick ? 2 : 5) * 1000;
  const warmupMs = flags.num('warmup', quick ? 0.5 : 1) * 1000;
  const generators = flags.int('generators', 2);
  const client = parseClientKind(flags.str('client', 'h2'));
  const count = flags.has('count') ? flags.int('count', 0) : undefined;
  const types = flags.int('types', 1000);
  const quietWaitMs = flags.num('quiet-wait', quick ? 0 : 15) * 1000;
  const policies = path.resolve(ROOT, flags.str('policies', 'policies'));
  const serverNames = flags.list('servers', SERVERS.filter((s) => !s.optIn).map((s) => s.name));
  const scenarioIds = flags.list('scenarios', quick ? QUICK_SCENARIOS : SCENARIOS.map((s) => s.id));

  const servers = serverNames.map((n) => {
    const s = SERVERS.find((d) => d.name === n);
    if (!s) throw new Error(`unknown server "${n}" (known: ${SERVERS.map((d) => d.name).join(', ')})`);
    return s;
  });
  const scenarios = scenarioIds.map((id) => {
    const s = SCENARIOS.find((d) => d.id === id);
    if (!s) throw new Error(`unknown scenario "${id}" (known: ${SCENARIOS.map((d) => d.id).join(', ')})`);
    return s;
  });

  const work = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-'));
  const logDir = path.join(work, 'logs');
  const rows: Row[] = [];
  for (const scenario of scenarios) for (const server of servers) if (canRun(server, scenario)) rows.push({ scenario, server, runs: [] });
  const idle: { server: string; workload: string; msPerSecond: number }[] = [];
  const started = new Date();
  log(`bench: ${servers.map((s) => s.name).join(', ')} × ${scenarios.length} scenarios × ${reps} reps, ${durationMs / 1000} s + ${warmupMs / 1000} s warm-up each; logs in ${logDir}`);

  try {
    for (const workload of [...new Set(scenarios.map((s) => s.workload))]) {
      let policiesDir = policies;
      if (workload === 'large') {
        policiesDir = path.join(work, 'large-policies');
        const t = performance.now();
        await writeLargePolicySet(policiesDir, { types });
        log(`bench: wrote the ${types}-type policy set to ${policiesDir} in ${fmtInt(performance.now() - t)} ms`);
      }
      const running: { def: ServerDefinition; server: RunningServer }[] = [];
      try {
        for (const def of servers) {
          if (!scenarios.some((s) => s.workload === workload && canRun(def, s))) continue;
          const t = performance.now();
          const server = await def.start({ workload, policiesDir, logDir });
          running.push({ def, server });
          log(`bench: ${def.name} (${workload}) answering on ${server.address}, pid ${server.pid}, after ${fmtInt(performance.now() - t)} ms`);
        }
        if (!quick) {
          // Background cost of an idle server (timers, policy-directory polling), once start-up work
          // (background JIT, GC of start-up garbage) has settled.
          await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
          const pids = running.map((r) => r.server.pid);
          const a = cpuSnapshot(pids);
          await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
          const b = cpuSnapshot(pids);
          running.forEach((r, i) => idle.push({ server: r.def.name, workload, msPerSecond: (b.micros[i]! - a.micros[i]!) / (b.at - a.at) }));
        }
        for (let rep = 0; rep < reps; rep++) {
          for (const scenario of scenarios.filter((s) => s.workload === workload)) {
            // Alternate the order so neither server always runs right after the other.
            const order = rep % 2 === 0 ? running : [...running].reverse();
            for (const { def, server } of order) {
              if (!canRun(def, scenario)) continue;
              if (quietWaitMs > 0) {
                const busy = await waitForQuiet(quietWaitMs);
                if (busy >= 0.25) log(`bench: the machine is busy (${fmtNum(busy, 2)} cores used by others); measuring anyway`);
              }
              const result = await runLoad({
                address: server.address,
                protocol: def.protocol,
                method: scenario.method,
                workload,
                inFlight: scenario.inFlight,
                generators,
                client,
                warmupMs,
                durationMs,
                count,
                serverPid: server.pid,
                ...(server.countEvents ? { countEvents: () => server.countEvents!() } : {}),
              });
              rows.find((r) => r.scenario === scenario && r.server === def)!.runs.push(result);
              log(
                `bench: rep ${rep + 1}/${reps} ${scenario.id.padEnd(15)} ${def.name.padEnd(8)} ${fmtInt(result.checksPerSecond).padStart(8)} checks/s  p50 ${fmtMs(result.latencyMs.p50)} ms  p99 ${fmtMs(result.latencyMs.p99)} ms  server ${fmtNum(
                  result.server?.cpuMicrosPerCheck ?? Number.NaN,
                  1,
                )} µs/check ${fmtNum(result.server?.cores ?? Number.NaN, 2)} cores  gen ${result.generatorCores.map((c) => fmtNum(c, 2)).join('+')} cores${result.eventsPerSecond !== undefined ? `  events ${fmtInt(result.eventsPerSecond)}/s` : ''}  others ${fmtNum(result.machine.otherCores, 2)} idle ${fmtNum(result.machine.idleCores, 2)}${result.errors ? `  ERRORS ${result.errors}: ${result.errorSamples.join('; ')}` : ''}`,
              );
            }
          }
        }
      } finally {
        for (const { server } of running) await server.stop();
      }
    }
  } finally {
    await rm(path.join(work, 'large-policies'), { recursive: true, force: true });
  }

  const table = renderTable(rows, types);
  const errors = rows.filter((r) => r.runs.some((x) => x.errors > 0));
  const notes = [
    ...(quietWaitMs > 0 ? [`- Before each measurement the harness waited up to ${quietWaitMs / 1000} s for other processes to use less than 0.25 cores.`] : []),
    `- ${reps} repetition${reps === 1 ? '' : 's'} of ${count !== undefined ? `${fmtInt(count)} calls` : `${durationMs / 1000} s`} per scenario and server (after ${warmupMs / 1000} s warm-up), servers interleaved; medians shown.`,
    `- Load: ${generators} generator process${generators === 1 ? '' : 'es'} (fewer when fewer calls are in flight), each with its own ${client === 'h2' ? 'HTTP/2 connection (node:http2, no grpc-js: like h2load, so the generators leave the server more of the machine)' : 'grpc-js channel'}, sending pre-encoded requests; one CheckBatch = ${30} checks (10 resources × 3 actions).${scenarios.some((sc) => sc.protocol === 'authzen.v1') ? ' AuthZEN scenarios: raw keep-alive HTTP/1.1 connections instead (bench/http/http1-transport.ts), one per call in flight, pre-encoded requests with an X-Request-ID, the same bytes to Verdict and Cerbos; one evaluations call = 30 items.' : ''}`,
    '- Server CPU and RSS come from /proc/<pid>/stat (utime + stime over the measured window) and VmHWM (peak, reset before each scenario); "load-gen cores" is the generators\' CPU over the same window, "other procs cores" what the rest of the machine used meanwhile (from /proc/stat: other tenants, the harness).',
    `- The machine has ${os.cpus().length} CPUs shared by the server and the load generators: when server cores + load-gen cores approach ${os.cpus().length}, the figure is machine-bound and server CPU µs/check is the comparable number. Server figures include the server's child processes (cluster workers); RSS is then their sum.`,
    ...servers.map((s) => `- \`${s.name}\`: ${s.description}.`),
    ...(idle.length > 0
      ? [
          `- CPU of an idle server (timers, policy-directory polling), over ${IDLE_WINDOW_MS / 1000} s starting ${IDLE_SETTLE_MS / 1000} s after all servers answer: ${servers
            .map((s) => `${s.name} ${idle.filter((i) => i.server === s.name).map((i) => `${fmtNum(i.msPerSecond, 1)} ms/s (${i.workload === 'large' ? `${fmtInt(types)} types` : i.workload})`).join(', ')}`)
            .join('; ')}.`,
        ]
      : []),
    ...rows
      .filter((r) => r.runs.some((x) => x.eventsPerSecond !== undefined))
      .map((r) => {
        const events = median(r.runs.map((x) => x.eventsPerSecond ?? Number.NaN).filter(Number.isFinite));
        const checks = median(r.runs.map((x) => x.checksPerSecond));
        return `- Decision events stored in JetStream, ${r.server.name}, ${r.scenario.id}: ${fmtInt(events)} events/s over the measured window vs ${fmtInt(checks)} checks/s (ratio ${fmtNum(events / checks, 3)}; per rep ${r.runs.map((x) => `${fmtInt(x.eventsPerSecond ?? Number.NaN)}/${fmtInt(x.checksPerSecond)}`).join(', ')}).`;
      }),
    ...errors.map((r) => `- **${r.server.name}, ${r.scenario.id}: ${r.runs.reduce((s, x) => s + x.errors, 0)} failed calls** (${r.runs.flatMap((x) => x.errorSamples).slice(0, 2).join('; ')}).`),
  ];
  const header = `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, grpc-js 1.14.7. Command: \`${invokedAs(argv)}\``;
  process.stdout.write(`\n${header}\n\n${table}\n\n${notes.join('\n')}\n`);

  const jsonFile = flags.optStr('out') ?? path.join(ROOT, 'bench/results/latest.json');
  await mkdir(path.dirname(jsonFile), { recursive: true });
  await writeFile(
    jsonFile,
    JSON.stringify({ started, argv, reps, durationMs, warmupMs, generators, client, types, idle, rows: rows.map((r) => ({ scenario: r.scenario, server: r.server.name, runs: r.runs })) }, null, 1),
  );
  if (flags.bool('write-docs')) {
    await writeDocs(path.join(ROOT, 'docs/performance.md'), `${header}\n\n${table}\n\n${notes.join('\n')}`);
    log('bench: updated docs/performance.md');
  }
  // BENCH_KEEP_LOGS=1 keeps the servers' logs (e.g. with BENCH_NODE_FLAGS=--trace-gc) for a look afterwards.
  if (process.env.BENCH_KEEP_LOGS === '1') log(`bench: kept ${logDir}`);
  else await rm(work, { recursive: true, force: true });
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
