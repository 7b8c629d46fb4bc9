/**
 * The first load of a policy directory in process, A/B between builds in the same session: each run
 * is a fresh Node process (cold JIT, as at start) that imports the build's directory source and
 * compiler, reads the directory and compiles it once (`compileNow`, as `verdict serve` does before
 * it serves). Runs alternate between the checkouts given, so both see the same machine load.
 *
 *   node dist/bench/reload/first-load.js --policies DIR [--reps 7] CHECKOUT...
 *
 * Prints, per checkout, the medians (and minimum) of the process CPU for the imports, the read and
 * the compile.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface Run {
  readonly importMs: number;
  readonly readMs: number;
  readonly compileMs: number;
}

const CHILD = `
const [checkout, dir] = process.argv.slice(1);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const c0 = cpu();
const { DirectorySource } = await import(checkout + '/dist/src/policy/directory-source.js');
const { PolicyCompiler } = await import(checkout + '/dist/src/policy/compiler.js');
const c1 = cpu();
const source = new DirectorySource(dir, { watch: false, debounceMs: 0, settleMs: 0, pollIntervalMs: 0 });
const snapshot = await source.read({ kind: 'startup' });
const c2 = cpu();
const candidate = new PolicyCompiler().compileNow(snapshot.files);
const c3 = cpu();
if (!candidate.set) throw new Error('the set does not load: ' + JSON.stringify(candidate.issues.slice(0, 3)));
process.stdout.write(JSON.stringify({ importMs: c1 - c0, readMs: c2 - c1, compileMs: c3 - c2 }));
`;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { policies: { type: 'string' }, reps: { type: 'string', default: '7' } }, allowPositionals: true });
  const reps = Number(values.reps);
  if (!values.policies || positionals.length === 0 || !Number.isInteger(reps) || reps < 1) {
    process.stderr.write('usage: node dist/bench/reload/first-load.js --policies DIR [--reps N] CHECKOUT...\n');
    process.exitCode = 2;
    return;
  }
  const runs = new Map<string, Run[]>(positionals.map((c) => [c, []]));
  for (let r = 0; r < reps; r++) {
    for (const checkout of positionals) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, path.resolve(checkout), path.resolve(values.policies)], { encoding: 'utf8' });
      runs.get(checkout)!.push(JSON.parse(out) as Run);
    }
  }
  for (const [checkout, rs] of runs) {
    const compile = rs.map((x) => x.compileMs);
    process.stdout.write(
      `median of ${reps}: ${checkout}: import ${Math.round(median(rs.map((x) => x.importMs)))} ms, read ${Math.round(median(rs.map((x) => x.readMs)))} ms, compile ${Math.round(median(compile))} ms (min ${Math.round(Math.min(...compile))}) of CPU\n`,
    );
  }
}

main();
