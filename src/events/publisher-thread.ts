/**
 * Entry point of the publisher thread: runs the DecisionPublisher (hash chain, spool, NATS) off
 * the thread that answers gRPC calls. Messages: see ThreadedPublisher.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EventsConfig, LogLevel } from '../config/schema.js';
import { createLogger } from '../server/logger.js';
import { unpackEvents, type PackedEvents } from './event-handoff.js';
import { DecisionPublisher, type HandoffLoss } from './publisher.js';
import type { PublisherStats, TrailHealth } from '../service/decision-trail.js';
import type { PolicyRecordBody } from '../evidence/policy-record.js';

export interface PublisherThreadData {
  readonly config: EventsConfig;
  readonly logLevel: LogLevel;
  readonly bindings: Record<string, unknown>;
  /** How many threads died before this one (reported in the stats). */
  readonly restarts: number;
}

export type ToPublisherThread =
  | { type: 'start' }
  /** `record`: a policy change record, chained before the group's events; `recordWait` answers when it is durable. */
  | { type: 'events'; group: number; events: PackedEvents; dropped?: HandoffLoss; record?: PolicyRecordBody; recordWait?: number }
  | { type: 'stats'; id: number }
  | { type: 'close'; timeoutMs: number }
  /**
   * Fault injection (VERDICT_FAULT_INJECTION=publisher-thread, then SIGUSR2): die as a bug would;
   * `afterTake` (publisher-thread-after-take): die right after taking the next group, before its
   * callers hear that it is durable.
   */
  | { type: 'crash'; afterTake?: boolean };

export type FromPublisherThread =
  | { type: 'started'; lastSpooledId: string | undefined }
  | { type: 'start-failed'; message: string }
  | { type: 'durable'; ids: number[]; ok: boolean[] }
  /** The group is chained and written to the spool (or counted as lost): the hand-off bound is freed. */
  | { type: 'taken'; group: number }
  | { type: 'stats'; id: number; stats: PublisherStats }
  | { type: 'health'; health: TrailHealth; stats: PublisherStats }
  | { type: 'closed' };

if (parentPort) {
  const port = parentPort;
  const data = workerData as PublisherThreadData;
  const logger = createLogger(data.logLevel).child(data.bindings);
  const publisher = new DecisionPublisher(data.config, logger);
  publisher.stats.threadRestarts = data.restarts;
  const post = (m: FromPublisherThread) => port.postMessage(m);
  publisher.subscribeHealth((health) => post({ type: 'health', health, stats: publisher.snapshot() }));
  // Durability answers are grouped like the events were.
  let ids: number[] = [];
  let oks: boolean[] = [];
  let answerScheduled = false;
  let crashAfterTake = false;
  const answer = (id: number, ok: boolean) => {
    ids.push(id);
    oks.push(ok);
    if (answerScheduled) return;
    answerScheduled = true;
    setImmediate(() => {
      answerScheduled = false;
      post({ type: 'durable', ids, ok: oks });
      ids = [];
      oks = [];
    });
  };
  port.on('message', (msg: ToPublisherThread) => {
    switch (msg.type) {
      case 'start':
        publisher.start().then(
          () => {
            post({ type: 'started', lastSpooledId: publisher.lastSpooledId() });
            // Counters now and then, so a thread that dies leaves recent ones behind.
            setInterval(() => post({ type: 'health', health: publisher.trailHealth(), stats: publisher.snapshot() }), 5000).unref();
          },
          (err: unknown) => post({ type: 'start-failed', message: (err as Error).message }),
        );
        break;
      case 'events':
        if (msg.record) {
          const wait = msg.recordWait;
          void publisher.recordPolicyChange(msg.record).then((ok) => {
            if (wait !== undefined) answer(wait, ok);
          });
        }
        publisher.recordBodies(
          unpackEvents(msg.events).map((e) => {
            const id = e.wait;
            return id === undefined ? { body: e.body } : { body: e.body, waiter: (ok: boolean) => answer(id, ok) };
          }),
          msg.dropped,
        );
        post({ type: 'taken', group: msg.group });
        if (crashAfterTake && msg.events.length > 0) throw new Error('publisher thread crash injected after taking a group (VERDICT_FAULT_INJECTION=publisher-thread-after-take)');
        break;
      case 'stats':
        post({ type: 'stats', id: msg.id, stats: publisher.snapshot() });
        break;
      case 'close':
        publisher.close(msg.timeoutMs).finally(() => {
          post({ type: 'closed' });
          port.close();
        });
        break;
      case 'crash':
        if (msg.afterTake) {
          crashAfterTake = true;
          break;
        }
        setImmediate(() => {
          throw new Error('publisher thread crash injected (VERDICT_FAULT_INJECTION=publisher-thread)');
        });
        break;
    }
  });
}
