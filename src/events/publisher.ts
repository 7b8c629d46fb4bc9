import { connect, Events, headers, type JetStreamClient, type NatsConnection } from 'nats';
import type { EventsConfig } from '../config/schema.js';
import type { DecisionRecord } from '../service/decision-record.js';
import type { ClosableSink } from '../server/app.js';
import type { Logger } from '../server/logger.js';
import { HashChain } from './chain.js';
import { buildCheckpoint, checkpointAcknowledged } from './checkpoint.js';
import { AttributeSelector, buildUnchainedEvent, type UnchainedEvent } from './event.js';
import type { PublisherStats } from './publisher-stats.js';
import { ensureStream } from './stream.js';
import { checkpointSubject, DecisionSubjects } from './subjects.js';
import { comparePositions, DecisionLog, WalError, type WalEntry, type WalPosition } from './wal.js';

export type { PublisherStats } from './publisher-stats.js';

interface Pending {
  readonly entry: WalEntry;
  readonly waiter?: (durable: boolean) => void;
}

const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Events above this size lose their attributes (NATS's default max_payload is 1 MiB). */
const MAX_EVENT_CHARS = 900 * 1024;
const REPLAY_BATCH = 1024;

/**
 * Publishes every decision to NATS JetStream without slowing the decision down.
 *
 * Each event gets its place in this process's hash chain and is written to a local append-only
 * spool (a write-ahead log) in chain order, then published with a core NATS publish carrying the
 * event id as Nats-Msg-Id. Every few milliseconds one JetStream publish of a chain checkpoint is
 * awaited: NATS processes a connection's messages in order, so its ack confirms every event sent
 * before it, and the spool's committed position moves forward. One ack thus covers many events
 * (a per-event ack costs as much CPU as a whole gRPC call). When NATS is down, slow or a
 * checkpoint fails, publishing rewinds to the committed position and replays from the spool in
 * order once NATS answers again; JetStream drops re-sent duplicates by message id.
 *
 * In required mode a check's event is durable once the spool write is fsynced (group commit per
 * event-loop turn) — before NATS has it — and the check is denied if the spool cannot take it.
 */
export class DecisionPublisher implements ClosableSink {
  readonly requiresDurability: boolean;
  private readonly chain: HashChain;
  private readonly selector: AttributeSelector;
  private readonly log: DecisionLog;
  private readonly checkpointSubject: string;
  private readonly subjects: DecisionSubjects;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private up = false;
  private closing = false;
  private pending: Pending[] = [];
  /** Written to the spool, not yet sent: the fast path while NATS keeps up. */
  private memory: { entry: WalEntry; end: WalPosition; bytes: Uint8Array }[] = [];
  /** True while publishing reads from the spool file (after an outage or overflow). */
  private replaying = true;
  private sendCursor: WalPosition;
  private lastSent: WalEntry | undefined;
  private checkpointInFlight = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private tickScheduled = false;
  private immediateScheduled = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectRetry: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private lastFailureLog = 0;
  readonly stats: PublisherStats = {
    recorded: 0, spooled: 0, sent: 0, published: 0, failed: 0, checkpoints: 0, checkpointFailures: 0, queued: 0, unconfirmedBytes: 0, connected: false,
  };

  constructor(
    private readonly config: EventsConfig,
    private readonly logger: Logger,
  ) {
    this.requiresDurability = config.required;
    this.chain = new HashChain(config.instanceId);
    this.selector = new AttributeSelector(config);
    this.log = new DecisionLog(config.spoolDir, SEGMENT_BYTES, config.spoolMaxBytes);
    this.checkpointSubject = checkpointSubject(config.subjectPrefix, config.instanceId);
    this.subjects = new DecisionSubjects(config.subjectPrefix);
    this.sendCursor = { segment: 1, offset: 0 };
  }

  get chainId(): string {
    return this.chain.id;
  }

  /** Opens the spool (fails fast if unusable) and connects in the background: NATS may be down at start. */
  async start(): Promise<void> {
    this.log.open();
    this.sendCursor = this.log.committedPosition();
    this.replaying = true;
    const backlog = this.log.pendingBytes();
    if (backlog > 0) this.logger.warn({ bytes: backlog, spool: this.config.spoolDir }, 'decision spool holds unconfirmed events from a previous run; they will be replayed');
    this.persistTimer = setInterval(() => this.log.persistCommit(), 1000);
    this.persistTimer.unref();
    this.statsTimer = setInterval(() => this.logStats(), 60_000);
    this.statsTimer.unref();
    void this.connectInBackground();
  }

  /**
   * Connects, retrying every 500 ms until NATS answers or the publisher closes. The first connect
   * is retried here rather than by the client's waitOnFirstConnect: that loop cannot be cancelled,
   * so a server that never reached NATS could not shut down.
   */
  private async connectInBackground(): Promise<void> {
    let attempts = 0;
    while (!this.closing) {
      let nc: NatsConnection;
      try {
        // maxReconnectAttempts -1: the default client gives up after ~18 s and then fails every publish.
        nc = await connect({
          servers: this.config.natsUrl,
          name: `verdict ${this.config.instanceId}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          timeout: this.config.ackTimeoutMs,
          pingInterval: 10_000,
        });
      } catch (err) {
        if (attempts++ === 0) this.logger.error({ err: (err as Error).message, url: this.config.natsUrl }, 'cannot connect to NATS; events are spooled until it answers');
        await new Promise<void>((resolve) => {
          this.connectRetry = { timer: setTimeout(resolve, 500), resolve };
        });
        this.connectRetry = undefined;
        continue;
      }
      if (this.closing) {
        await nc.close();
        return;
      }
      this.nc = nc;
      this.js = nc.jetstream();
      void this.watchStatus(nc);
      await this.becomeReady('connected');
      return;
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) this.markDown('NATS disconnected');
      else if (s.type === Events.Reconnect) void this.becomeReady('reconnected');
    }
  }

  private async becomeReady(how: string): Promise<void> {
    if (!this.nc || this.closing) return;
    try {
      const result = await ensureStream(await this.nc.jetstreamManager(), this.config);
      if (result !== 'ok') this.logger.info({ stream: this.config.stream, result }, 'decision stream configured');
    } catch (err) {
      this.logger.error({ err: (err as Error).message, stream: this.config.stream }, 'decision stream unavailable; events are spooled');
      this.scheduleRetry();
      return;
    }
    this.up = true;
    this.stats.connected = true;
    const backlog = this.log.pendingBytes();
    this.logger.info({ url: this.config.natsUrl, how, stream: this.config.stream, replayBytes: backlog }, backlog > 0 ? 'NATS available; replaying spooled events' : 'NATS available');
    this.scheduleTick();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.nc && !this.nc.isClosed()) void this.becomeReady('retry');
    }, 1000);
    this.retryTimer.unref();
  }

  /** Stop sending into the void and rewind to the last confirmed event; the spool holds the rest. */
  private markDown(reason: string): void {
    this.checkpointInFlight = false;
    if (this.up) {
      this.logger.warn({ reason, unconfirmedBytes: this.log.pendingBytes() }, 'NATS unavailable; events are spooled and will be replayed');
    }
    this.up = false;
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
   * away, in this turn — no timer, since every timer wake-up costs CPU of its own.
   */
  recordBodies(items: readonly { body: UnchainedEvent; waiter?: (durable: boolean) => void }[]): void {
    for (const item of items) this.enqueue(item.body, item.waiter, false);
    if (this.tickTimer) {
      clearTimeout(this.tickTimer);
      this.tickTimer = undefined;
      this.tickScheduled = false;
    }
    this.tick();
  }

  private enqueue(body: UnchainedEvent, waiter: ((durable: boolean) => void) | undefined, schedule = true): void {
    if (this.closing) {
      waiter?.(false);
      return;
    }
    // The chain link is enough here; the event object is only assembled when someone asks for it.
    let { link, payload } = this.chain.append(body);
    if (payload.length > MAX_EVENT_CHARS && body.attributes) {
      // Too big for a NATS message (default max_payload 1 MiB): keep the decision, drop the
      // attributes, and say so in the event. Built before the chain moves on, so no seq is lost.
      this.chain.rewind(link.seq, link.prev);
      const { attributes: _dropped, ...rest } = body;
      ({ link, payload } = this.chain.append({ ...rest, truncated: 'attributes' } as UnchainedEvent));
    }
    const entry: WalEntry = {
      subject: this.subjects.of(body.resource.type, body.decision),
      msgId: body.id,
      chain: link.id,
      seq: link.seq,
      hash: link.hash,
      payload,
    };
    this.stats.recorded++;
    this.pending.push(waiter ? { entry, waiter } : { entry });
    if (schedule) this.scheduleTick(waiter !== undefined);
  }

  /**
   * Events are grouped: one spool write and one socket write per flush interval, not per event
   * (a syscall per event would cost more than the decision). A caller waiting for durability
   * (required mode) or a replay in progress flushes on the next turn of the event loop instead.
   */
  private scheduleTick(urgent = false): void {
    if (this.tickScheduled && !urgent) return;
    if (this.tickTimer) {
      clearTimeout(this.tickTimer);
      this.tickTimer = undefined;
    }
    if (urgent || this.config.flushIntervalMs === 0) {
      if (this.immediateScheduled) return;
      this.tickScheduled = true;
      this.immediateScheduled = true;
      setImmediate(() => {
        this.immediateScheduled = false;
        this.tickScheduled = false;
        this.tick();
      });
      return;
    }
    this.tickScheduled = true;
    this.tickTimer = setTimeout(() => {
      this.tickTimer = undefined;
      this.tickScheduled = false;
      this.tick();
    }, this.config.flushIntervalMs);
  }

  /** One turn: spool what was recorded (group commit), send what can be sent, arm a checkpoint. */
  private tick(): void {
    if (this.pending.length > 0) this.writePending();
    if (!this.up || !this.nc) return;
    if (this.replaying) {
      const { entries, ends, next } = this.log.read(this.sendCursor, REPLAY_BATCH);
      for (const e of entries) this.send(e);
      if (entries.length > 0) this.sendCursor = ends[ends.length - 1]!;
      else this.sendCursor = next;
      if (comparePositions(this.sendCursor, this.log.end()) >= 0) {
        this.replaying = false;
        this.memory = [];
      } else {
        this.scheduleTick(true); // more to replay: yield to the event loop between batches
      }
    } else if (this.memory.length > 0) {
      for (const m of this.memory) this.send(m.entry, m.bytes);
      this.sendCursor = this.memory[this.memory.length - 1]!.end;
      this.memory = [];
    }
    this.armCheckpoint();
  }

  private writePending(): void {
    const batch = this.pending;
    this.pending = [];
    const sync = batch.some((p) => p.waiter !== undefined);
    let ends;
    const views: Uint8Array[] = [];
    try {
      ends = this.log.append(batch.map((p) => p.entry), sync, views);
    } catch (err) {
      this.stats.failed += batch.length;
      const now = Date.now();
      if (now - this.lastFailureLog > 5000) {
        this.lastFailureLog = now;
        this.logger.error({ err: err instanceof WalError ? err.message : String(err), lost: this.stats.failed }, 'decision events could not be spooled; they are lost (required mode denies instead)');
      }
      for (const p of batch) p.waiter?.(false);
      // The chain now has a gap the consumer will report: that is the point of the chain.
      return;
    }
    this.stats.spooled += batch.length;
    for (const p of batch) p.waiter?.(true);
    if (!this.replaying && this.up && this.memory.length + batch.length <= this.config.queueSize) {
      // The views point into this group's spool buffer; they are sent in this same turn.
      for (let i = 0; i < batch.length; i++) this.memory.push({ entry: batch[i]!.entry, end: ends[i]!, bytes: views[i]! });
    } else if (!this.replaying) {
      // Overflow or down: publishing continues from the spool file, in order.
      this.replaying = true;
      this.memory = [];
    }
  }

  private send(entry: WalEntry, bytes: Uint8Array = Buffer.from(entry.payload, 'utf8')): void {
    const h = headers();
    h.set('Nats-Msg-Id', entry.msgId);
    try {
      this.nc!.publish(this.subjects.current(entry), bytes, { headers: h });
    } catch (err) {
      // Only a message NATS can never take throws here (e.g. larger than max_payload): retrying
      // would stall the stream forever. Skip it loudly; the chain shows the gap to the auditor.
      this.stats.failed++;
      this.logger.error({ err: (err as Error).message, chain: entry.chain, seq: entry.seq, eventId: entry.msgId, bytes: bytes.length }, 'decision event cannot be published; skipped');
    }
    this.lastSent = entry;
    this.stats.sent++;
  }

  private armCheckpoint(): void {
    if (this.checkpointInFlight || this.checkpointTimer || !this.up) return;
    if (comparePositions(this.sendCursor, this.log.committedPosition()) <= 0) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      void this.checkpoint(false);
    }, this.config.checkpointIntervalMs);
  }

  /** Publishes a checkpoint and awaits its ack; the ack confirms everything sent before it. */
  private async checkpoint(final: boolean): Promise<boolean> {
    if (!this.up || !this.js || this.checkpointInFlight) return false;
    const covered = this.sendCursor;
    const last = this.lastSent;
    if (!last) return true;
    this.checkpointInFlight = true;
    const body = buildCheckpoint(this.config, { chain: last.chain, seq: last.seq, hash: last.hash, final });
    try {
      const ack = await this.js.publish(this.checkpointSubject, JSON.stringify(body), { msgID: `${last.chain}#${last.seq}${final ? '#final' : ''}`, timeout: this.config.ackTimeoutMs });
      this.stats.checkpoints++;
      this.log.commit(covered, false);
      // Events of this process's chain confirmed so far (replayed events of earlier runs are not counted).
      if (last.chain === this.chain.id && last.seq > this.stats.published) this.stats.published = last.seq;
      await checkpointAcknowledged(this.config, body, ack, this.nc, this.logger, this.closing);
      this.checkpointInFlight = false;
      this.armCheckpoint();
      return true;
    } catch (err) {
      this.checkpointInFlight = false;
      this.stats.checkpointFailures++;
      this.logger.warn({ err: (err as Error).message }, 'checkpoint not acknowledged');
      this.markDown(`checkpoint failed: ${(err as Error).message}`);
      if (this.nc && !this.nc.isClosed()) this.scheduleRetry();
      return false;
    }
  }

  private logStats(): void {
    this.stats.queued = this.pending.length;
    this.stats.unconfirmedBytes = this.log.pendingBytes();
    if (this.stats.recorded > 0) this.logger.info({ events: { ...this.stats } }, 'decision stream stats');
  }

  snapshot(): PublisherStats {
    this.stats.queued = this.pending.length;
    this.stats.unconfirmedBytes = this.log.pendingBytes();
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
    if (this.connectRetry) {
      clearTimeout(this.connectRetry.timer);
      this.connectRetry.resolve();
    }
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
    while (this.up && Date.now() < deadline) {
      this.tick();
      if (this.checkpointTimer) {
        clearTimeout(this.checkpointTimer);
        this.checkpointTimer = undefined;
      }
      while (this.checkpointInFlight && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const done = !this.replaying && comparePositions(this.sendCursor, this.log.end()) >= 0;
      // "final" closes this process's chain; never an earlier run's chain that is only being replayed.
      const ok = await this.checkpoint(done && this.lastSent?.chain === this.chain.id);
      if (ok && done && comparePositions(this.log.committedPosition(), this.log.end()) >= 0) break;
    }
    for (const t of [this.persistTimer, this.statsTimer, this.retryTimer, this.tickTimer]) if (t) clearInterval(t);
    this.logStats();
    this.log.close();
    this.logger.info({ events: this.snapshot() }, 'decision publisher closed');
    if (this.nc) {
      await this.nc.close().catch(() => undefined);
    }
  }
}
