/**
 * Per-check cost of this checkout's engine against another checkout's (e.g. the commit before a
 * change), in one process: both compile the same generated set, then `decide()` is timed in
 * alternating blocks (the order flipped every block), and the median of the paired ratios is
 * reported. Separate processes on this 2-CPU VM swing ±30 % run to run; pairing in one process
 * brings the harness's own spread (this checkout against itself, `--base .`) to about ±5 %.
 *
 *   node dist/bench/engine/paired-ab.js --base /path/to/other/checkout [--types 1000] [--blocks 40] [--base-first]
 *
 * The other checkout must be built (its dist/), and able to load this checkout's generated set.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CheckRequest, CompiledPolicySet, Decision } from '../../src/engine/index.js';
import { writeLargePolicySet } from '../generate/large-policy-set.js';
import { ROOT, median, parseFlags } from '../util.js';
import { largeRequests } from '../workloads.js';

interface Engine {
  readonly set: CompiledPolicySet;
  readonly decide: (set: CompiledPolicySet, request: CheckRequest, options: { now: Date }) => Decision;
}

async function engineOf(checkout: string, dir: string): Promise<Engine> {
  const dist = path.join(checkout, 'dist', 'src');
  const policy = (await import(pathToFileURL(path.join(dist, 'policy', 'index.js')).href)) as { loadPolicyDirectory(dir: string): Promise<CompiledPolicySet> };
  const engine = (await import(pathToFileURL(path.join(dist, 'engine', 'index.js')).href)) as { decide: Engine['decide'] };
  return { set: await policy.loadPolicyDirectory(dir), decide: engine.decide };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), ['base-first']);
  const baseFlag = flags.optStr('base');
  const base = path.resolve(baseFlag ?? '');
  if (!baseFlag || !existsSync(path.join(base, 'dist', 'src', 'engine', 'index.js'))) throw new Error('--base must name a built checkout (with dist/src/engine/index.js)');
  const types = flags.int('types', 1000);
  const blocks = flags.int('blocks', 40);
  const baseFirst = flags.bool('base-first');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-paired-ab-'));
  try {
    const dir = path.join(tmp, 'policies');
    await writeLargePolicySet(dir, { types });
    const requests = largeRequests(4096, { types });
    // The set compiled first sits differently in the heap: --base-first flips it, to see that bias.
    const [first, second] = baseFirst ? [base, ROOT] : [ROOT, base];
    const a = await engineOf(first, dir);
    const b = await engineOf(second, dir);
    const [mine, theirs] = baseFirst ? [b, a] : [a, b];
    const now = new Date();
    const time = (e: Engine): number => {
      const t = process.hrtime.bigint();
      for (let r = 0; r < 3; r++) for (const q of requests) e.decide(e.set, q, { now });
      return Number(process.hrtime.bigint() - t) / (3 * requests.length);
    };
    for (let i = 0; i < 5; i++) time(theirs), time(mine);
    const ns = { mine: [] as number[], theirs: [] as number[] };
    for (let i = 0; i < blocks; i++) {
      if (i % 2) (ns.theirs.push(time(theirs)), ns.mine.push(time(mine)));
      else (ns.mine.push(time(mine)), ns.theirs.push(time(theirs)));
    }
    const ratio = median(ns.mine.map((m, i) => m / ns.theirs[i]!));
    console.log(`${types} types, ${blocks} blocks of ${3 * requests.length} decisions: base ${median(ns.theirs).toFixed(0)} ns, this ${median(ns.mine).toFixed(0)} ns per decision; this/base (median of paired ratios) ${ratio.toFixed(3)}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
