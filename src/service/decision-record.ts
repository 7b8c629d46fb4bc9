import type { Decision } from '../engine/decision.js';
import type { CheckRequest } from '../engine/request.js';

/** Everything known about one decision, handed to the decision stream. */
export interface DecisionRecord {
  readonly decisionId: string;
  readonly time: Date;
  readonly request: CheckRequest;
  readonly decision: Decision;
  /** The caller's correlation id ("" when none). */
  readonly requestId: string;
  /** Which API asked: "check", "check_batch", "ext_authz". */
  readonly source: string;
  /** Engine evaluation time in nanoseconds. */
  readonly evaluationNs: number;
  /**
   * `false` when the caller had abandoned the call (cancelled it, or its deadline had passed) by
   * the time the decision was made: the answer never reached it. Absent: answered as usual.
   */
  readonly delivered?: false;
  /** The W3C trace id (32 hex) of the call's trace, when tracing is on. */
  readonly traceId?: string | undefined;
}

/**
 * Where decisions go after they are made (the NATS publisher, or nothing). `record` must not block
 * the caller; `recordDurably` resolves true once the record is safe (acked or spooled) — used when
 * audit is required, and false when it cannot be made safe.
 */
export interface DecisionSink {
  record(record: DecisionRecord): void;
  recordDurably(record: DecisionRecord): Promise<boolean>;
  readonly requiresDurability: boolean;
}

export const DISCARDING_SINK: DecisionSink = {
  record: () => undefined,
  recordDurably: async () => true,
  requiresDurability: false,
};
