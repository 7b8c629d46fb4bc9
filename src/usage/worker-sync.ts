/**
 * scope: instance under `verdict serve --workers N`: the workers of one instance share their
 * instance counters, with no round trip on a check (docs/operations.md#usage-limits). The design is
 * the cluster sync's (sync.ts) with the primary process as the shared ledger, over the cluster IPC
 * channel instead of NATS KV: each worker decides from its local counters and, every
 * usage.cluster.syncIntervalMs, sends what it took since its last sync; the primary adds it to its
 * ledger (mergeDelta, one message at a time, so no compare-and-set is needed) and answers with the
 * merged states, which the worker takes as its local counters.
 *
 * Bound: between two syncs a worker sees only its own use, so the instance can allow up to what the
 * other N − 1 workers allow in one interval over the limit (plus one burst per worker for a key it
 * has not synced yet). When the primary does not answer for usage.cluster.staleAfterMs, each worker
 * counts alone with 1/N of the limit until it answers again (logged).
 *
 * The primary's ledger is what the instance's state file holds (one file per instance, written by
 * the primary). The primary compiles no policies, so a saved quota counter is restored lazily: it
 * becomes the base of its counter at the first merge from a worker whose limit has the same name and
 * measure, if its period is still running.
 */
import type { LimitMeasure } from '../engine/usage.js';
import { idle, type CounterState } from './arithmetic.js';
import { InstanceCounters, type SavedCounter } from './instance-counters.js';
import { UsageSync, type LedgerDelta, type SyncLog, type UsageLedger } from './sync.js';

/** Worker → primary. */
export type UsageMergeRequest =
  | { readonly type: 'usage-merge'; readonly seq: number; readonly deltas: readonly LedgerDelta[] }
  /** At a worker's start: the instance's quota counters (so a restarted instance, or a replaced worker, starts from the instance's total). */
  | { readonly type: 'usage-merge'; readonly seq: number; readonly snapshot: true };

/** Primary → worker. */
export type UsageMergeReply =
  | { readonly type: 'usage-merged'; readonly seq: number; readonly states: readonly CounterState[]; readonly saved?: readonly SavedCounter[] }
  | { readonly type: 'usage-merged'; readonly seq: number; readonly error: string };

/** Most counters in one merge message (a larger batch is split). */
const MAX_BATCH = 10_000;
/** A saved counter no worker has claimed is kept this long after its period started (then dropped at a save). */
const UNCLAIMED_KEEP_MS = 64 * 24 * 3_600_000;

