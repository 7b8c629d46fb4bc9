import { format } from 'node:util';
import { logVerbosity, setLogger as setGrpcLogger, setLogVerbosity as setGrpcLogVerbosity } from '@grpc/grpc-js';
import type { LogLevel } from '../config/schema.js';
import type { Logger } from './logger.js';

/**
 * Sends what libraries and Node itself would print as plain text through `logger`, so every line
 * the server writes is JSON: grpc-js's own log (by default `E No address added …` on stderr) and
 * process warnings (`(node:123) Warning: …`). grpc-js's verbosity follows the log level unless
 * GRPC_VERBOSITY / GRPC_NODE_VERBOSITY say otherwise (e.g. with GRPC_TRACE, to debug grpc-js).
 * Its own file so that loggers elsewhere (the publisher thread, audit commands) do not load grpc-js.
 */
export function routeLibraryLogs(logger: Logger, level: LogLevel, env: NodeJS.ProcessEnv = process.env): void {
  const grpc = logger.child({ component: 'grpc-js' });
  setGrpcLogger({
    error: (message?: unknown, ...rest: unknown[]) => grpc.error(format(message, ...rest)),
    info: (message?: unknown, ...rest: unknown[]) => grpc.info(format(message, ...rest)),
    debug: (message?: unknown, ...rest: unknown[]) => grpc.debug(format(message, ...rest)),
  });
  if (!env.GRPC_VERBOSITY && !env.GRPC_NODE_VERBOSITY) {
    const verbosity =
      level === 'debug' || level === 'trace' ? logVerbosity.DEBUG : level === 'info' ? logVerbosity.INFO : level === 'silent' ? logVerbosity.NONE : logVerbosity.ERROR;
    setGrpcLogVerbosity(verbosity);
  }
  // Node prints warnings from a 'warning' listener of its own: replace it.
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => logger.warn({ component: 'node', warning: warning.name, code: warning.code }, warning.message));
}
