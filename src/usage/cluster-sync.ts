/**
 * scope: cluster — counters shared by every replica through a NATS JetStream KV bucket, with no
 * network round trip on a check (docs/operations.md#cluster-scope). The sync itself (deciding
 * locally, merging every usage.cluster.syncIntervalMs, the fallback) is sync.ts; this is its NATS
 * ledger: each counter is one KV entry, merged by read, mergeDelta, compare-and-set on the entry's
 * revision (retried on a conflict).
 *
 * Between two syncs a replica sees only its own use: with N replicas the total allowed can exceed
 * the limit by what the other N − 1 replicas allow in one interval (plus, for a key a replica has
 * not synced yet, one burst each). When the bucket cannot be reached for usage.cluster.staleAfterMs,
 * usage.cluster.fallback applies ("local": each replica gets localShare of the limit; "deny").
 */
import { createHash } from 'node:crypto';
import type { KV, NatsConnection } from 'nats';
import { mergeDelta, type CounterState } from './arithmetic.js';
import { UsageSync, type LedgerDelta, type UsageLedger } from './sync.js';

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

/** The NATS KV ledger of scope: cluster. */
class NatsUsageLedger implements UsageLedger {
  private kv: { nc: NatsConnection; kv: Promise<KV> } | undefined;

  constructor(
    private readonly connection: () => NatsConnection | undefined,
    private readonly startConnection: () => void,
    private readonly options: ClusterSyncOptions,
  ) {}

  open(): void {
    this.startConnection();
  }

  get connected(): boolean {
    return this.connection() !== undefined;
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

  async merge(batch: readonly LedgerDelta[], clock: () => number): Promise<readonly CounterState[]> {
    const nc = this.connection();
    if (!nc) throw new Error('NATS is not connected');
    const kv = await this.bucket(nc);
    const out: CounterState[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i += CONCURRENCY) {
      await Promise.all(batch.slice(i, i + CONCURRENCY).map(async (d, j) => (out[i + j] = await this.mergeOne(kv, d, clock))));
    }
    return out;
  }

  private async mergeOne(kv: KV, p: LedgerDelta, clock: () => number): Promise<CounterState> {
    const key = `u.${createHash('sha256').update(p.id).digest('hex').slice(0, 40)}`;
    for (let attempt = 0; ; attempt++) {
      const entry = await kv.get(key);
      let global: CounterState | undefined;
      if (entry && entry.operation === 'PUT' && entry.value.length > 0) {
        const s = JSON.parse(new TextDecoder().decode(entry.value)) as SharedCounter;
        if (s.m === p.measure.text) global = { a: s.a, b: s.b, c: s.c };
      }
      const merged = mergeDelta(p.measure, global, p.delta, clock());
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
      return merged;
    }
  }
}

/** scope: cluster: the usage sync over NATS KV. */
export class ClusterUsageSync extends UsageSync {
  constructor(connection: () => NatsConnection | undefined, startConnection: () => void, options: ClusterSyncOptions, log: ClusterLog, clock: () => number = Date.now) {
    super(
      new NatsUsageLedger(connection, startConnection, options),
      {
        syncIntervalMs: options.syncIntervalMs,
        staleAfterMs: options.staleAfterMs,
        fallback: options.fallback,
        localShare: options.localShare,
        messages: {
          fields: { bucket: options.bucket },
          back: 'usage cluster counters reachable again; cluster limits are shared again',
          lostDeny: 'usage cluster counters unreachable; requests under cluster limits are denied (usage.cluster.fallback: deny)',
          lostLocal: 'usage cluster counters unreachable; cluster limits count locally with a reduced share (usage.cluster.fallback: local)',
        },
      },
      log,
      clock,
    );
  }
}
