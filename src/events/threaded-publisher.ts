import { Worker } from 'node:worker_threads';
import type { EventsConfig, LogLevel } from '../config/schema.js';
import type { ClosableSink, PublisherStats, TrailHealth } from '../service/decision-trail.js';
import type { Logger } from '../server/logger.js';
import type { DecisionRecord } from '../service/decision-record.js';
import { AttributeSelector } from './event.js';
import { packedId, packedWait, packEvent, SLOTS, type PackedEvents } from './event-handoff.js';
import { emptyStats } from './publisher-stats.js';
import type { FromPublisherThread, PublisherThreadData, ToPublisherThread } from './publisher-thread.js';
import type { HandoffLoss } from './publisher.js';
import type { PolicyRecordBody } from '../evidence/policy-record.js';

interface Group {
  readonly group: number;
  readonly events: PackedEvents;
  readonly count: number;
  readonly weight: number;
  /** A policy change record, chained before the group's events (such a group has none); outside the hand-off bound. */
  readonly record?: { readonly body: PolicyRecordBody; readonly wait: number };
}

/** Counters that add up across publisher threads (a dead thread's last known ones are kept). */
const CUMULATIVE = ['recorded', 'spooled', 'sent', 'failed', 'lostSpoolFull', 'lostSpoolError', 'lostHandoff', 'refused', 'cut', 'checkpoints', 'checkpointFailures', 'streamDrifts'] as const;
/** A thread that lived this long counts as healthy: the next restart is immediate again. */
const STABLE_MS = 30_000;

/**
 * The decision stream on its own thread. The serving thread only packs each event's fields (ids,
 * outcome, selected and masked attributes; see event-handoff.ts) and hands a group of them over per
 * flush interval; chaining, hashing, spooling and publishing happen on the publisher thread, so
 * they neither delay a gRPC answer nor compete with decoding the next request for the same core.
 *
 * The hand-off is bounded (events.handoffMaxEvents and handoffMaxBytes, counting the groups handed
 * over but not yet taken into the spool plus the group being packed). Past the bound a decision's
 * event is dropped — counted as lostHandoff, logged at error level, and explained in the chain by
 * a `verdict.events-lost.v1` record once the thread takes events again — and in required mode the
 * check is denied (AUDIT_UNAVAILABLE) instead.
 *
 * A thread that dies is started again (immediately, then with a back-off up to 5 s if it keeps
 * dying). The new thread replays from the spool what was not confirmed, and is handed again the
 * groups the dead one had not yet taken (minus those it had spooled). While no thread runs, events
 * wait within the same bound, and in required mode every check is denied.
 */
export class ThreadedPublisher implements ClosableSink {
  readonly requiresDurability: boolean;
  private readonly selector: AttributeSelector;
  private worker: Worker | undefined;
  private running = false;
  private batch: PackedEvents = [];
  private batchCount = 0;
  private batchWeight = 0;
  private nextGroup = 1;
  private inFlight: Group[] = [];
  private inFlightCount = 0;
  private inFlightWeight = 0;
  private dropped: { count: number; from: number; to: number; reason: string } | undefined;
  private lastDropLog = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate = false;
  private nextWait = 1;
  private readonly waiters = new Map<number, (ok: boolean) => void>();
  private readonly statsWaiters = new Map<number, (s: PublisherStats) => void>();
  private closed: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;
  private restarts = 0;
  private consecutiveDeaths = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  private health: TrailHealth = { connected: false, publisherRunning: false, streamDrift: [] };
  private threadStats: PublisherStats = emptyStats();
  private readonly base: PublisherStats = emptyStats();
  private readonly healthListeners: ((h: TrailHealth) => void)[] = [];

  constructor(
    private readonly config: EventsConfig,
    private readonly logger: Logger,
    private readonly logLevel: LogLevel,
    private readonly bindings: Record<string, unknown> = {},
  ) {
    this.requiresDurability = config.required;
    this.selector = new AttributeSelector(config);
  }

