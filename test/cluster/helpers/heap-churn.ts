/**
 * For test/cluster/v8-memory.test.ts: applies heapGrowthPercent (argv[2]) the way `verdict serve`
 * does, then holds ~40 MB live and churns garbage that outlives young collections (a ring of recent
 * objects, like a server's closed streams), and prints what applyHeapGrowth said, the old
 * generation's largest size and what the last full collection left live, in MB.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { applyHeapGrowth } from '../../../src/server/v8-memory.js';

const applied = applyHeapGrowth(Number(process.argv[2]));
const MB = 2 ** 20;
const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!;

let liveAfterFull = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (((e as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) liveAfterFull = oldSpace().space_used_size;
  }
}).observe({ entryTypes: ['gc'] });

const live: string[][] = Array.from({ length: 100 }, (_, i) => Array.from({ length: 1_000 }, (_, j) => `${i}:${j}:`.padEnd(64, 'x')));
const ring: object[] = new Array(20_000);
let maxOld = 0;
const until = Date.now() + Number(process.argv[3] ?? 3_000);
let n = 0;
while (Date.now() < until) {
  for (let i = 0; i < 10_000; i++, n++) ring[n % ring.length] = { n, text: `garbage ${n}`.padEnd(80, '.'), list: [n, n + 1, n + 2] };
  maxOld = Math.max(maxOld, oldSpace().space_size);
  await new Promise((r) => setImmediate(r)); // let the GC observer run
}
process.stdout.write(`${JSON.stringify({ applied, maxOldMB: maxOld / MB, liveAfterFullMB: liveAfterFull / MB, kept: live.length + ring.length })}\n`);
