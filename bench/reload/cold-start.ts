/**
 * Cold start of `verdict serve` to the "verdict serving" log line (a bound, serving port), A/B
 * between builds in the same session: runs alternate between the checkouts given, so both see the
 * same machine load.
 *
 *   node dist/bench/reload/cold-start.js --policies DIR [--reps 7] CHECKOUT...
 *
 * CHECKOUT is a directory with bin/verdict.js and dist/ (this checkout: `.`). Each run:
 * `verdict serve --policies DIR --listen 127.0.0.1:0 --no-events --workers 1`; wall ms from spawn
 * to the line, and the process's CPU (user + system, /proc/PID/stat) at that moment. Prints each
 * run and the medians. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface Run {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

function once(checkout: string, policies: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [path.join(checkout, 'bin/verdict.js'), 'serve', '--policies', policies, '--listen', '127.0.0.1:0', '--no-events', '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (done || !out.includes('"verdict serving"')) return;
      done = true;
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
      child.kill('SIGKILL');
      resolve({ wallMs, cpuMs });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      if (!done) reject(new Error(`${checkout}: exited before serving:\n${out.slice(-2000)}`));
    });
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { policies: { type: 'string' }, reps: { type: 'string', default: '7' } }, allowPositionals: true });
  const reps = Number(values.reps);
  if (!values.policies || positionals.length === 0 || !Number.isInteger(reps) || reps < 1) {
    process.stderr.write('usage: node dist/bench/reload/cold-start.js --policies DIR [--reps N] CHECKOUT...\n');
    process.exitCode = 2;
    return;
  }
  const runs = new Map<string, Run[]>(positionals.map((c) => [c, []]));
  for (let r = 0; r < reps; r++) {
    for (const checkout of positionals) {
      const run = await once(checkout, values.policies);
      runs.get(checkout)!.push(run);
      process.stdout.write(`${checkout}\t${Math.round(run.wallMs)} ms wall\t${Math.round(run.cpuMs)} ms CPU\n`);
    }
  }
  for (const [checkout, rs] of runs) {
    process.stdout.write(`median of ${reps}: ${checkout}: ${Math.round(median(rs.map((x) => x.wallMs)))} ms wall, ${Math.round(median(rs.map((x) => x.cpuMs)))} ms CPU\n`);
  }
}

await main();