  async start(): Promise<void> {
    await this.spawn();
    const faults = (process.env.VERDICT_FAULT_INJECTION ?? '').split(',');
    if (faults.includes('publisher-thread')) {
      this.logger.warn('fault injection: SIGUSR2 crashes the decision publisher thread (VERDICT_FAULT_INJECTION=publisher-thread); never in production');
      process.on('SIGUSR2', () => this.post({ type: 'crash' }));
    } else if (faults.includes('publisher-thread-after-take')) {
      this.logger.warn('fault injection: after SIGUSR2 the decision publisher thread dies right after taking a group (VERDICT_FAULT_INJECTION=publisher-thread-after-take); never in production');
      process.on('SIGUSR2', () => this.post({ type: 'crash', afterTake: true }));
    }
  }

  /** Starts a publisher thread; resolves once it runs (its spool is open), after handing it what waits. */
  private spawn(): Promise<void> {
    const data: PublisherThreadData = { config: this.config, logLevel: this.logLevel, bindings: this.bindings, restarts: this.restarts };
    const worker = new Worker(new URL('./publisher-thread.js', import.meta.url), { workerData: data });
    this.worker = worker;
    let started = false;
    return new Promise<void>((resolve, reject) => {
      worker.on('error', (err) => this.logger.error({ err: err.message }, 'decision publisher thread failed'));
      worker.on('exit', (code) => {
        if (!started) reject(new Error(`the publisher thread exited with code ${code} while starting`));
        if (this.worker !== worker) return;
        this.worker = undefined;
        if (this.closed && !this.running) this.closedResolve?.();
        else if (this.closed) {
          this.running = false;
          this.closedResolve?.();
        } else if (started) this.onThreadDeath(code);
      });
      worker.on('message', (msg: FromPublisherThread) => {
        if (msg.type === 'started') {
          started = true;
          this.running = true;
          this.startedAt = Date.now();
          this.handOverAgain(msg.lastSpooledId);
          this.setHealth({ ...this.health, publisherRunning: true });
          this.flush();
          resolve();
        } else if (msg.type === 'start-failed') {
          this.worker = undefined; // its exit is not a death to recover from: the caller sees the error
          reject(new Error(msg.message));
          void worker.terminate();
        } else this.onMessage(msg);
      });
      this.post({ type: 'start' });
    });
  }

  private onThreadDeath(code: number): void {
    this.running = false;
    for (const k of CUMULATIVE) this.base[k] += this.threadStats[k];
    this.threadStats = emptyStats();
    this.consecutiveDeaths = Date.now() - this.startedAt > STABLE_MS ? 1 : this.consecutiveDeaths + 1;
    this.logger.error({ code, restarts: this.restarts, waiting: this.inFlightCount + this.batchCount }, 'decision publisher thread died; starting it again (required mode denies checks meanwhile)');
    if (this.requiresDurability) {
      // Their callers wait for a durable record: answer now (AUDIT_UNAVAILABLE), never record later.
      for (const g of [...this.inFlight, { group: 0, events: this.batch, count: this.batchCount, weight: 0 }]) {
        for (let i = 0; i < g.count; i++) this.dropEvent(g.events, i, 'the publisher thread died before they were spooled (required mode denied them)');
      }
      // Policy change records are not decisions waiting for an answer: the next thread takes them.
      this.inFlight = this.inFlight.filter((g) => g.record).map((g) => ({ ...g, events: [], count: 0, weight: 0 }));
      this.inFlightCount = 0;
      this.inFlightWeight = 0;
      this.batch = [];
      this.batchCount = 0;
      this.batchWeight = 0;
    }
    this.releaseOrphans();
    this.setHealth({ ...this.health, publisherRunning: false, connected: false });
    this.scheduleRestart();
  }

