import type { Logger } from '../server/logger.js';
import type { DecisionLog } from './wal.js';

/**
 * The publisher's periodic chores while it runs: save the spool's committed position every second
 * (a restart replays from there) and log the stream stats every minute. Returns the stop function.
 */
export function startHousekeeping(log: DecisionLog, logger: Logger, logStats: () => void): () => void {
  const persist = setInterval(() => {
    try {
      log.persistCommit();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'cannot save the spool position; a restart will replay more (JetStream drops the duplicates)');
    }
  }, 1000);
  persist.unref();
  const stats = setInterval(logStats, 60_000);
  stats.unref();
  return () => {
    clearInterval(persist);
    clearInterval(stats);
  };
}
