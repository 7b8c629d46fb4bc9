import type { WalEntry } from './wal.js';

/** A record waiting for the next spool write. */
export interface Pending {
  readonly entry: WalEntry;
  /** A decision (counted as lost if the spool refuses it), not a chained record. */
  readonly decision: boolean;
  readonly waiter?: (durable: boolean) => void;
}

/** Decisions the serving thread could not hand over (bound reached, thread down): explained in the chain. */
export interface HandoffLoss {
  readonly count: number;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}
