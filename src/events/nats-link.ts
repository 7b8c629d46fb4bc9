import { connect, Events, type JetStreamClient, type NatsConnection } from 'nats';
import type { EventsConfig } from '../config/schema.js';
import type { Logger } from '../server/logger.js';
import { natsAuthOptions, natsServers, redactUrl } from './nats-options.js';
import { checkStream, HEADER_ALLOWANCE } from './stream.js';

export interface LinkHandlers {
  /** NATS is connected and the stream is as required: publishing may (re)start. */
  ready(how: string): void;
  /** Stop publishing and rewind: NATS went away, a checkpoint failed, or the stream is not usable. */
  down(reason: string, wasUp: boolean): void;
  /** Something in `health` changed. */
  changed(): void;
}

/**
 * The publisher's connection to NATS and its watch over the stream: connects (with the configured
 * credentials and TLS) and reconnects forever, and checks the stream's whole configuration at
 * connect and every events.streamCheckIntervalMs. A stream that is missing or changed is put back
 * when events.manageStream allows it; otherwise publishing stops (events wait in the spool) until
 * an operator fixes it. Every finding is logged at error level and kept for the trail status.
 */
export class NatsLink {
  nc: NatsConnection | undefined;
  js: JetStreamClient | undefined;
  up = false;
  streamDrift: readonly string[] = [];
  lastIncident: { at: string; problems: string[]; repaired: boolean } | undefined;
  streamDrifts = 0;
  private streamMaxMsgSize = -1;
  private streamSeen = false;
  private closing = false;
  private checking = false;
  private recheck: string | undefined;
  private connectRetry: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private lastDriftLog = '';
  private lastDriftLogAt = 0;

  constructor(
    private readonly config: EventsConfig,
    private readonly logger: Logger,
    private readonly handlers: LinkHandlers,
  ) {}

  /**
   * The largest message NATS takes now: the server's max_payload and the stream's max_msg_size,
   * less room for headers; undefined before the first connect.
   */
  messageLimit(): number | undefined {
    const payload = this.nc?.info?.max_payload;
    if (payload === undefined) return undefined;
    const stream = this.streamMaxMsgSize > 0 ? this.streamMaxMsgSize : Infinity;
    return Math.min(payload, stream) - HEADER_ALLOWANCE;
  }

  /** Connects in the background, retrying every 500 ms (NATS may be down at start). */
  start(): void {
    void this.connectInBackground();
    if (this.config.streamCheckIntervalMs > 0) {
      this.checkTimer = setInterval(() => {
        if (this.nc && !this.nc.isClosed() && !this.closing) void this.check('timer');
      }, this.config.streamCheckIntervalMs);
      this.checkTimer.unref();
    }
  }

  /**
   * The first connect is retried here rather than by the client's waitOnFirstConnect: that loop
   * cannot be cancelled, so a server that never reached NATS could not shut down.
   */
  private async connectInBackground(): Promise<void> {
    let attempts = 0;
    while (!this.closing) {
      let nc: NatsConnection;
      try {
        // maxReconnectAttempts -1: the default client gives up after ~18 s and then fails every publish.
        nc = await connect({
          servers: natsServers(this.config.natsUrl),
          name: `verdict ${this.config.instanceId}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          timeout: this.config.ackTimeoutMs,
          pingInterval: 10_000,
          ...natsAuthOptions(this.config),
        });
      } catch (err) {
        if (attempts++ === 0) this.logger.error({ err: (err as Error).message, url: redactUrl(this.config.natsUrl) }, 'cannot connect to NATS; events are spooled until it answers');
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
      await this.check('connected');
      return;
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) this.markDown('NATS disconnected');
      else if (s.type === Events.Reconnect) void this.check('reconnected');
      else if (s.type === Events.Error) this.logger.error({ err: String(s.data) }, 'NATS reported an error');
    }
  }

  markDown(reason: string): void {
    const wasUp = this.up;
    this.up = false;
    this.handlers.down(reason, wasUp);
    if (wasUp) this.handlers.changed();
  }

  /** Checks the stream; publishing (re)starts only on a stream that is as required. */
  async check(how: string): Promise<void> {
    if (!this.nc || this.closing) return;
    if (this.checking) {
      this.recheck = how; // e.g. a reconnect during a timer check: its answer may predate the reconnect
      return;
    }
    this.checking = true;
    try {
      const result = await checkStream(await this.nc.jetstreamManager(), this.config, this.config.manageStream);
      this.streamMaxMsgSize = result.maxMsgSize;
      const seenBefore = this.streamSeen;
      this.streamSeen = true;
      if (result.result === 'created' && seenBefore) {
        this.incident(['the stream was deleted'], true);
        this.logger.error({ stream: this.config.stream }, 'decision stream was deleted under a running Verdict; recreated it empty (the events it held are gone unless a keeper has them)');
      } else if (result.result === 'created') {
        this.logger.info({ stream: this.config.stream, result: 'created' }, 'decision stream configured');
      } else if (result.result === 'updated') {
        this.incident([...result.drift], true);
        this.logger.error({ stream: this.config.stream, drift: result.drift }, 'decision stream configuration had been changed; restored it (events it discarded meanwhile are gone unless a keeper has them)');
      } else if (result.result === 'drifted') {
        this.setDrift(result.drift);
        return;
      }
      if (this.streamDrift.length > 0) {
        this.streamDrift = [];
        this.logger.info({ stream: this.config.stream }, 'decision stream configuration is as required again');
        this.handlers.changed();
      }
      if (!this.up) {
        this.up = true;
        this.handlers.ready(how);
        this.handlers.changed();
      }
    } catch (err) {
      const message = (err as Error).message;
      if (/does not exist/.test(message)) {
        this.setDrift([message], this.streamSeen ? ['the stream was deleted'] : [message]);
        return;
      }
      this.logger.error({ err: message, stream: this.config.stream }, 'decision stream unavailable; events are spooled');
      this.markDown(`stream check failed: ${message}`);
      this.scheduleRetry();
    } finally {
      this.checking = false;
      const again = this.recheck;
      this.recheck = undefined;
      if (again !== undefined) void this.check(again);
    }
  }

  private incident(problems: string[], repaired: boolean): void {
    this.streamDrifts++;
    this.lastIncident = { at: new Date().toISOString(), problems, repaired };
    this.handlers.changed();
  }

  /** The stream is not as required and Verdict may not (or could not) fix it: hold events in the spool. */
  private setDrift(drift: readonly string[], incident: readonly string[] = drift): void {
    const text = drift.join('; ');
    const now = Date.now();
    if (text !== this.streamDrift.join('; ')) this.incident([...incident], false);
    if (text !== this.lastDriftLog || now - this.lastDriftLogAt > 60_000) {
      this.lastDriftLog = text;
      this.lastDriftLogAt = now;
      this.logger.error({ stream: this.config.stream, drift }, 'decision stream is not as required; events are held in the spool until it is fixed');
    }
    this.streamDrift = drift;
    this.markDown('stream not as required');
    this.handlers.changed();
    this.scheduleRetry();
  }

  scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.nc && !this.nc.isClosed()) void this.check('retry');
    }, 1000);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.connectRetry) {
      clearTimeout(this.connectRetry.timer);
      this.connectRetry.resolve();
    }
    for (const t of [this.retryTimer, this.checkTimer]) if (t) clearInterval(t);
    if (this.nc) await this.nc.close().catch(() => undefined);
  }
}
