/**
 * Counters in the process (scope: instance, and the local half of scope: cluster). Exact, no I/O.
 *
 * Memory is bounded: one entry per (limit, key) in a Map kept in least-recently-used order. Each
 * take looks at the two oldest entries and forgets them when idle (a rate bucket back to full, a
 * quota whose period is over); past `maxKeys` the least recently used entry is forgotten even if
 * it is not idle — for a rate that lets its key start with a full burst, for a quota with a fresh
 * count. Forgetting is counted (`evictions`) so an operator can see it and raise usage.maxKeys.
 */
import type { LimitState } from '../engine/decision.js';
import type { LimitMeasure, UsageDemand } from '../engine/usage.js';
import type { UsageCounters } from '../service/usage.js';
import { idle, mergeDelta, take, type CounterResult, type CounterState } from './arithmetic.js';

/** Default most (limit, key) counters kept by one process. */
export const DEFAULT_MAX_USAGE_KEYS = 1_000_000;

interface Entry extends CounterState {
  measure: LimitMeasure;
}

export interface InstanceCountersOptions {
  readonly maxKeys?: number;
  /** scope: cluster (cluster-sync.ts): told of every cluster counter checked, and how to count while NATS is away. */
  readonly cluster?: ClusterHooks;
  /** scope: instance under `serve --workers N` (worker-sync.ts): the same hooks, the primary as the shared ledger. */
  readonly instance?: ClusterHooks;
}

/** What the cluster sync needs from the local counters, and tells them. */
export interface ClusterHooks {
  /** A cluster-scoped counter was checked (`taken`: the cost it took, 0 when none). */
  touched(id: string, measure: LimitMeasure, taken: number): void;
  /** While the shared counters are unreachable: "local" (costs count 1/share times), "deny", or undefined when synced. */
  fallback(): { readonly kind: 'local'; readonly share: number } | { readonly kind: 'deny' } | undefined;
}

/** A persisted quota counter (state file, NATS KV). */
export interface SavedCounter {
  readonly limit: string;
  readonly key: string;
  /** The measure's text (e.g. "500/month"): a counter is restored only into the same measure. */
  readonly measure: string;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

export class InstanceCounters implements UsageCounters {
  private readonly entries = new Map<string, Entry>();
  readonly maxKeys: number;
  evictions = 0;
  idleEvictions = 0;

  private readonly cluster: ClusterHooks | undefined;
  private readonly instance: ClusterHooks | undefined;

  constructor(options: InstanceCountersOptions = {}) {
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_USAGE_KEYS;
    this.cluster = options.cluster;
    this.instance = options.instance;
  }

  /** The local state of a counter (cluster sync). */
  state(id: string): CounterState | undefined {
    return this.entries.get(id);
  }

  /** Sets a counter to the shared state (cluster sync); not counted as a use. */
  setState(id: string, measure: LimitMeasure, state: CounterState): void {
    const e = this.entries.get(id);
    if (e) {
      e.a = state.a;
      e.b = state.b;
      e.c = state.c;
      e.measure = measure;
    } else if (this.entries.size < this.maxKeys) this.entries.set(id, { a: state.a, b: state.b, c: state.c, measure });
  }

  /**
   * Adds `delta` taken elsewhere to a counter and returns the result (the shared ledger of the
   * cluster primary, worker-sync.ts). `base` is used when the counter is not held (a restored one).
   * The counter becomes the most recently used; past maxKeys the least recently used is forgotten.
   */
  addShared(id: string, measure: LimitMeasure, delta: number, now: number, base?: CounterState): CounterState {
    const e = this.entries.get(id);
    const global = e ? (e.measure.text === measure.text ? e : undefined) : base;
    const merged = mergeDelta(measure, global, delta, now);
    if (e) this.entries.delete(id);
    else if (this.entries.size >= this.maxKeys) {
      this.entries.delete(this.entries.keys().next().value!);
      this.evictions++;
    }
    this.entries.set(id, { a: merged.a, b: merged.b, c: merged.c, measure });
    return merged;
  }

