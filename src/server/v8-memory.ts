/**
 * V8 memory flags Verdict sets for its serving processes, where an operator's own flag always stands:
 * - heapGrowthPercent: how far the old generation may grow past its live size before a full
 *   collection. V8 reads it at each collection, so a process sets it for itself at start.
 * - workerSemiSpaceMB: the young generation's semi-space. V8 fixes it when a process starts, so
 *   the cluster primary passes it to the workers it starts.
 */
import { setFlagsFromString } from 'node:v8';

const flagPattern = (name: string) => new RegExp(`(?:^|\\s)--${name.split('-').join('[-_]')}(?:=|\\s|$)`);
const SEMI_SPACE_FLAG = flagPattern('max-semi-space-size');
const HEAP_GROWING_FLAG = flagPattern('heap-growing-percent');

function operatorSet(flag: RegExp, execArgv: readonly string[], nodeOptions: string): boolean {
  return flag.test(nodeOptions) || execArgv.some((a) => flag.test(a));
}

/** What became of heapGrowthPercent in this process, for the start log. */
export type HeapGrowth = { readonly percent: number; readonly from: 'config' } | { readonly from: 'operator flag' } | { readonly from: 'V8 default' };

/**
 * Sets V8's --heap-growing-percent for this process, unless it is 0 or the operator set the flag
 * on the node command line.
 * Why: V8 lets the old generation reach up to 4x what was live after a full collection, and a
 * server's garbage that outlives a young collection (HTTP/2 streams until their native handles go)
 * piles up to that: one process with 1,000 types peaked at 200-280 MB RSS under load.
 */
export function applyHeapGrowth(percent: number, execArgv: readonly string[] = process.execArgv): HeapGrowth {
  // (Node refuses this flag in NODE_OPTIONS: only the command line can carry it.)
  if (execArgv.some((a) => HEAP_GROWING_FLAG.test(a))) return { from: 'operator flag' };
  if (percent === 0) return { from: 'V8 default' };
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return { percent, from: 'config' };
}

/**
 * The Node options of a worker: the primary's, plus `--max-semi-space-size` (workerSemiSpaceMB) unless
 * the operator set that flag already (on the command line or in NODE_OPTIONS: theirs stands).
 */
export function workerExecArgv(semiSpaceMB: number, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  if (semiSpaceMB === 0 || operatorSet(SEMI_SPACE_FLAG, execArgv, nodeOptions)) return [...execArgv];
  return [...execArgv, `--max-semi-space-size=${semiSpaceMB}`];
}
