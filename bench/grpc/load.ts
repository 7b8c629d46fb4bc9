/**
 * One load run against a server that is already running (for ad-hoc measurements and profiling):
 *
 *   node dist/bench/grpc/load.js --address 127.0.0.1:50051 [--server-pid PID] [--method Check|CheckBatch]
 *        [--in-flight 64] [--generators 2] [--client h2|grpc-js] [--duration 5 | --count N] [--warmup 1]
 *        [--workload example|large] [--protocol verdict.v1] [--json]
 *
 * With --server-pid, the server's CPU per call and peak RSS are reported too. For --workload large
 * the server must serve the generated set (node dist/bench/generate/large-policy-set.js DIR).
 */
import { runLoad } from './driver.js';
import type { MethodName } from './protocols.js';
import { parseClientKind } from './unary-transport.js';
import { fmtInt, fmtMs, fmtNum, parseFlags } from '../util.js';
import type { WorkloadName } from '../workloads.js';

const flags = parseFlags(process.argv.slice(2));
const address = flags.optStr('address');
if (!address) {
  process.stderr.write('usage: node dist/bench/grpc/load.js --address HOST:PORT [--server-pid PID] [--method Check] [--in-flight 64] [--generators 2] [--duration 5 | --count N]\n');
  process.exit(2);
}
const serverPid = flags.has('server-pid') ? flags.int('server-pid', 0) : undefined;
const result = await runLoad({
  address,
  protocol: flags.str('protocol', 'verdict.v1'),
  method: flags.str('method', 'Check') as MethodName,
  workload: flags.str('workload', 'example') as WorkloadName,
  inFlight: flags.int('in-flight', 64),
  generators: flags.int('generators', 2),
  client: parseClientKind(flags.str('client', 'h2')),
  warmupMs: flags.num('warmup', 1) * 1000,
  durationMs: flags.num('duration', 5) * 1000,
  count: flags.has('count') ? flags.int('count', 0) : undefined,
  serverPid,
});
if (flags.bool('json')) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const l = result.latencyMs;
  process.stdout.write(
    [
      `${result.method} × ${result.inFlight} in flight (${result.generators} generators), ${fmtNum(result.windowMs / 1000, 1)} s: ${fmtInt(result.calls)} calls, ${fmtInt(result.checksPerSecond)} checks/s, ${result.errors} errors`,
      `latency ms: p50 ${fmtMs(l.p50)}  p90 ${fmtMs(l.p90)}  p99 ${fmtMs(l.p99)}  p99.9 ${fmtMs(l.p999)}  max ${fmtMs(l.max)}`,
      result.server
        ? `server: ${fmtNum(result.server.cpuMicrosPerCall, 1)} µs CPU/call, ${fmtNum(result.server.cpuMicrosPerCheck, 1)} µs/check, ${fmtNum(result.server.cores, 2)} cores, peak RSS ${fmtNum(result.server.peakRssMB, 0)} MB`
        : 'server: (no --server-pid)',
      `load generators: ${result.generatorCores.map((c) => fmtNum(c, 2)).join(' + ')} cores (${fmtNum(result.generatorCpuMicrosPerCall, 1)} µs/call); other processes ${fmtNum(result.machine.otherCores, 2)} cores, idle ${fmtNum(result.machine.idleCores, 2)}`,
      ...result.errorSamples.map((e) => `error: ${e}`),
    ].join('\n') + '\n',
  );
}