  /** True when the counter is held. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  get size(): number {
    return this.entries.size;
  }

  take(demands: readonly UsageDemand[], nowMs: number): LimitState[] {
    this.sweep(nowMs);
    const n = demands.length;
    const ids: string[] = new Array(n);
    const results: { result: CounterResult; next: CounterState | undefined }[] = new Array(n);
    const costs: number[] = new Array(n);
    let blocked = false;
    let unavailable: number[] | undefined;
    const cluster = this.cluster;
    const instance = this.instance;
    const clusterFallback = cluster?.fallback();
    const instanceFallback = instance?.fallback();
    for (let i = 0; i < n; i++) {
      const d = demands[i]!;
      const id = `${d.limit.name}\u0000${d.key}`;
      ids[i] = id;
      let cost = d.cost;
      const fallback = d.limit.scope === 'cluster' ? clusterFallback : instanceFallback;
      if (fallback) {
        if (fallback.kind === 'deny') {
          (unavailable ??= []).push(i);
          if (d.limit.mode === 'enforce') blocked = true;
        } else cost = cost / fallback.share;
      }
      costs[i] = cost;
      const r = take(d.limit.measure, this.entries.get(id), nowMs, cost);
      results[i] = r;
      if (!r.result.passed && d.limit.mode === 'enforce') blocked = true;
    }
    const states: LimitState[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const d = demands[i]!;
      const { result, next } = results[i]!;
      const passed = result.passed;
      const taken = passed && !blocked;
      this.commit(ids[i]!, d, taken ? next : undefined);
      const hooks = d.limit.scope === 'cluster' ? cluster : instance;
      if (hooks) hooks.touched(ids[i]!, d.limit.measure, taken ? d.cost : 0);
      if (unavailable?.includes(i)) {
        const message = d.limit.scope === 'cluster' ? 'the cluster counters (NATS) are unreachable and usage.cluster.fallback is deny' : 'the instance counters (the cluster primary) are unreachable';
        states[i] = { name: d.limit.name, policy: d.limit.policy.id, kind: d.limit.measure.kind, mode: d.limit.mode, scope: d.limit.scope, outcome: 'error', limit: result.limit, remaining: 0, retryAfterMs: 0, resetMs: 0, windowMs: result.windowMs, message };
        continue;
      }
      // A request stopped by another limit took nothing: this one's remaining is before its cost.
      const remaining = passed && blocked ? Math.min(result.limit, result.remaining + costs[i]!) : result.remaining;
      states[i] = {
        name: d.limit.name,
        policy: d.limit.policy.id,
        kind: d.limit.measure.kind,
        mode: d.limit.mode,
        scope: d.limit.scope,
        outcome: passed ? 'ok' : 'over',
        limit: result.limit,
        remaining,
        retryAfterMs: result.retryAfterMs,
        resetMs: result.resetMs,
        windowMs: result.windowMs,
      };
    }
    return states;
  }

  /** Marks the counter used (most recently used last: an exhausted quota asked often is never the one forgotten), and sets `next`. */
  private commit(id: string, d: UsageDemand, next: CounterState | undefined): void {
    const entries = this.entries;
    const e = entries.get(id);
    if (e) {
      if (next) {
        e.a = next.a;
        e.b = next.b;
        e.c = next.c;
        e.measure = d.limit.measure;
      }
      entries.delete(id);
      entries.set(id, e);
      return;
    }
    if (!next) return;
    if (entries.size >= this.maxKeys) {
      entries.delete(entries.keys().next().value!);
      this.evictions++;
    }
    entries.set(id, { a: next.a, b: next.b, c: next.c, measure: d.limit.measure });
  }

  /** Forgets up to two idle entries at the old end: idle keys leave at about the rate new ones come. */
  private sweep(now: number): void {
    let i = 0;
    for (const [id, e] of this.entries) {
      if (i++ >= 2 || !idle(e.measure, e, now)) return;
      this.entries.delete(id);
      this.idleEvictions++;
    }
  }

  /** Forgets every idle entry (a periodic full sweep). */
  sweepAll(now: number): number {
    let n = 0;
    for (const [id, e] of this.entries) {
      if (idle(e.measure, e, now)) {
        this.entries.delete(id);
        n++;
      }
    }
    this.idleEvictions += n;
    return n;
  }

  /** The quota counters still counting at `now` whose measure `keep` selects (for persistence). */
  save(now: number, keep: (measure: LimitMeasure) => boolean): SavedCounter[] {
    const out: SavedCounter[] = [];
    for (const [id, e] of this.entries) {
      if (e.measure.kind !== 'quota' || !keep(e.measure) || idle(e.measure, e, now)) continue;
      const cut = id.indexOf('\u0000');
      out.push({ limit: id.slice(0, cut), key: id.slice(cut + 1), measure: e.measure.text, a: e.a, b: e.b, c: e.c });
    }
    return out;
  }

  /** Restores saved counters whose limit still exists with the same measure; returns how many. */
  restore(saved: readonly SavedCounter[], measureOf: (limit: string) => LimitMeasure | undefined, now: number): number {
    let n = 0;
    for (const s of saved) {
      const measure = measureOf(s.limit);
      if (!measure || measure.text !== s.measure) continue;
      const e: Entry = { a: s.a, b: s.b, c: s.c, measure };
      if (idle(measure, e, now)) continue;
      if (this.entries.size >= this.maxKeys) break;
      this.entries.set(`${s.limit}\u0000${s.key}`, e);
      n++;
    }
    return n;
  }
}
