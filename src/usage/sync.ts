/**
 * Shared usage counters with no round trip on a check: the design behind scope: cluster (through
 * NATS KV, cluster-sync.ts) and scope: instance across the workers of `verdict serve --workers N`
 * (through the primary process, worker-sync.ts). Only the ledger — where the shared state lives —
 * differs; deciding, batching, merging back and the fallback are here, once.
 *
 * Each process decides from its local counter and remembers what it took. Every syncIntervalMs it
 * hands what it took since the last sync to the ledger, which adds it to the shared state
 * (arithmetic.ts mergeDelta) and returns the merged state; the local counter is set to it plus what
 * was taken here meanwhile, so it then sees the others' use. Between two syncs a process sees only
 * its own use: with N processes the total allowed can exceed the limit by what the other N − 1
 * allow in one interval (plus, for a key a process has not synced yet, one burst each). A rate's
 * overshoot is paid back: the shared TAT moves ahead, and every process waits for it.
 *
 * When the ledger cannot be reached for staleAfterMs, the fallback applies until a sync succeeds
 * again: "local" counts each cost 1 / localShare times, "deny" denies requests an enforced limit of
 * this scope applies to. Either is logged when it starts and ends; what was taken meanwhile is added
 * once the ledger is back.
 */
import type { LimitMeasure } from '../engine/usage.js';
import { mergeDelta, type CounterState } from './arithmetic.js';
import type { ClusterHooks, InstanceCounters } from './instance-counters.js';

/** What one process took from one counter since its last sync. */
export interface LedgerDelta {
  readonly id: string;
  readonly measure: LimitMeasure;
  readonly delta: number;
}

/** Where the shared state lives (NATS KV, the cluster primary). */
export interface UsageLedger {
  /** Called at the first check that touches a synced counter (e.g. connects). */
  open(): void;
  /** True when a sync can be attempted (a last sync at stop is skipped otherwise). */
  readonly connected: boolean;
  /** Adds each delta to the shared state at the time `clock` tells; returns the merged states, in order. Throws when unreachable. */
  merge(batch: readonly LedgerDelta[], clock: () => number): Promise<readonly CounterState[]>;
}

export interface UsageSyncOptions {
  readonly syncIntervalMs: number;
  readonly staleAfterMs: number;
  readonly fallback: 'local' | 'deny';
  readonly localShare: number;
  /** Log lines and fields for the fallback starting and ending. */
  readonly messages: { readonly fields: object; readonly lostLocal: string; readonly lostDeny: string; readonly back: string };
}

export interface SyncLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Most counters awaiting a sync; past it a sync starts at once. */
const MAX_PENDING = 100_000;

export class UsageSync implements ClusterHooks {
  private pending = new Map<string, { measure: LimitMeasure; delta: number }>();
  private counters: InstanceCounters | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private started = false;
  private lastSuccess: number;
  private fallbackOn = false;
  /** Syncs that failed, and counters merged (for tests, metrics and logs). */
  failures = 0;
  merges = 0;

  constructor(
    private readonly ledger: UsageLedger,
    private readonly options: UsageSyncOptions,
    private readonly log: SyncLog,
    private readonly clock: () => number = Date.now,
  ) {
    this.lastSuccess = clock();
  }

  attach(counters: InstanceCounters): void {
    this.counters = counters;
  }

  get inFallback(): boolean {
    return this.fallbackOn;
  }

  touched(id: string, measure: LimitMeasure, taken: number): void {
    if (!this.started) this.start();
    const p = this.pending.get(id);
    if (p) {
      p.delta += taken;
      p.measure = measure;
    } else this.pending.set(id, { measure, delta: taken });
    if (this.pending.size >= MAX_PENDING) void this.sync();
  }

  fallback(): { readonly kind: 'local'; readonly share: number } | { readonly kind: 'deny' } | undefined {
    if (!this.fallbackOn) return undefined;
    return this.options.fallback === 'deny' ? { kind: 'deny' } : { kind: 'local', share: this.options.localShare };
  }

  private start(): void {
    this.started = true;
    this.lastSuccess = this.clock();
    this.ledger.open();
    this.timer = setInterval(() => void this.sync(), this.options.syncIntervalMs);
    this.timer.unref();
  }

  /** One sync: adds what was taken since the last one to the shared counters, and reads them back. */
  async sync(): Promise<void> {
    if (this.running || this.pending.size === 0) {
      this.checkStale();
      return;
    }
    this.running = true;
    const batch = this.pending;
    this.pending = new Map();
    try {
      const deltas: LedgerDelta[] = [];
      for (const [id, p] of batch) deltas.push({ id, measure: p.measure, delta: p.delta });
      const merged = await this.ledger.merge(deltas, this.clock);
      const now = this.clock();
      for (let i = 0; i < deltas.length; i++) {
        const { id, measure } = deltas[i]!;
        const state = merged[i];
        if (!state) continue;
        this.merges++;
        // The local counter: the shared state plus what was taken here since this sync began.
        const since = this.pending.get(id)?.delta ?? 0;
        this.counters?.setState(id, measure, since > 0 ? mergeDelta(measure, state, since, now) : state);
      }
      this.lastSuccess = this.clock();
      if (this.fallbackOn) {
        this.fallbackOn = false;
        this.log.info(this.options.messages.fields, this.options.messages.back);
      }
    } catch (err) {
      this.failures++;
      // What was taken is added at the next successful sync.
      for (const [id, p] of batch) {
        const now = this.pending.get(id);
        if (now) now.delta += p.delta;
        else this.pending.set(id, p);
      }
      this.checkStale(err);
    } finally {
      this.running = false;
    }
  }

  private checkStale(err?: unknown): void {
    if (this.fallbackOn || !this.started || this.clock() - this.lastSuccess < this.options.staleAfterMs) return;
    if (this.pending.size === 0 && err === undefined) return;
    this.fallbackOn = true;
    const m = this.options.messages;
    this.log.warn(
      { ...m.fields, fallback: this.options.fallback, localShare: this.options.localShare, err: err instanceof Error ? err.message : undefined },
      this.options.fallback === 'deny' ? m.lostDeny : m.lostLocal,
    );
  }

  /** Stops syncing after one last sync (what was taken is added). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.started && this.ledger.connected) await this.sync().catch(() => undefined);
  }
}
