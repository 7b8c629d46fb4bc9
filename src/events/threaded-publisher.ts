import { Worker } from 'node:worker_threads';
import type { EventsConfig, LogLevel } from '../config/schema.js';
import type { ClosableSink } from '../server/app.js';
import type { Logger } from '../server/logger.js';
import type { DecisionRecord } from '../service/decision-record.js';
import { AttributeSelector } from './event.js';
import { packEvent, type PackedEvents } from './event-handoff.js';
import type { PublisherStats } from './publisher.js';
import type { FromPublisherThread, PublisherThreadData, ToPublisherThread } from './publisher-thread.js';

/**
 * The decision stream on its own thread. The serving thread only packs each event's fields (ids,
 * outcome, selected and masked attributes; see event-handoff.ts) and hands a group of them over per flush interval;
 * chaining, hashing, spooling and publishing happen on the publisher thread, so they neither
 * delay a gRPC answer nor compete with decoding the next request for the same core.
 */
export class ThreadedPublisher implements ClosableSink {
  readonly requiresDurability: boolean;
  private readonly selector: AttributeSelector;
  private worker: Worker | undefined;
  private batch: PackedEvents = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate = false;
  private nextWait = 1;
  private readonly waiters = new Map<number, (ok: boolean) => void>();
  private readonly statsWaiters = new Map<number, (s: PublisherStats) => void>();
  private failed = false;
  private closed: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;

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
    const data: PublisherThreadData = { config: this.config, logLevel: this.logLevel, bindings: this.bindings };
    const worker = new Worker(new URL('./publisher-thread.js', import.meta.url), { workerData: data });
    this.worker = worker;
    worker.on('error', (err) => this.onThreadFailure(err));
    worker.on('exit', (code) => {
      if (!this.closed) this.onThreadFailure(new Error(`publisher thread exited with code ${code}`));
      this.closedResolve?.();
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: FromPublisherThread) => {
        if (msg.type === 'started') resolve();
        else if (msg.type === 'start-failed') reject(new Error(msg.message));
        else this.onMessage(msg);
      };
      worker.on('message', onMessage);
      this.post({ type: 'start' });
    });
  }

  private onThreadFailure(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.logger.fatal({ err: err.message }, 'decision publisher thread failed; decisions are no longer recorded');
    for (const resolve of this.waiters.values()) resolve(false);
    this.waiters.clear();
  }

  private onMessage(msg: FromPublisherThread): void {
    if (msg.type === 'durable') {
      msg.ids.forEach((id, i) => {
        const resolve = this.waiters.get(id);
        this.waiters.delete(id);
        resolve?.(msg.ok[i]!);
      });
    } else if (msg.type === 'stats') {
      this.statsWaiters.get(msg.id)?.(msg.stats as PublisherStats);
      this.statsWaiters.delete(msg.id);
    }
  }

  private post(msg: ToPublisherThread): void {
    this.worker?.postMessage(msg);
  }

  record(record: DecisionRecord): void {
    if (this.failed || this.closed) return;
    packEvent(this.batch, record, this.config.instanceId, this.selector, undefined);
    this.schedule(false);
  }

  recordDurably(record: DecisionRecord): Promise<boolean> {
    if (this.failed || this.closed) return Promise.resolve(false);
    const wait = this.nextWait++;
    packEvent(this.batch, record, this.config.instanceId, this.selector, wait);
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
    if (this.batch.length === 0) return;
    const events = this.batch;
    this.batch = [];
    this.post({ type: 'events', events });
  }

  /** Counters from the publisher thread. */
  snapshot(): Promise<PublisherStats> {
    const id = this.nextWait++;
    return new Promise((resolve) => {
      this.statsWaiters.set(id, resolve);
      this.post({ type: 'stats', id });
    });
  }

  /** Hands over what is left, lets the thread flush (or spool) within `timeoutMs`, then ends it. */
  close(timeoutMs = 5000): Promise<void> {
    this.closed ??= (async () => {
      this.flush();
      const worker = this.worker;
      if (!worker || this.failed) {
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
