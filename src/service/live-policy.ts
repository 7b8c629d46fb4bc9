import type { CompiledPolicySet } from '../engine/model.js';
import type { PolicyFileDigest, PolicyIssueInfo } from './policy-source.js';

/** The policy set that decides now, with when it went live and the files it was compiled from. */
export interface LivePolicySet {
  readonly set: CompiledPolicySet;
  readonly loadedAt: Date;
  readonly files: readonly PolicyFileDigest[];
}

/** The last change that was rejected since the live set went live (kept for GetPolicySet). */
export interface PolicyLoadFailure {
  readonly at: Date;
  readonly message: string;
  readonly issues: readonly PolicyIssueInfo[];
}

/**
 * What the decision service and the API read: the live set (swapped atomically; a caller that read
 * it keeps deciding with it, so a batch never straddles two revisions) and the standing failure.
 */
export interface LivePolicy {
  /** What the set is loaded from (GetPolicySet `source`). */
  readonly sourceName: string;
  current(): LivePolicySet | undefined;
  lastFailure(): PolicyLoadFailure | undefined;
}
