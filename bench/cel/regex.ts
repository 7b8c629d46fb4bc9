/**
 * matches(): re2js (what Verdict runs since issue 11) against V8's RegExp as cel-js ran it before
 * (a `new RegExp(pattern)` per call, with V8's linear-engine fallback switched on), on the
 * patterns of the documentation, with typical inputs. In process, ns per match, medians.
 *
 *   node dist/bench/cel/regex.js [--reps 7] [--json]
 */
import v8 from 'node:v8';
import { RE2JS } from 're2js';
import { compilePattern } from '../../src/cel/regex.js';
import { fmtNum, median, parseFlags } from '../util.js';

// The flags Verdict set before it moved to re2js (src/cel/regex.ts of that time).
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
v8.setFlagsFromString('--enable-experimental-regexp-engine');

const CASES: { pattern: string; inputs: string[] }[] = [
  { pattern: '^INV-[0-9]{6}$', inputs: ['INV-123456', 'INV-12345x', 'invoice-2026-000123'] },
  { pattern: '^[a-z]+\\d+$', inputs: ['abc123', 'report42', 'no-digits-here'] },
  { pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', inputs: ['01a2250a-630e-75e1-a1ed-d38a9f9a4239', 'not-a-uuid'] },
  { pattern: '^[0-9a-f]{32}$', inputs: ['0123456789abcdef0123456789abcdef', '0123456789abcdef'] },
  { pattern: '^public/', inputs: ['public/reports/q1.pdf', 'private/x'] },
  { pattern: '^[a-z0-9._%+-]+@example\\.com$', inputs: ['alice.smith@example.com', 'mallory@evil.example.org'] },
];

function nsPerOp(run: () => boolean, ops: number): number {
  const start = process.hrtime.bigint();
  let hits = 0;
  for (let i = 0; i < ops; i++) if (run()) hits++;
  const ns = Number(process.hrtime.bigint() - start) / ops;
  if (hits < 0) throw new Error('unreachable');
  return ns;
}

function main(): void {
  const flags = parseFlags(process.argv.slice(2));
  const reps = flags.int('reps', 7);
  const ops = 20_000;
  const rows: { pattern: string; input: string; before: number; v8: number; re2js: number; verdict: number }[] = [];
  for (const { pattern, inputs } of CASES) {
    const compiledV8 = new RegExp(pattern);
    const compiledRe2 = RE2JS.compile(pattern);
    const verdict = compilePattern(pattern);
    for (const input of inputs) {
      if (compiledV8.test(input) !== compiledRe2.test(input) || verdict.test(input) !== compiledRe2.test(input)) throw new Error(`engines disagree on ${pattern} / ${input}`);
      const before: number[] = [];
      const v8ns: number[] = [];
      const re2: number[] = [];
      const ours: number[] = [];
      for (let r = 0; r < reps; r++) {
        before.push(nsPerOp(() => new RegExp(pattern).test(input), ops));
        v8ns.push(nsPerOp(() => compiledV8.test(input), ops));
        re2.push(nsPerOp(() => compiledRe2.test(input), ops));
        ours.push(nsPerOp(() => verdict.test(input), ops));
      }
      rows.push({ pattern, input, before: median(before), v8: median(v8ns), re2js: median(re2), verdict: median(ours) });
    }
  }
  if (flags.bool('json')) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log(`matches(): ns per match, median of ${reps} × ${ops}`);
  console.log('| pattern | input | before: new RegExp per call | V8 RegExp, compiled once | re2js test() | Verdict now (re2js, ^…$ as a whole-input match) |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| \`${r.pattern}\` | \`${r.input}\` | ${fmtNum(r.before, 0)} | ${fmtNum(r.v8, 0)} | ${fmtNum(r.re2js, 0)} | ${fmtNum(r.verdict, 0)} |`);
}

main();