  /**
   * Callers the dead thread would have answered are answered now, never left waiting: a group it
   * had taken (written to the spool, or about to be) left its `durable` answers behind with it. They
   * are answered false: a check is denied (AUDIT_UNAVAILABLE: its event may or may not be in the
   * spool, and an allow is never answered without knowing), a policy record is reported as not
   * recorded. Groups still to be handed to the next thread keep their waiters. Counter snapshots
   * are answered with what is known.
   */
  private releaseOrphans(): void {
    const handedAgain = new Set<number>();
    for (const g of this.inFlight) {
      if (g.record) handedAgain.add(g.record.wait);
      for (let i = 0; i < g.count; i++) {
        const wait = packedWait(g.events, i);
        if (wait !== undefined) handedAgain.add(wait);
      }
    }
    for (let i = 0; i < this.batchCount; i++) {
      const wait = packedWait(this.batch, i);
      if (wait !== undefined) handedAgain.add(wait);
    }
    for (const [id, resolve] of [...this.waiters]) {
      if (handedAgain.has(id)) continue;
      this.waiters.delete(id);
      resolve(false);
    }
    for (const [id, resolve] of [...this.statsWaiters]) {
      this.statsWaiters.delete(id);
      resolve(this.total());
    }
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer) return;
    const delay = this.consecutiveDeaths <= 1 ? 0 : Math.min(5000, 100 * 2 ** (this.consecutiveDeaths - 1));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, delay);
  }

  private restart(): Promise<void> {
    this.restarting ??= (async () => {
      this.restarts++;
      try {
        await this.spawn();
        this.logger.info({ restarts: this.restarts }, 'decision publisher thread running again');
      } catch (err) {
        this.logger.error({ err: (err as Error).message, restarts: this.restarts }, 'decision publisher thread could not start again; retrying');
        this.consecutiveDeaths++;
        this.restarting = undefined;
        this.scheduleRestart();
        return;
      }
      this.restarting = undefined;
    })();
    return this.restarting;
  }

  /**
   * The groups the dead thread had not confirmed are handed to the new one, except the events it
   * had spooled already (up to the spool's last entry): those are in the spool, replayed from there.
   */
  private handOverAgain(lastSpooledId: string | undefined): void {
    let groups = this.inFlight;
    this.inFlight = [];
    this.inFlightCount = 0;
    this.inFlightWeight = 0;
    if (groups.length === 0) return;
    if (lastSpooledId !== undefined) {
      search: for (let g = groups.length - 1; g >= 0; g--) {
        const record = groups[g]!.record;
        if (record?.body.id === lastSpooledId) {
          // The dead thread spooled it (its answer may have died with it).
          this.waiters.get(record.wait)?.(true);
          this.waiters.delete(record.wait);
          groups = groups.slice(g + 1);
          break search;
        }
        for (let i = groups[g]!.count - 1; i >= 0; i--) {
          if (packedId(groups[g]!.events, i) === lastSpooledId) {
            const rest = groups[g]!;
            groups = [{ ...rest, events: rest.events.slice((i + 1) * SLOTS), count: rest.count - i - 1 }, ...groups.slice(g + 1)];
            break search;
          }
        }
      }
    }
    for (const g of groups) if (g.count > 0 || g.record) this.postGroup(g.events, g.count, g.weight, g.record);
  }

  private onMessage(msg: FromPublisherThread): void {
    switch (msg.type) {
      case 'durable':
        msg.ids.forEach((id, i) => {
          const resolve = this.waiters.get(id);
          this.waiters.delete(id);
          resolve?.(msg.ok[i]!);
        });
        break;
      case 'taken':
        while (this.inFlight.length > 0 && this.inFlight[0]!.group <= msg.group) {
          const g = this.inFlight.shift()!;
          this.inFlightCount -= g.count;
          this.inFlightWeight -= g.weight;
        }
        break;
      case 'stats':
        this.threadStats = msg.stats;
        this.statsWaiters.get(msg.id)?.(this.total());
        this.statsWaiters.delete(msg.id);
        break;
      case 'health':
        this.threadStats = msg.stats;
        this.setHealth({ ...msg.health, publisherRunning: this.running });
        break;
      default:
        break;
    }
  }

  private setHealth(h: TrailHealth): void {
    const changed = JSON.stringify(h) !== JSON.stringify(this.health);
    this.health = h;
    if (changed) for (const l of this.healthListeners) l(h);
  }

  /** The trail's health as last reported by the publisher thread, and whether one runs. */
  trailHealth(): TrailHealth {
    return this.health;
  }

  subscribeHealth(listener: (h: TrailHealth) => void): void {
    this.healthListeners.push(listener);
  }

  private post(msg: ToPublisherThread): void {
    this.worker?.postMessage(msg);
  }

  /** Packs one event unless the hand-off is at its bound; false (and counted) when it is. */
  private pack(record: DecisionRecord, wait: number | undefined): boolean {
    const start = this.batch.length;
    const weight = packEvent(this.batch, record, this.config.instanceId, this.selector, wait);
    if (this.inFlightCount + this.batchCount + 1 > this.config.handoffMaxEvents || this.inFlightWeight + this.batchWeight + weight > this.config.handoffMaxBytes) {
      this.batch.length = start;
      this.drop(record.time.getTime(), this.running ? 'the hand-off to the publisher thread is at its bound (events.handoffMaxEvents / handoffMaxBytes)' : 'the publisher thread is down');
      return false;
    }
    this.batchCount++;
    this.batchWeight += weight;
    return true;
  }

  private dropEvent(events: PackedEvents, index: number, reason: string): void {
    const wait = packedWait(events, index);
    if (wait !== undefined) {
      this.waiters.get(wait)?.(false);
      this.waiters.delete(wait);
    }
    this.drop(events[index * SLOTS + 20] as number, reason);
  }

  private drop(time: number, reason: string): void {
    if (!this.dropped) this.dropped = { count: 0, from: time, to: time, reason };
    this.dropped.count++;
    this.dropped.to = Math.max(this.dropped.to, time);
    this.dropped.from = Math.min(this.dropped.from, time);
    const now = Date.now();
    if (now - this.lastDropLog > 5000) {
      this.lastDropLog = now;
      this.logger.error({ reason, dropped: this.dropped.count, handoffMaxEvents: this.config.handoffMaxEvents }, 'decision events dropped at the hand-off to the publisher thread; they are lost (required mode denies instead)');
    }
  }

  record(record: DecisionRecord): void {
    if (this.closed) return;
    if (this.pack(record, undefined)) this.schedule(false);
  }

  recordDurably(record: DecisionRecord): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (!this.running) {
      this.drop(record.time.getTime(), 'the publisher thread is down (required mode denied them)');
      return Promise.resolve(false);
    }
    const wait = this.nextWait++;
    if (!this.pack(record, wait)) return Promise.resolve(false);
    const answer = new Promise<boolean>((resolve) => this.waiters.set(wait, resolve));
    this.schedule(true);
    return answer;
  }

  /** Hands the group over once per flush interval; a caller waiting for durability hands it over now. */
  private schedule(urgent: boolean): void {
    if (urgent || this.config.flushIntervalMs === 0) {
      if (this.immediate) return;
      this.immediate = true;
      setImmediate(() => {
        this.immediate = false;
        this.flush();
      });
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.config.flushIntervalMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // While no thread runs, the group waits (within the bound) for the next one.
    if (!this.running || (this.batchCount === 0 && !this.dropped)) return;
    const events = this.batch;
    const count = this.batchCount;
    const weight = this.batchWeight;
    this.batch = [];
    this.batchCount = 0;
    this.batchWeight = 0;
    this.postGroup(events, count, weight);
  }

  private postGroup(events: PackedEvents, count: number, weight: number, record?: Group['record']): void {
    const group = this.nextGroup++;
    let dropped: HandoffLoss | undefined;
    if (this.dropped) {
      dropped = { count: this.dropped.count, from: new Date(this.dropped.from).toISOString(), to: new Date(this.dropped.to).toISOString(), reason: this.dropped.reason };
      this.dropped = undefined;
    }
    this.post({ type: 'events', group, events, ...(dropped ? { dropped } : {}), ...(record ? { record: record.body, recordWait: record.wait } : {}) });
    this.inFlight.push(record ? { group, events, count, weight, record } : { group, events, count, weight });
    this.inFlightCount += count;
    this.inFlightWeight += weight;
  }

  /**
   * Hands a policy change record to the publisher thread, behind every decision packed so far (they
   * were made under the set before the change) and ahead of every later one: the thread takes the
   * groups in order, so the record precedes the first decision of the new set in the chain.
   * Resolves once it is written and fsynced to the spool (false: it could not be). While no thread
   * runs (before start, during a restart) it waits, in order, and is handed to the next thread.
   */
  recordPolicyChange(body: PolicyRecordBody): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const wait = this.nextWait++;
    const answer = new Promise<boolean>((resolve) => this.waiters.set(wait, resolve));
    if (this.running) {
      this.flush();
      this.postGroup([], 0, 0, { body, wait });
      return answer;
    }
    // Queued as groups not yet posted: the next thread is handed them (handOverAgain) before the batch.
    if (this.batchCount > 0) {
      this.inFlight.push({ group: this.nextGroup++, events: this.batch, count: this.batchCount, weight: this.batchWeight });
      this.inFlightCount += this.batchCount;
      this.inFlightWeight += this.batchWeight;
      this.batch = [];
      this.batchCount = 0;
      this.batchWeight = 0;
    }
    this.inFlight.push({ group: this.nextGroup++, events: [], count: 0, weight: 0, record: { body, wait } });
    return answer;
  }

  private total(): PublisherStats {
    const t = { ...this.threadStats };
    for (const k of CUMULATIVE) t[k] += this.base[k];
    // Dropped here but not yet reported to a thread.
    const pending = this.dropped?.count ?? 0;
    t.lostHandoff += pending;
    t.failed += pending;
    t.threadRestarts = this.restarts;
    t.queued += this.inFlightCount + this.batchCount;
    t.connected = this.running && t.connected;
    return t;
  }

  /** Counters: the publisher thread's, plus those of threads that died and the hand-off's own. */
  snapshot(): Promise<PublisherStats> {
    if (!this.running) return Promise.resolve(this.total());
    const id = this.nextWait++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.statsWaiters.delete(id);
        resolve(this.total());
      }, 1000);
      this.statsWaiters.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.post({ type: 'stats', id });
    });
  }

  /** Hands over what is left, lets the thread flush (or spool) within `timeoutMs`, then ends it. */
  close(timeoutMs = 5000): Promise<void> {
    this.closed ??= (async () => {
      if (this.restartTimer) {
        clearTimeout(this.restartTimer);
        this.restartTimer = undefined;
        // Events wait for a thread: start one to spool them, within the time allowed.
        await Promise.race([this.restart(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      } else if (this.restarting) {
        await Promise.race([this.restarting, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      }
      this.flush();
      const worker = this.worker;
      if (!worker || !this.running) {
        if (this.inFlightCount + this.batchCount > 0) this.logger.error({ lost: this.inFlightCount + this.batchCount }, 'decision events lost at shutdown: no publisher thread could take them');
        for (const resolve of this.waiters.values()) resolve(false);
        await worker?.terminate();
        return;
      }
      const exited = new Promise<void>((resolve) => (this.closedResolve = resolve));
      const closedMsg = new Promise<void>((resolve) => {
        worker.on('message', (m: FromPublisherThread) => {
          if (m.type === 'closed') resolve();
        });
      });
      this.post({ type: 'close', timeoutMs });
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs + 2000).unref());
      await Promise.race([closedMsg, timeout]);
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
      await worker.terminate();
    })();
    return this.closed;
  }
}
