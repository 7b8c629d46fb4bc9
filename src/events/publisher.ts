import type { EventsConfig } from '../config/schema.js';
import type { DecisionRecord } from '../service/decision-record.js';
import type { ClosableSink, PublisherStats, TrailHealth } from '../service/decision-trail.js';
import type { Logger } from '../server/logger.js';
import { buildCheckpoint, checkpointAcknowledged } from './checkpoint.js';
import { AttributeSelector, buildUnchainedEvent, type UnchainedEvent } from './event.js';
import { EventBuilder, isChainRecord } from './event-builder.js';
import { FlushScheduler, OneShotTimer } from './flush-scheduler.js';
import { NatsLink } from './nats-link.js';
import { publishEntry } from './publish-entry.js';
import type { HandoffLoss, Pending } from './publisher-types.js';
import { emptyStats } from './publisher-stats.js';
import type { PolicyRecordBody } from '../evidence/policy-record.js';
import { checkpointSubject } from './subjects.js';
import { startHousekeeping } from './spool-housekeeping.js';
import { SpoolLosses } from './spool-losses.js';
import { comparePositions, DecisionLog, type WalEntry, type WalPosition } from './wal.js';

export type { PublisherStats } from '../service/decision-trail.js';
export type { HandoffLoss } from './publisher-types.js';

const SEGMENT_BYTES = 64 * 1024 * 1024;
const REPLAY_BATCH = 1024;

/**
 * Publishes every decision to NATS JetStream without slowing the decision down.
 *
 * A pipeline: the EventBuilder chains each event within its byte budgets; the spool (a write-ahead
 * log) takes it in chain order and is the one source of truth; it is published with a core NATS
 * publish carrying the event id as Nats-Msg-Id. Every few milliseconds one JetStream publish of a
 * chain checkpoint is awaited: NATS processes a connection's messages in order, so its ack
 * confirms every event sent before it, and the spool's committed position moves forward. One ack
 * thus covers many events (a per-event ack costs as much CPU as a whole gRPC call). When NATS is
 * down, slow, a checkpoint fails or the stream is not as required (NatsLink), publishing rewinds to
 * the committed position and replays from the spool once it is usable again; JetStream drops
 * re-sent duplicates by message id. Whatever cannot be kept is counted by name and explained in
 * the chain: a spool that refuses a write or a hand-off that overflowed leaves a
 * `verdict.events-lost.v1` record, an event NATS refuses a `verdict.publish-refused.v1` record.
 *
 * In required mode a check's event is durable once the spool write is fsynced (group commit per
 * event-loop turn) — before NATS has it — and the check is denied if the spool cannot take it.
 */
export class DecisionPublisher implements ClosableSink {
  readonly requiresDurability: boolean;
  private readonly builder: EventBuilder;
  private readonly selector: AttributeSelector;
  private readonly log: DecisionLog;
  private readonly checkpointSubject: string;
  private readonly link: NatsLink;
  private closing = false;
  /** The spool is open: before, records (a policy change at start-up) wait in `pending`. */
  private started = false;
  private pending: Pending[] = [];
  /** Written to the spool, not yet sent: the fast path while NATS keeps up. */
  private memory: { entry: WalEntry; end: WalPosition; bytes: Uint8Array }[] = [];
  /** True while publishing reads from the spool file (after an outage or overflow). */
  private replaying = true;
  private sendCursor: WalPosition;
  private lastSent: WalEntry | undefined;
  private checkpointInFlight = false;
  /** Records sent since the last checkpoint was sent (at most events.checkpointMaxEvents). */
  private sinceCheckpoint = 0;
  /** Sending waits for a checkpoint: the count bound is reached, or the next record starts another chain. */
  private holding = false;
  private readonly checkpointTimer = new OneShotTimer();
  private readonly flush: FlushScheduler;
  private stopHousekeeping: (() => void) | undefined;
  private readonly spoolRetryTimer = new OneShotTimer(true);
  readonly stats: PublisherStats = emptyStats();
  private readonly losses: SpoolLosses;

  private readonly healthListeners: ((health: TrailHealth) => void)[] = [];

  constructor(
    private readonly config: EventsConfig,
    private readonly logger: Logger,
  ) {
    this.requiresDurability = config.required;
    this.builder = new EventBuilder(config);
    this.losses = new SpoolLosses(logger, this.stats, this.builder);
    this.selector = new AttributeSelector(config);
    this.log = new DecisionLog(config.spoolDir, SEGMENT_BYTES, config.spoolMaxBytes);
    this.checkpointSubject = checkpointSubject(config.subjectPrefix, config.instanceId);
    this.sendCursor = { segment: 1, offset: 0 };
    this.flush = new FlushScheduler(config.flushIntervalMs, () => this.tick());
    this.link = new NatsLink(config, logger, {
      ready: (how) => this.onReady(how),
      down: (reason, wasUp) => {
        if (wasUp) this.logger.warn({ reason, unconfirmedBytes: this.log.pendingBytes() }, 'NATS unavailable; events are spooled and will be replayed');
        this.rewind();
      },
      changed: () => this.onHealth(),
    });
  }

