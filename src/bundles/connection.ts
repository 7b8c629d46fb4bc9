import type * as Nats from 'nats';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import type { VerdictConfig } from '../config/schema.js';
import { natsAuthOptions } from '../events/nats-options.js';
import type { Logger } from '../server/logger.js';

/**
 * NATS client options (credentials, TLS) of the policy source, the fleet reporter and the bundle
 * commands: the decision stream's settings block (`events.natsUser`, … `events.natsKeyFile`), so
 * one identity is configured once. The files are read at each call (a rotated file is picked up at
 * the next connect); a broken one throws NatsSettingsError naming the setting, never the secret.
 */
export function natsClientOptions(config: Pick<VerdictConfig, 'events'>): Partial<ConnectionOptions> {
  return natsAuthOptions(config.events);
}

/**
 * One NATS connection made in the background: retried every 500 ms until NATS answers (the start
 * does not wait for it), then kept with the client's endless reconnects. Whoever needs it registers
 * for each time it is (re)established, to re-watch what a server restart forgot.
 */
export class BackgroundNats {
  private nc: NatsConnection | undefined;
  private up = false;
  private closed = false;
  private started = false;
  private readonly upListeners = new Set<(nc: NatsConnection) => void>();
  private readonly waiters = new Set<() => void>();
  private retry: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(
    readonly servers: readonly string[],
    private readonly clientName: string,
    /** Read at each connect attempt (credential files may be rotated). */
    private readonly options: () => Partial<ConnectionOptions>,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    /** For log lines: what this connection is for. */
    private readonly purpose: string,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.loop();
  }

  /** The connection while it is up. */
  connection(): NatsConnection | undefined {
    return this.up && this.nc && !this.nc.isClosed() ? this.nc : undefined;
  }

  /** Called each time the connection is (re)established, and at once if it is up now. */
  onUp(listener: (nc: NatsConnection) => void): () => void {
    this.upListeners.add(listener);
    const nc = this.connection();
    if (nc) listener(nc);
    return () => this.upListeners.delete(listener);
  }

  /** Resolves true once connected, false after `ms` (or when closed). */
  waitUp(ms: number): Promise<boolean> {
    this.start();
    if (this.connection()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.connection() !== undefined);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private async loop(): Promise<void> {
    let attempts = 0;
    while (!this.closed) {
      let nc: NatsConnection;
      try {
        nc = await nats().connect({
          ...this.options(),
          servers: [...this.servers],
          name: this.clientName,
          // The default client gives up after ~18 s of outage and then fails everything.
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          timeout: this.timeoutMs,
          pingInterval: 10_000,
        });
      } catch (err) {
        if (attempts++ === 0) this.logger.warn({ err: (err as Error).message, servers: this.servers, purpose: this.purpose }, 'cannot connect to NATS; retrying in the background');
        await new Promise<void>((resolve) => {
          this.retry = { timer: setTimeout(resolve, 500), resolve };
        });
        this.retry = undefined;
        continue;
      }
      if (this.closed) {
        await nc.close().catch(() => undefined);
        return;
      }
      this.nc = nc;
      void this.watchStatus(nc);
      this.logger.info({ servers: this.servers, purpose: this.purpose }, 'NATS connected');
      this.becomeUp(nc);
      return;
    }
  }

  private becomeUp(nc: NatsConnection): void {
    this.up = true;
    for (const w of [...this.waiters]) w();
    for (const l of [...this.upListeners]) {
      try {
        l(nc);
      } catch (err) {
        this.logger.error({ err: (err as Error).message, purpose: this.purpose }, 'NATS reconnect handler failed');
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) return;
      if (s.type === nats().Events.Disconnect) {
        if (this.up) this.logger.warn({ servers: this.servers, purpose: this.purpose }, 'NATS disconnected; reconnecting');
        this.up = false;
      } else if (s.type === nats().Events.Reconnect) {
        this.logger.info({ servers: this.servers, purpose: this.purpose }, 'NATS reconnected');
        this.becomeUp(nc);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    for (const w of [...this.waiters]) w();
    if (this.retry) {
      clearTimeout(this.retry.timer);
      this.retry.resolve();
    }
    this.upListeners.clear();
    await this.nc?.close().catch(() => undefined);
  }
}

/** Connects once for a CLI command: NATS must answer within `timeoutMs`, retried every 250 ms. */
export async function connectWithin(servers: readonly string[], name: string, options: Partial<ConnectionOptions>, timeoutMs: number): Promise<NatsConnection> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  let attempts = 0;
  while (Date.now() < deadline) {
    attempts++;
    try {
      return await nats().connect({ ...options, servers: [...servers], name, timeout: Math.max(100, Math.min(2000, deadline - Date.now())), maxReconnectAttempts: 3, reconnectTimeWait: 250 });
    } catch (err) {
      last = err as Error;
      // Refused credentials will not be accepted on retry: say so at once.
      if (/authori[sz]ation|authentication|permissions violation/i.test(last.message)) throw new Error(`NATS at ${servers.join(',')} refused the connection: ${last.message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`cannot reach NATS at ${servers.join(',')} within ${Math.round(timeoutMs / 100) / 10} s (${attempts} attempts): ${last?.message ?? 'timeout'}`);
}
