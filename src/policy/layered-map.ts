const GONE: unique symbol = Symbol('gone');
type Slot<V> = V | typeof GONE;

/**
 * An immutable map for state kept across policy changes: a flat base shared by many versions and a
 * small delta of its own, so a version that changes k entries costs O(k + delta) instead of copying
 * every entry (copying maps of 10,000 files and types cost more than compiling the file that
 * changed). Once the delta outgrows about the square root of the size, the next version is made flat
 * again (amortised O(1) per entry). Values are never undefined.
 */
export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly delta: ReadonlyMap<K, Slot<V>>,
    readonly size: number,
  ) {}

  static of<K, V>(entries: Iterable<readonly [K, V]> = []): LayeredMap<K, V> {
    const base = new Map(entries);
    return new LayeredMap(base, new Map(), base.size);
  }

  get(key: K): V | undefined {
    if (this.delta.size === 0) return this.base.get(key); // flat (a check's lookup, most of the time)
    const d = this.delta.get(key);
    if (d !== undefined) return d === GONE ? undefined : d;
    return this.base.get(key);
  }

  has(key: K): boolean {
    const d = this.delta.get(key);
    if (d !== undefined) return d !== GONE;
    return this.base.has(key);
  }

  /** A draft of the next version; this one never changes. */
  edit(): MapDraft<K, V> {
    return new MapDraft(this.base, new Map(this.delta), this.size, (base, delta, size) => {
      if (delta.size === 0 && base === this.base && this.delta.size === 0) return this;
      if (delta.size <= 16 + 2 * Math.sqrt(size)) return new LayeredMap(base, delta, size);
      const flat = new Map(base);
      for (const [k, v] of delta) {
        if (v === GONE) flat.delete(k);
        else flat.set(k, v);
      }
      return new LayeredMap(flat, new Map(), flat.size);
    });
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.base) if (!this.delta.has(k)) yield [k, v];
    for (const [k, v] of this.delta) if (v !== GONE) yield [k, v];
  }

  *keys(): IterableIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

/** Changes to a LayeredMap, made into a new version by `done()`. */
export class MapDraft<K, V> {
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly delta: Map<K, Slot<V>>,
    private size: number,
    private readonly finish: (base: ReadonlyMap<K, V>, delta: Map<K, Slot<V>>, size: number) => LayeredMap<K, V>,
  ) {}

  get(key: K): V | undefined {
    const d = this.delta.get(key);
    if (d !== undefined) return d === GONE ? undefined : d;
    return this.base.get(key);
  }

  has(key: K): boolean {
    const d = this.delta.get(key);
    if (d !== undefined) return d !== GONE;
    return this.base.has(key);
  }

  set(key: K, value: V): void {
    if (!this.has(key)) this.size++;
    if (this.base.get(key) === value) this.delta.delete(key);
    else this.delta.set(key, value);
  }

  delete(key: K): void {
    if (!this.has(key)) return;
    this.size--;
    if (this.base.has(key)) this.delta.set(key, GONE);
    else this.delta.delete(key);
  }

  done(): LayeredMap<K, V> {
    return this.finish(this.base, this.delta, this.size);
  }
}