  get chainId(): string {
    return this.builder.chain.id;
  }

  private get up(): boolean {
    return this.link.up;
  }

  /** Opens the spool (fails fast if unusable) and connects in the background: NATS may be down at start. */
  async start(): Promise<void> {
    this.log.open();
    this.started = true;
    this.sendCursor = this.log.committedPosition();
    this.replaying = true;
    const backlog = this.log.pendingBytes();
    if (backlog > 0) this.logger.warn({ bytes: backlog, spool: this.config.spoolDir }, 'decision spool holds unconfirmed events from a previous run; they will be replayed');
    this.stopHousekeeping = startHousekeeping(this.log, this.logger, () => this.logStats());
    this.link.start();
    if (this.pending.length > 0) this.scheduleTick(true);
  }

  /** Called with the trail's health whenever it changes (connection, stream drift, spool errors). */
  subscribeHealth(listener: (health: TrailHealth) => void): void {
    this.healthListeners.push(listener);
  }

  private onHealth(): void {
    const h = this.trailHealth();
    for (const l of this.healthListeners) l(h);
  }

  /** The id of the last entry in the spool (see ThreadedPublisher's restart). */
  lastSpooledId(): string | undefined {
    return this.log.lastMsgId();
  }

  trailHealth(): TrailHealth {
    return { connected: this.link.up, publisherRunning: true, streamDrift: this.link.streamDrift, lastStreamIncident: this.link.lastIncident, spoolError: this.losses.error };
  }

  private onReady(how: string): void {
    this.stats.connected = true;
    this.builder.messageLimit = this.link.messageLimit();
    const backlog = this.log.pendingBytes();
    this.logger.info({ how, stream: this.config.stream, replayBytes: backlog, eventBytes: this.builder.eventBytes() }, backlog > 0 ? 'NATS available; replaying spooled events' : 'NATS available');
    this.scheduleTick();
  }

  /** Stop sending into the void and rewind to the last confirmed event; the spool holds the rest. */
  private rewind(): void {
    this.checkpointInFlight = false;
    this.sinceCheckpoint = 0;
    this.holding = false;
    this.stats.connected = false;
    this.replaying = true;
    this.memory = [];
    this.sendCursor = this.log.committedPosition();
  }

  record(record: DecisionRecord): void {
    this.enqueue(buildUnchainedEvent(record, this.config.instanceId, this.selector), undefined);
  }

  recordDurably(record: DecisionRecord): Promise<boolean> {
    return new Promise((resolve) => this.enqueue(buildUnchainedEvent(record, this.config.instanceId, this.selector), resolve));
  }

  /** An event body already built (by the publisher thread's proxy on the serving thread). */
  recordBody(body: UnchainedEvent, waiter?: (durable: boolean) => void): void {
    this.enqueue(body, waiter);
  }

  /**
   * A group of bodies handed over at once (the publisher thread): chained, spooled and sent right
   * away, in this turn — no timer, since every timer wake-up costs CPU of its own. `dropped`: the
   * decisions the serving thread could not hand over since the last group, explained first.
   */
  recordBodies(items: readonly { body: UnchainedEvent; waiter?: (durable: boolean) => void }[], dropped?: HandoffLoss): void {
    if (dropped && dropped.count > 0 && !this.closing) {
      this.stats.lostHandoff += dropped.count;
      this.stats.failed += dropped.count;
      this.pending.push({ entry: this.builder.lost({ count: dropped.count, reason: dropped.reason, stage: 'handoff', from: dropped.from, to: dropped.to }), decision: false });
    }
    for (const item of items) this.enqueue(item.body, item.waiter, false);
    this.flush.now();
  }

