/** Inclusive seq ranges [from, to], sorted and disjoint. */
export type Range = [number, number];

/**
 * Adds [from, to] to a sorted list of disjoint ranges, merging overlapping and adjacent ones. The
 * list is capped at `max` ranges (memory stays bounded whatever the input): beyond it the oldest
 * range is dropped and false is returned, so the caller can say its history is partial.
 */
export function addRange(list: Range[], from: number, to: number, max: number): boolean {
  const last = list[list.length - 1];
  // The common case: extending the newest range by one.
  if (last && from >= last[0] && from <= last[1] + 1) {
    if (to > last[1]) last[1] = to;
    return true;
  }
  let i = 0;
  while (i < list.length && list[i]![1] < from - 1) i++;
  let start = from;
  let end = to;
  let j = i;
  while (j < list.length && list[j]![0] <= to + 1) {
    start = Math.min(start, list[j]![0]);
    end = Math.max(end, list[j]![1]);
    j++;
  }
  list.splice(i, j - i, [start, end]);
  if (list.length > max) {
    list.shift();
    return false;
  }
  return true;
}

/** `a` minus `b` (both sorted, disjoint). */
export function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [from, to] of a) {
    let start = from;
    for (const [bf, bt] of b) {
      if (bt < start || bf > to) continue;
      if (bf > start) out.push([start, bf - 1]);
      start = Math.max(start, bt + 1);
      if (start > to) break;
    }
    if (start <= to) out.push([start, to]);
  }
  return out;
}

export function formatRanges(ranges: readonly Range[]): string {
  return ranges.map(([f, t]) => (f === t ? `${f}` : `${f}..${t}`)).join(', ');
}
