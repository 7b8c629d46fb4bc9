import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/schema.js';

export type { Logger };

/** One JSON line per event on stdout; tokens and secrets are redacted wherever they appear. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'verdict', pid: process.pid },
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return pino(options, destination ?? inOrderStdout());
}

/**
 * Stdout that keeps lines in the order they were logged. pino's default stdout stream writes
 * asynchronously, and `fatal` then flushes the queued lines synchronously — ahead of a write still
 * in flight, so a start failure's fatal line could land before the "verdict stopped" logged just
 * before it. Without flushSync on the stream, pino queues fatal lines like the others; the queue
 * is still written out when the process exits.
 */
function inOrderStdout(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false });
  return { write: (line: string) => stream.write(line) };
}
