import type { Keyring } from '../keys/keyring.js';
import type { Range } from './ranges.js';

/** What the verifier reports, how a chain is summarised, and the verifier's limits. */
export type FindingKind =
  | 'gap' | 'duplicate' | 'conflict' | 'altered' | 'broken-link' | 'malformed' | 'unknown-schema' | 'after-final' | 'refused' | 'lost'
  | 'unsigned' | 'unknown-key' | 'key-not-allowed' | 'bad-signature'
  | 'stream-gap' | 'stream-order' | 'misfiled' | 'rejected' | 'truncated' | 'receipts';

/** Something wrong with the trail; `where` locates it (file:line or stream sequence). */
export interface Finding {
  readonly kind: FindingKind;
  readonly chain: string;
  readonly seq: number;
  readonly where: string;
  readonly message: string;
}

export type SignatureState = 'valid' | 'unsigned' | 'unknown-key' | 'key-not-allowed' | 'bad-signature' | 'unchecked' | 'none';

export interface ChainSummary {
  readonly chain: string;
  /** Highest seq seen. */
  readonly events: number;
  /** Closed by a final checkpoint (validly signed, when a keyring is given). */
  readonly closed: boolean;
  /** Seq ranges covered by a valid signature (only with a keyring). */
  readonly signed: readonly Range[];
  /** Seq ranges seen but not covered by a valid signature. */
  readonly unsigned: readonly Range[];
  /** The last checkpoint that extended the signed ranges. */
  readonly lastSigned: { readonly seq: number; readonly key: string; readonly where: string } | undefined;
  /** The best signature state seen on this chain's checkpoints ('none': no checkpoint at all). */
  readonly signature: SignatureState;
  /** Some history of this chain was forgotten (memory bounds): ranges are partial. */
  readonly partialHistory: boolean;
}

export interface VerifierOptions {
  /** A filtered view: chain gaps, stream gaps and checkpoints are expected to be incomplete. */
  readonly partial?: boolean;
  /** Accept a chain first seen mid-way (a resumed consumer, aged-out events); strict mode reports a gap. */
  readonly anchorUnknownChains?: boolean;
  /** Check checkpoint signatures against these keys; without it signatures are not checked. */
  readonly keyring?: Keyring | undefined;
  /** Chains tracked at once (least recently active forgotten beyond). */
  readonly maxChains?: number;
  /** Recent seq → hash entries remembered per chain (duplicate vs conflict, checkpoint hashes). */
  readonly recentPerChain?: number;
  /** Findings kept in `findings` (all are counted and passed to onFinding). */
  readonly keepFindings?: number;
  readonly onFinding?: (f: Finding) => void;
}

export const VERIFIER_LIMITS = { maxChains: 1024, recentPerChain: 256, rangesPerChain: 32, pendingGapsPerChain: 64, keepFindings: 100_000, notes: 1000 } as const;

