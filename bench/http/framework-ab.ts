/**
 * node:http or fastify for the AuthZEN API? A/B on the same machine and run: Verdict's own listener
 * (`verdict serve --workers 1 --no-events --http`, node:http) against the same AuthzenApi served by
 * fastify (bench/http/fastify-server.ts), one process each, the example workload's evaluations at
 * `--in-flight` calls (default 64), alternating A, B, B, A, ... and printing the medians.
 *
 *   npm install --no-save fastify@5.12.8
 *   node dist/bench/http/framework-ab.js [--reps 6] [--duration 5] [--in-flight 64] [--method Check|CheckBatch]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { runLoad, type LoadResult } from '../grpc/driver.js';
import { freePort, ROOT } from '../servers.js';
import { fmtInt, fmtNum, median, parseFlags } from '../util.js';
import { AUTHZEN_PROTOCOL } from './authzen-protocol.js';
import { waitUntilHttpAnswers } from './ready.js';

interface Candidate {
  readonly name: string;
  readonly child: ChildProcess;
  readonly address: string;
  readonly results: LoadResult[];
}

async function start(name: string, args: (port: number) => string[]): Promise<Candidate> {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERDICT_')));
  const child = spawn(process.execPath, args(port), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const address = `127.0.0.1:${port}`;
  await waitUntilHttpAnswers(address, 'example', 30_000);
  return { name, child, address, results: [] };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const reps = flags.int('reps', 6);
  const durationMs = flags.num('duration', 5) * 1000;
  const inFlight = flags.int('in-flight', 64);
  const method = flags.str('method', 'Check') as 'Check' | 'CheckBatch';
  const policies = path.join(ROOT, 'policies');
  const candidates = [
    await start('node:http (verdict serve)', (p) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', policies, '--listen', '127.0.0.1:0', '--http', `127.0.0.1:${p}`, '--no-events', '--workers', '1']),
    await start('fastify 5.12.8', (p) => [path.join(ROOT, 'dist/bench/http/fastify-server.js'), '--policies', policies, '--listen', `127.0.0.1:${p}`]),
  ];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const c of rep % 2 === 0 ? candidates : [...candidates].reverse()) {
        const r = await runLoad({ address: c.address, protocol: AUTHZEN_PROTOCOL, method, workload: 'example', inFlight, generators: 2, warmupMs: 1000, durationMs, serverPid: c.child.pid! });
        c.results.push(r);
        process.stderr.write(`rep ${rep + 1}/${reps} ${c.name.padEnd(26)} ${fmtInt(r.checksPerSecond).padStart(8)} checks/s  server ${fmtNum(r.server!.cpuMicrosPerCheck, 1)} µs/check  p99 ${fmtNum(r.latencyMs.p99, 1)} ms  others ${fmtNum(r.machine.otherCores, 2)} cores${r.errors ? `  ERRORS ${r.errors}` : ''}\n`);
      }
    }
  } finally {
    for (const c of candidates) c.child.kill('SIGTERM');
  }
  process.stdout.write(`\n| server | checks/s (median) | server CPU µs/check (median) | p99 ms (median) | per rep checks/s |\n|---|---:|---:|---:|---|\n`);
  for (const c of candidates) {
    process.stdout.write(
      `| ${c.name} | ${fmtInt(median(c.results.map((r) => r.checksPerSecond)))} | ${fmtNum(median(c.results.map((r) => r.server!.cpuMicrosPerCheck)), 1)} | ${fmtNum(median(c.results.map((r) => r.latencyMs.p99)), 1)} | ${c.results.map((r) => fmtInt(r.checksPerSecond)).join(', ')} |\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
