/**
 * What the service layer needs from wherever policies come from (a directory today, a NATS bundle
 * later), and what it offers to whoever must know about policy changes (logs, the decision chain).
 * Sources and the compiler implement these; nothing here does I/O.
 */

/** One policy file of a set: path relative to the set's root (forward slashes), text, sha256 of the text (hex). */
export interface PolicyFile {
  readonly path: string;
  readonly text: string;
  readonly sha256: string;
}

/** A file named only by its content hash (what a change record and a live set list). */
export interface PolicyFileDigest {
  readonly path: string;
  readonly sha256: string;
}

/**
 * Why a policy set was (re)loaded. `startup`: the first load; `file-change`: the source saw its files
 * change and settle; `sighup`: an operator asked; `bundle-switch`: a bundle source moved to another
 * bundle (`detail` names it, e.g. the label and bundle revision).
 */
export type PolicyTriggerKind = 'startup' | 'file-change' | 'sighup' | 'bundle-switch';

export interface PolicyTrigger {
  readonly kind: PolicyTriggerKind;
  /** Free text for logs and records: the files that changed, the bundle label, … */
  readonly detail?: string;
}

/** A complete policy set as its source saw it at one moment: every file, whole. */
export interface PolicySnapshot {
  readonly files: readonly PolicyFile[];
  readonly trigger: PolicyTrigger;
}

/** What the source delivers to its subscriber: a snapshot ready to load, or why none could be read. */
export type PolicySourceEvent =
  | { readonly kind: 'snapshot'; readonly snapshot: PolicySnapshot }
  | { readonly kind: 'unreadable'; readonly trigger: PolicyTrigger; readonly error: Error };

/**
 * Where policy sets come from. A source decides when a set is complete (a directory waits until its
 * files have settled or were swapped atomically; a bundle is complete by construction) and only then
 * delivers it. It never compiles: the store does, and a set that does not load never goes live.
 */
export interface PolicySource {
  /** What GetPolicySet reports as `source`: the directory, the bundle URL. */
  readonly name: string;
  /** Reads a complete snapshot now (start-up, SIGHUP). Rejects when the source cannot be read. */
  read(trigger: PolicyTrigger): Promise<PolicySnapshot>;
  /** Starts delivering every new complete snapshot (and read failures) to `listener`. */
  subscribe(listener: (event: PolicySourceEvent) => void): void;
  /** Stops watching; no event is delivered afterwards. */
  close(): void;
  /**
   * Told which revision went live (or was confirmed unchanged) after a snapshot it delivered was
   * loaded: a bundle source keeps that bundle on disk as its last good one. Optional.
   */
  live?(revision: string): void;
}

/** One problem with a policy set, at a position in one of its files (1-based, as editors count). */
export interface PolicyIssueInfo {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly code: string;
  readonly message: string;
}

/** A file that differs between two sets; `previousSha256` is set for changed files. */
export interface PolicyFileChange extends PolicyFileDigest {
  readonly previousSha256?: string;
}

export type PolicyChangeResult =
  | { readonly status: 'applied' }
  /** The files differ from the live set's but hash to the same revision (touched, or back to the live content). */
  | { readonly status: 'unchanged' }
  | { readonly status: 'rejected'; readonly message: string; readonly issues: readonly PolicyIssueInfo[] };

/**
 * The record of one attempt to change the live policy set: what triggered it, the revisions, each
 * file added, changed or removed (with its content hash, against the live set), and the outcome.
 * Issue 17 publishes it as an evidence event before the new revision decides anything.
 */
export interface PolicyChange {
  readonly trigger: PolicyTrigger;
  /** When the outcome was known (for an applied change: just before the swap). */
  readonly at: Date;
  /** The live revision before the change; null at start-up. */
  readonly previousRevision: string | null;
  /** The revision of the candidate set (the new live revision when applied). */
  readonly revision: string;
  readonly added: readonly PolicyFileChange[];
  readonly changed: readonly PolicyFileChange[];
  readonly removed: readonly PolicyFileChange[];
  readonly result: PolicyChangeResult;
  /**
   * The candidate's files with their text, when the component that made the record holds them (a
   * single process and each cluster worker do; the primary's log records carry only the digests).
   */
  readonly files?: readonly PolicyFile[];
}

/**
 * Hooks around a policy change, called in order for each change. `beforeSwap` is awaited after the
 * candidate compiled and before it serves its first decision (checks meanwhile use the old set); if it
 * throws, the change is not applied and is recorded as rejected with that reason. `afterChange` sees
 * every outcome (applied, unchanged, rejected) once it is final.
 */
export interface PolicyChangeHooks {
  beforeSwap?(change: PolicyChange): Promise<void>;
  /**
   * Called synchronously at the swap of an applied change, in the same turn: every decision before it
   * was made with the old set, every decision after it with the new one (the decision chain records
   * the change here). Must not throw.
   */
  atSwap?(change: PolicyChange): void;
  afterChange?(change: PolicyChange): void;
}
