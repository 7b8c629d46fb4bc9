/**
 * "Did you mean" for names: the candidates closest to a misspelt name by optimal string alignment
 * distance (Damerau-Levenshtein with adjacent transpositions), within a bound that grows with the
 * name's length, so `invoice_submiter` finds `invoice_submitter` but `x` does not find `y`.
 */

/** Edit distance counting insertions, deletions, substitutions and adjacent swaps; stops past `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const rows = a.length + 1;
  const cols = b.length + 1;
  let prev2 = new Array<number>(cols).fill(0);
  let prev = Array.from({ length: cols }, (_, j) => j);
  let cur = new Array<number>(cols).fill(0);
  for (let i = 1; i < rows; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[cols - 1]!;
}

/** Distance allowed for a name of this length: 1 up to 4 characters, 2 up to 8, then 3. */
function allowance(name: string): number {
  return name.length <= 4 ? 1 : name.length <= 8 ? 2 : 3;
}

/** Up to three known names nearest to `name` (ties in the order given), nearest first. */
export function nearestNames(name: string, known: Iterable<string>): string[] {
  const max = allowance(name);
  const lower = name.toLowerCase();
  const found: { name: string; d: number }[] = [];
  for (const k of known) {
    if (k === name) continue;
    const d = k.toLowerCase() === lower ? 0.5 : editDistance(lower, k.toLowerCase(), max);
    if (d <= max) found.push({ name: k, d });
  }
  return found.sort((x, y) => x.d - y.d).slice(0, 3).map((f) => f.name);
}

/** ` (did you mean "a" or "b"?)`, or "" when nothing is near. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const near = nearestNames(name, known);
  if (near.length === 0) return '';
  return ` (did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?)`;
}
