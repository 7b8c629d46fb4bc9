/**
 * What one background scan of a policy directory costs (the poll every reload.pollIntervalMs, and
 * each change's scan), A/B between builds in the same session: per checkout, a child process runs
 * `scanDirectory(dir)` as a poll does, and reports the CPU (all threads: the thread pool's stat
 * calls count), the wall time and the longest the event loop was held meanwhile (a 1 ms timer's
 * lateness). Runs alternate between the checkouts given, so both see the same machine load.
 *
 *   node dist/bench/reload/scan-cost.js --policies DIR [--reps 5] [--scans 20] CHECKOUT...
 *
 * CHECKOUT is a directory with dist/ (this checkout: `.`). Prints the medians per checkout.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from '../util.js';

interface Run {
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly longestHoldMs: number;
  readonly files: number;
}

/** The child: `node scan-cost.js --child MODULE DIR SCANS` prints one Run (medians over the scans). */
async function child(modulePath: string, dir: string, scans: number): Promise<void> {
  const { scanDirectory } = (await import(pathToFileURL(modulePath).href)) as { scanDirectory: (d: string) => Promise<{ files: Map<string, unknown> }> };
  await scanDirectory(dir); // warm: the kernel's caches, the JIT
  const runs: Run[] = [];
  for (let i = 0; i < scans; i++) {
    let longest = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last - 1);
      last = now;
    }, 1);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const scan = await scanDirectory(dir);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    longest = Math.max(longest, performance.now() - last - 1);
    clearInterval(timer);
    runs.push({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs, longestHoldMs: longest, files: scan.files.size });
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = (f: (r: Run) => number) => median(runs.map(f));
  process.stdout.write(JSON.stringify({ cpuMs: m((r) => r.cpuMs), wallMs: m((r) => r.wallMs), longestHoldMs: m((r) => r.longestHoldMs), files: runs[0]!.files }));
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { policies: { type: 'string' }, reps: { type: 'string', default: '5' }, scans: { type: 'string', default: '20' }, child: { type: 'boolean', default: false } } });
  if (values.child) {
    void child(positionals[0]!, positionals[1]!, Number(positionals[2]));
    return;
  }
  if (!values.policies || positionals.length === 0) {
    process.stderr.write('usage: node dist/bench/reload/scan-cost.js --policies DIR [--reps 5] [--scans 20] CHECKOUT...\n');
    process.exit(2);
  }
  const results = new Map<string, Run[]>(positionals.map((c) => [c, []]));
  for (let rep = 0; rep < Number(values.reps); rep++) {
    for (const checkout of rep % 2 === 0 ? positionals : [...positionals].reverse()) {
      const module = path.resolve(checkout, 'dist/src/policy/directory-scan.js');
      const out = execFileSync(process.execPath, [process.argv[1]!, '--child', module, path.resolve(values.policies), values.scans!], { encoding: 'utf8' });
      const run = JSON.parse(out) as Run;
      results.get(checkout)!.push(run);
      process.stdout.write(`${checkout}\t${run.files} files\tCPU ${run.cpuMs.toFixed(1)} ms\twall ${run.wallMs.toFixed(1)} ms\tloop held ${run.longestHoldMs.toFixed(1)} ms\n`);
    }
  }
  for (const [checkout, runs] of results) {
    const m = (f: (r: Run) => number) => median(runs.map(f)).toFixed(1);
    process.stdout.write(`median of ${runs.length}: ${checkout}: CPU ${m((r) => r.cpuMs)} ms, wall ${m((r) => r.wallMs)} ms, event loop held at most ${m((r) => r.longestHoldMs)} ms per scan\n`);
  }
}

main();
