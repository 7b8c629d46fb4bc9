/**
 * Entry point of the publisher thread: runs the DecisionPublisher (hash chain, spool, NATS) off
 * the thread that answers gRPC calls. Messages: see ThreadedPublisher.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EventsConfig, LogLevel } from '../config/schema.js';
import { createLogger } from '../server/logger.js';
import { unpackEvents, type PackedEvents } from './event-handoff.js';
import { DecisionPublisher } from './publisher.js';

export interface PublisherThreadData {
  readonly config: EventsConfig;
  readonly logLevel: LogLevel;
  readonly bindings: Record<string, unknown>;
}

export type ToPublisherThread =
  | { type: 'start' }
  | { type: 'events'; events: PackedEvents }
  | { type: 'stats'; id: number }
  | { type: 'close'; timeoutMs: number };

export type FromPublisherThread =
  | { type: 'started' }
  | { type: 'start-failed'; message: string }
  | { type: 'durable'; ids: number[]; ok: boolean[] }
  | { type: 'stats'; id: number; stats: unknown }
  | { type: 'closed' };

if (parentPort) {
  const port = parentPort;
  const data = workerData as PublisherThreadData;
  const logger = createLogger(data.logLevel).child(data.bindings);
  const publisher = new DecisionPublisher(data.config, logger);
  const post = (m: FromPublisherThread) => port.postMessage(m);
  // Durability answers are grouped like the events were.
  let ids: number[] = [];
  let oks: boolean[] = [];
  let answerScheduled = false;
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
          () => post({ type: 'started' }),
          (err: unknown) => post({ type: 'start-failed', message: (err as Error).message }),
        );
        break;
      case 'events':
        publisher.recordBodies(
          unpackEvents(msg.events).map((e) => {
            const id = e.wait;
            return id === undefined ? { body: e.body } : { body: e.body, waiter: (ok: boolean) => answer(id, ok) };
          }),
        );
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
    }
  });
}