/** The worker's side: the ledger is the primary, reached over IPC. */
export class WorkerUsageLedger implements UsageLedger {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (s: { states: readonly CounterState[]; saved?: readonly SavedCounter[] }) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (m: UsageMergeRequest) => boolean,
    private readonly isConnected: () => boolean,
    private readonly timeoutMs: number,
  ) {}

  open(): void {}

  get connected(): boolean {
    return this.isConnected();
  }

  async merge(batch: readonly LedgerDelta[]): Promise<readonly CounterState[]> {
    const out: CounterState[] = [];
    for (let i = 0; i < batch.length; i += MAX_BATCH) out.push(...(await this.request(batch.slice(i, i + MAX_BATCH))).states);
    return out;
  }

  /** The instance's quota counters held by the primary. */
  async snapshot(): Promise<readonly SavedCounter[]> {
    return (await this.request(undefined)).saved ?? [];
  }

  private request(deltas: readonly LedgerDelta[] | undefined): Promise<{ states: readonly CounterState[]; saved?: readonly SavedCounter[] }> {
    if (!this.isConnected()) return Promise.reject(new Error('the cluster primary is not connected'));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new Error(`the cluster primary did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.waiting.set(seq, { resolve, reject, timer });
      let sent = false;
      try {
        sent = this.send(deltas ? { type: 'usage-merge', seq, deltas } : { type: 'usage-merge', seq, snapshot: true });
      } catch {
        sent = false;
      }
      if (!sent) {
        clearTimeout(timer);
        this.waiting.delete(seq);
        reject(new Error('the cluster primary could not be reached'));
      }
    });
  }

  /** A reply from the primary. */
  onReply(m: UsageMergeReply): void {
    const w = this.waiting.get(m.seq);
    if (!w) return;
    this.waiting.delete(m.seq);
    clearTimeout(w.timer);
    if ('error' in m) w.reject(new Error(m.error));
    else w.resolve(m);
  }
}

export interface WorkerSyncOptions {
  readonly workers: number;
  readonly syncIntervalMs: number;
  readonly staleAfterMs: number;
}

/** The usage sync of a cluster worker's scope: instance counters. */
export function workerUsageSync(ledger: WorkerUsageLedger, options: WorkerSyncOptions, log: SyncLog, clock: () => number = Date.now): UsageSync {
  return new UsageSync(
    ledger,
    {
      syncIntervalMs: options.syncIntervalMs,
      staleAfterMs: options.staleAfterMs,
      fallback: 'local',
      localShare: 1 / options.workers,
      messages: {
        fields: { workers: options.workers },
        back: 'usage instance counters shared with the other workers again',
        lostDeny: 'usage instance counters: the cluster primary does not answer',
        lostLocal: 'usage instance counters: the cluster primary does not answer; this worker counts instance limits alone with 1/workers of each',
      },
    },
    log,
    clock,
  );
}

/**
 * The primary's side: the instance's shared counters. Also the store of the instance's state file
 * (UsageStateFile): it saves the ledger's quota counters, and restores saved ones lazily.
 */
export class PrimaryUsageLedger {
  readonly counters: InstanceCounters;
  private readonly restored = new Map<string, SavedCounter>();
  private lastSweep = 0;

  constructor(maxKeys: number, private readonly clock: () => number = Date.now) {
    this.counters = new InstanceCounters({ maxKeys });
  }

  /** Handles a worker's merge request; the reply to send back. */
  handle(m: UsageMergeRequest): UsageMergeReply {
    try {
      const now = this.clock();
      if (now - this.lastSweep > 10_000) {
        this.lastSweep = now;
        this.counters.sweepAll(now);
      }
      if ('snapshot' in m) return { type: 'usage-merged', seq: m.seq, states: [], saved: this.save(now, () => true) };
      const states = m.deltas.map((d) => this.add(d, now));
      return { type: 'usage-merged', seq: m.seq, states };
    } catch (err) {
      return { type: 'usage-merged', seq: m.seq, error: (err as Error).message };
    }
  }

  private add(d: LedgerDelta, now: number): CounterState {
    const measure: LimitMeasure = d.measure;
    let base: CounterState | undefined;
    if (!this.counters.has(d.id)) {
      const saved = this.restored.get(d.id);
      if (saved) {
        this.restored.delete(d.id);
        if (saved.measure === measure.text && !idle(measure, saved, now)) base = { a: saved.a, b: saved.b, c: saved.c };
      }
    }
    if (!Number.isFinite(d.delta) || d.delta < 0) throw new Error('a usage delta must be a finite, non-negative number');
    return this.counters.addShared(d.id, measure, d.delta, now, base);
  }

  /** Saved quota counters: the ledger's, and restored ones no worker has used yet. */
  save(now: number, keep: (measure: LimitMeasure) => boolean): SavedCounter[] {
    const out = this.counters.save(now, keep);
    for (const [id, s] of this.restored) {
      if (now - s.a > UNCLAIMED_KEEP_MS) this.restored.delete(id);
      else out.push(s);
    }
    return out;
  }

  /** Keeps the saved counters until a worker uses them (the primary has no compiled limits to check them against). */
  restore(saved: readonly SavedCounter[], _measureOf: unknown, now: number): number {
    let n = 0;
    for (const s of saved) {
      if (now - s.a > UNCLAIMED_KEEP_MS) continue;
      if (this.restored.size >= this.counters.maxKeys) break;
      this.restored.set(`${s.limit}\u0000${s.key}`, s);
      n++;
    }
    return n;
  }
}
