/**
 * Rules of a large set repeat the same role and action lists (a template per type): each distinct
 * value is kept once and shared (they are never modified), which keeps thousands of rules small.
 * Bounded: past the limit a table starts afresh (sharing is only an optimisation).
 */
const MAX_SHARED = 4096;

/** A table of shared values by key. */
export class SharedValues<T> {
  private readonly table = new Map<string, T>();

  get(key: string, make: () => T): T {
    let v = this.table.get(key);
    if (v === undefined) {
      if (this.table.size >= MAX_SHARED) this.table.clear();
      this.table.set(key, (v = make()));
    }
    return v;
  }
}

const stringLists = new SharedValues<readonly string[]>();

/** `list`, or an equal list made before (action patterns, role names). */
export function sharedStringList(list: readonly string[]): readonly string[] {
  return stringLists.get(list.join('\0'), () => list);
}