  /**
   * Chains a policy change record (verdict.policy.v1) after every event recorded so far, and
   * resolves once it is written and fsynced to the spool (false: it could not be). Before `start`
   * it waits in order and is written first thing.
   */
  recordPolicyChange(body: PolicyRecordBody): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closing) return resolve(false);
      this.pending.push({ entry: this.builder.policy(body), decision: false, waiter: resolve });
      if (this.started) this.scheduleTick(true);
    });
  }

  private enqueue(body: UnchainedEvent, waiter: ((durable: boolean) => void) | undefined, schedule = true): void {
    if (this.closing) {
      waiter?.(false);
      return;
    }
    const { entry, cut } = this.builder.event(body);
    if (cut) this.stats.cut++;
    this.stats.recorded++;
    this.pending.push(waiter ? { entry, decision: true, waiter } : { entry, decision: true });
    if (schedule) this.scheduleTick(waiter !== undefined);
  }

  /** Runs the loop on the next flush (see FlushScheduler); `urgent`: on the next turn of the event loop. */
  private scheduleTick(urgent = false): void {
    this.flush.schedule(urgent);
  }

  /** One turn: spool what was recorded (group commit), send what can be sent, arm a checkpoint. */
  private tick(): void {
    const spooled = this.pending.length === 0 || this.writePending();
    if (!this.up || !this.link.nc) return;
    if (this.holding) {
      // Nothing more is sent until a checkpoint covers what was: see armCheckpoint.
    } else if (this.replaying) {
      const { entries, ends, next } = this.log.read(this.sendCursor, REPLAY_BATCH);
      let sent = 0;
      for (; sent < entries.length && !this.mustHold(entries[sent]!); sent++) {
        const e = entries[sent]!;
        this.send(e, Buffer.from(e.payload, 'utf8'), this.builder.subjectOf(e));
      }
      if (sent > 0) this.sendCursor = ends[sent - 1]!;
      else if (entries.length === 0) this.sendCursor = next;
      if (!this.holding && comparePositions(this.sendCursor, this.log.end()) >= 0) {
        this.replaying = false;
        this.memory = [];
      } else if (!this.holding) {
        this.scheduleTick(true); // more to replay: yield to the event loop between batches
      }
    } else if (this.memory.length > 0) {
      // Built by this process under the current prefix: the subject is as it must be.
      const memory = this.memory;
      this.memory = [];
      let sent = 0;
      for (; sent < memory.length && !this.mustHold(memory[sent]!.entry); sent++) this.send(memory[sent]!.entry, memory[sent]!.bytes, memory[sent]!.entry.subject);
      if (sent > 0) this.sendCursor = memory[sent - 1]!.end;
      // Held back: the rest is read from the spool file once a checkpoint has covered what was sent.
      if (sent < memory.length) this.replaying = true;
    }
    // A refusal found while sending is a new record: spool it (it is sent on the next turn). After
    // a failed write the pending loss record waits for the next decision or the retry timer.
    if (spooled && this.pending.length > 0) this.scheduleTick();
    this.armCheckpoint();
  }

  /**
   * Whether `next` must wait for a checkpoint before it is sent (and sending holds): at most
   * events.checkpointMaxEvents records follow a checkpoint, and a chain's records are covered by a
   * checkpoint of that chain before another chain's are sent (a restart replays an earlier run's
   * tail, which is thereby signed).
   */
  private mustHold(next: WalEntry): boolean {
    if (this.sinceCheckpoint === 0 || (this.sinceCheckpoint < this.config.checkpointMaxEvents && next.chain === this.lastSent?.chain)) return false;
    this.holding = true;
    return true;
  }

  /** Writes what is pending; false when the spool refused it. */
  private writePending(): boolean {
    const batch = this.pending;
    this.pending = [];
    const sync = batch.some((p) => p.waiter !== undefined);
    let ends;
    const views: Uint8Array[] = [];
    try {
      ends = this.log.append(
        batch.map((p) => p.entry),
        sync,
        views,
      );
    } catch (err) {
      this.spoolRefused(batch, err);
      return false;
    }
    this.stats.spooled += batch.length;
    if (this.losses.written()) {
      this.logger.info({ spool: this.config.spoolDir }, 'decision spool takes writes again');
      this.onHealth();
    }
    for (const p of batch) p.waiter?.(true);
    if (!this.replaying && this.up && this.memory.length + batch.length <= this.config.queueSize) {
      // The views point into this group's spool buffer; they are sent in this same turn.
      for (let i = 0; i < batch.length; i++) this.memory.push({ entry: batch[i]!.entry, end: ends[i]!, bytes: views[i]! });
    } else if (!this.replaying) {
      // Overflow or down: publishing continues from the spool file, in order.
      this.replaying = true;
      this.memory = [];
    }
    return true;
  }

  /**
   * The spool refused a group (full, ENOSPC, I/O error): the events are lost — counted by reason,
   * logged, denied in required mode — and a `verdict.events-lost.v1` record naming their seqs is
   * queued for the next write, so the gap they leave is explained once the spool takes writes again.
   */
  private spoolRefused(batch: Pending[], err: unknown): void {
    const wasFailing = this.losses.error !== undefined;
    this.pending.unshift({ entry: this.losses.refused(batch, err), decision: false });
    if (!wasFailing) this.onHealth();
    for (const p of batch) p.waiter?.(false);
    // Retried with the next decision, or in a second if none comes; never in a loop.
    if (!this.closing) this.spoolRetryTimer.arm(1000, () => {
      if (this.pending.length > 0 && !this.closing) this.tick();
    });
  }

  private send(entry: WalEntry, bytes: Uint8Array, subject: string): void {
    const refusal = publishEntry(this.link.nc!, entry, bytes, subject, this.builder.messageLimit);
    if (refusal !== undefined) {
      this.refuse(entry, bytes.length, refusal);
      return;
    }
    // A checkpoint names the last entry sent: never one NATS refused.
    this.lastSent = entry;
    this.sinceCheckpoint++;
    this.stats.sent++;
  }

  /** Skips an entry NATS will not take, and explains the gap in the chain (a record, spooled and sent next). */
  private refuse(entry: WalEntry, bytes: number, reason: string): void {
    this.stats.refused++;
    this.logger.error({ reason, chain: entry.chain, seq: entry.seq, eventId: entry.msgId, bytes }, 'decision event refused by NATS; the refusal is recorded in the chain');
    if (isChainRecord(entry)) return;
    this.pending.push({ entry: this.builder.refused(entry, bytes, reason), decision: false });
  }

  private armCheckpoint(): void {
    if (this.checkpointInFlight || !this.up) return;
    if (comparePositions(this.sendCursor, this.log.committedPosition()) <= 0) return;
    if (this.holding && !this.closing) {
      // Sending waits for this checkpoint: now, not after the interval.
      this.checkpointTimer.clear();
      void this.checkpoint(false);
      return;
    }
    this.checkpointTimer.arm(this.config.checkpointIntervalMs, () => void this.checkpoint(false));
  }

  /** Publishes a checkpoint and awaits its ack; the ack confirms everything sent before it. */
  private async checkpoint(final: boolean): Promise<boolean> {
    const js = this.link.js;
    if (!this.up || !js || this.checkpointInFlight) return false;
    const covered = this.sendCursor;
    const last = this.lastSent;
    if (!last) return true;
    this.checkpointInFlight = true;
    const body = buildCheckpoint(this.config, { chain: last.chain, seq: last.seq, hash: last.hash, final });
    try {
      const acked = js.publish(this.checkpointSubject, JSON.stringify(body), { msgID: `${last.chain}#${last.seq}${final ? '#final' : ''}`, timeout: this.config.ackTimeoutMs });
      // Sent (NATS keeps a connection's order): what follows it is a new tail.
      this.sinceCheckpoint = 0;
      if (this.holding) {
        this.holding = false;
        if (!this.closing) this.scheduleTick(true);
      }
      const ack = await acked;
      this.stats.checkpoints++;
      this.log.commit(covered, false);
      // Events of this process's chain confirmed so far (replayed events of earlier runs are not counted).
      if (last.chain === this.builder.chain.id && last.seq > this.stats.published) this.stats.published = last.seq;
      await checkpointAcknowledged(this.config, body, ack, this.link.nc, this.logger, this.closing);
      this.checkpointInFlight = false;
      this.armCheckpoint();
      return true;
    } catch (err) {
      this.checkpointInFlight = false;
      this.stats.checkpointFailures++;
      this.logger.warn({ err: (err as Error).message }, 'checkpoint not acknowledged');
      this.link.markDown(`checkpoint failed: ${(err as Error).message}`);
      if (this.link.nc && !this.link.nc.isClosed()) this.link.scheduleRetry();
      return false;
    }
  }

  private logStats(): void {
    if (this.stats.recorded > 0) this.logger.info({ events: this.snapshot() }, 'decision stream stats');
  }

  snapshot(): PublisherStats {
    this.stats.queued = this.pending.length;
    this.stats.unconfirmedBytes = this.log.pendingBytes();
    this.stats.streamDrifts = this.link.streamDrifts;
    return { ...this.stats };
  }

  /**
   * Flushes on shutdown: spool what is pending, send the backlog and a final checkpoint within
   * `timeoutMs`; whatever NATS has not confirmed stays in the spool for the next start.
   */
  async close(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.pending.length > 0) this.writePending();
    this.closing = true;
    this.checkpointTimer.clear();
    while (this.up && Date.now() < deadline) {
      this.tick();
      this.checkpointTimer.clear();
      while (this.checkpointInFlight && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const done = !this.replaying && comparePositions(this.sendCursor, this.log.end()) >= 0;
      // "final" closes this process's chain; never an earlier run's chain that is only being replayed.
      const ok = await this.checkpoint(done && this.lastSent?.chain === this.builder.chain.id);
      if (ok && done && comparePositions(this.log.committedPosition(), this.log.end()) >= 0) break;
    }
    this.stopHousekeeping?.();
    this.spoolRetryTimer.clear();
    this.flush.close();
    this.logStats();
    this.log.close();
    this.logger.info({ events: this.snapshot() }, 'decision publisher closed');
    await this.link.close();
  }
}
