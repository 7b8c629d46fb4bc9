import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/schema.js';

export type { Logger };

/** One JSON line per event on stdout; tokens and secrets are redacted wherever they appear. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'verdict', pid: process.pid },
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
