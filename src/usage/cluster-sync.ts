/**
 * scope: cluster — counters shared by every replica through a NATS JetStream KV bucket, with no
 * network round trip on a check (docs/operations.md#cluster-scope).
 *
 * Each replica decides from its local counter (as for scope: instance) and remembers what it took.
 * Every usage.cluster.syncIntervalMs it adds what it took since the last sync to the shared entry of
 * each counter it checked (read, merge, compare-and-set on the entry's revision; retried on a
 * conflict) and sets its local counter to the merged result, so it then sees the other replicas'
 * use. Between two syncs a replica sees only its own use: with N replicas the total allowed can
 * exceed the limit by what the other N − 1 replicas allow in one interval (plus, for a key a replica
 * has not synced yet, one burst each). A rate's overshoot is paid back: the shared TAT moves ahead,
 * and every replica waits for it.
 *
 * When the bucket cannot be reached for usage.cluster.staleAfterMs, the fallback applies until a
 * sync succeeds again: "local" keeps deciding from the local counters with each cost counted
 * 1 / usage.cluster.localShare times (each replica gets its share of the limit), "deny" denies
 * requests an enforced cluster limit applies to (LIMIT_ERROR). Either is logged when it starts and
 * ends; what was taken meanwhile is added once NATS is back.
 */
import { createHash } from 'node:crypto';
import type { KV, NatsConnection } from 'nats';
import type { LimitMeasure } from '../engine/usage.js';
import { mergeDelta, type CounterState } from './arithmetic.js';
import type { ClusterHooks, InstanceCounters } from './instance-counters.js';

export interface ClusterSyncOptions {
  readonly bucket: string;
  readonly syncIntervalMs: number;
  readonly staleAfterMs: number;
  readonly fallback: 'local' | 'deny';
  readonly localShare: number;
  readonly timeoutMs: number;
}

export interface ClusterLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What a shared entry holds. */
interface SharedCounter {
  readonly m: string;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

/** Entries kept: a monthly quota must outlive its month. */
const ENTRY_TTL_MS = 40 * 24 * 3_600_000;
/** Counters merged at once. */
const CONCURRENCY = 32;
/** Most counters awaiting a sync; past it a sync starts at once. */
const MAX_PENDING = 100_000;

export class ClusterUsageSync implements ClusterHooks {
  private pending = new Map<string, { measure: LimitMeasure; delta: number }>();
  private counters: InstanceCounters | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private started = false;
  private lastSuccess = Date.now();
  private fallbackOn = false;
  private kv: { nc: NatsConnection; kv: Promise<KV> } | undefined;
  /** Syncs that failed, and merges done (for tests and logs). */
  failures = 0;
  merges = 0;

  constructor(
    private readonly connection: () => NatsConnection | undefined,
    private readonly startConnection: () => void,
    private readonly options: ClusterSyncOptions,
    private readonly log: ClusterLog,
    private readonly clock: () => number = Date.now,
  ) {}

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
    this.startConnection();
    this.timer = setInterval(() => void this.sync(), this.options.syncIntervalMs);
    this.timer.unref();
  }

  private bucket(nc: NatsConnection): Promise<KV> {
    if (this.kv?.nc !== nc) {
      const kv = nc.jetstream({ timeout: this.options.timeoutMs }).views.kv(this.options.bucket, { history: 1, ttl: ENTRY_TTL_MS, timeout: this.options.timeoutMs, description: 'Verdict usage counters (scope: cluster)' });
      this.kv = { nc, kv };
      kv.catch(() => {
        if (this.kv?.kv === kv) this.kv = undefined;
      });
    }
    return this.kv.kv;
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
      const nc = this.connection();
      if (!nc) throw new Error('NATS is not connected');
      const kv = await this.bucket(nc);
      const ids = [...batch.keys()];
      for (let i = 0; i < ids.length; i += CONCURRENCY) {
        await Promise.all(ids.slice(i, i + CONCURRENCY).map((id) => this.merge(kv, id, batch.get(id)!)));
      }
      this.lastSuccess = this.clock();
      if (this.fallbackOn) {
        this.fallbackOn = false;
        this.log.info({ bucket: this.options.bucket }, 'usage cluster counters reachable again; cluster limits are shared again');
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
    this.log.warn(
      { bucket: this.options.bucket, fallback: this.options.fallback, localShare: this.options.localShare, err: err instanceof Error ? err.message : undefined },
      this.options.fallback === 'deny' ? 'usage cluster counters unreachable; requests under cluster limits are denied (usage.cluster.fallback: deny)' : 'usage cluster counters unreachable; cluster limits count locally with a reduced share (usage.cluster.fallback: local)',
    );
  }

  private async merge(kv: KV, id: string, p: { measure: LimitMeasure; delta: number }): Promise<void> {
    const key = `u.${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
    for (let attempt = 0; ; attempt++) {
      const entry = await kv.get(key);
      let global: CounterState | undefined;
      if (entry && entry.operation === 'PUT' && entry.value.length > 0) {
        const s = JSON.parse(new TextDecoder().decode(entry.value)) as SharedCounter;
        if (s.m === p.measure.text) global = { a: s.a, b: s.b, c: s.c };
      }
      const now = this.clock();
      const merged = mergeDelta(p.measure, global, p.delta, now);
      const value = new TextEncoder().encode(JSON.stringify({ m: p.measure.text, a: merged.a, b: merged.b, c: merged.c } satisfies SharedCounter));
      try {
        if (p.delta > 0 || !entry) {
          if (entry) await kv.update(key, value, entry.revision);
          else await kv.create(key, value);
        }
      } catch (err) {
        if (attempt < 5) continue; // another replica wrote first: read again
        throw err;
      }
      this.merges++;
      // The local counter: the shared state plus what was taken here since this sync began.
      const since = this.pending.get(id)?.delta ?? 0;
      this.counters?.setState(id, p.measure, since > 0 ? mergeDelta(p.measure, merged, since, now) : merged);
      return;
    }
  }

  /** Stops syncing after one last sync (what was taken is added). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.started && this.connection()) await this.sync().catch(() => undefined);
  }
}
