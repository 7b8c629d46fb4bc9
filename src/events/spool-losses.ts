import type { Logger } from '../server/logger.js';
import type { EventBuilder } from './event-builder.js';
import type { PublisherStats } from '../service/decision-trail.js';
import { WalError, type WalEntry } from './wal.js';

/**
 * What the spool refused: counts lost decisions by reason, logs (at most every 5 s), remembers the
 * error for the trail status, and builds the `verdict.events-lost.v1` record that explains every
 * seq lost since the last good write (consecutive failures widen one range, so the record written
 * with the next good write covers them all, earlier loss records included).
 */
export class SpoolLosses {
  /** The last write's error while writes fail; undefined once one succeeds. */
  error: string | undefined;
  private open: { fromSeq: number; toSeq: number; count: number } | undefined;
  private lastLog = 0;

  constructor(
    private readonly logger: Logger,
    private readonly stats: PublisherStats,
    private readonly builder: EventBuilder,
  ) {}

  /** A group was refused: returns the record to queue in front of the next write. */
  refused(batch: readonly { entry: WalEntry; decision: boolean }[], err: unknown): WalEntry {
    const reason = err instanceof WalError ? err.reason : 'EIO';
    const message = err instanceof WalError ? err.message : String(err);
    const decisions = batch.filter((p) => p.decision).length;
    if (reason === 'SPOOL_FULL') this.stats.lostSpoolFull += decisions;
    else this.stats.lostSpoolError += decisions;
    this.stats.failed += decisions;
    const now = Date.now();
    if (now - this.lastLog > 5000 || this.error === undefined) {
      this.lastLog = now;
      this.logger.error({ err: message, reason, lostSpoolFull: this.stats.lostSpoolFull, lostSpoolError: this.stats.lostSpoolError }, 'decision events could not be spooled; they are lost (required mode denies instead)');
    }
    this.error = `${reason}: ${message}`;
    const first = batch[0]!.entry.seq;
    const last = batch[batch.length - 1]!.entry.seq;
    if (this.open && this.open.toSeq + 1 === first) this.open = { ...this.open, toSeq: last, count: this.open.count + decisions };
    else this.open = { fromSeq: first, toSeq: last, count: decisions };
    return this.builder.lost({ chain: this.builder.chain.id, count: this.open.count, fromSeq: this.open.fromSeq, reason: message, stage: 'spool', toSeq: this.open.toSeq });
  }

  /** A write succeeded (its records explain the losses so far); true if writes had been failing. */
  written(): boolean {
    this.open = undefined;
    if (this.error === undefined) return false;
    this.error = undefined;
    return true;
  }
}
