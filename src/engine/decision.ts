export type DecisionEffect = 'ALLOW' | 'DENY';

/** Stable reason codes; new ones may be added, existing ones never change meaning. */
export type DecisionReason =
  | 'RULE_ALLOW' // an allow rule applied and no deny rule did
  | 'RULE_DENY' // a deny rule applied
  | 'RULE_ERROR' // a deny rule's condition failed to evaluate: fail closed
  | 'NO_MATCHING_RULE' // the type has policies but no rule applied
  | 'NO_POLICY' // no policy governs the resource type and no "*" rule applied
  | 'UNAUTHENTICATED' // the subject token was missing or invalid (set by adapters)
  | 'NO_ROUTE' // ext_authz: the HTTP request matched no configured route (set by adapters)
  | 'AUDIT_UNAVAILABLE' // the decision could not be recorded (set by adapters)
  | 'INTERNAL_ERROR' // any unexpected failure: fail closed
  | 'RATE_LIMITED' // the rules allowed, an enforced rate limit did not (Decision.usage names it)
  | 'QUOTA_EXCEEDED' // the rules allowed, an enforced quota is spent (Decision.usage names it)
  | 'LIMIT_ERROR'; // the rules allowed, an enforced limit's when/key/cost failed to evaluate: fail closed

/** Why a rule did or did not apply. */
export type RuleOutcome =
  | 'APPLIED'
  | 'ACTION_MISMATCH'
  | 'ROLE_MISMATCH'
  | 'CONDITION_FALSE'
  | 'CONDITION_ERROR'
  | 'NOT_EVALUATED'; // skipped because a deny already decided (only without explain)

export interface RuleTrace {
  readonly policy: string;
  readonly rule: string;
  readonly effect: 'allow' | 'deny';
  readonly outcome: RuleOutcome;
  /** For ROLE_MISMATCH/CONDITION_*: a short human explanation; for errors, the error message. */
  readonly detail: string;
  /** Derived roles of the rule the subject was found to hold. */
  readonly derivedRoles?: readonly string[];
}

export interface EvaluationErrorInfo {
  readonly policy: string;
  readonly rule: string;
  readonly message: string;
}

export interface Decision {
  readonly effect: DecisionEffect;
  readonly reason: DecisionReason;
  /** Policy and rule that decided; both "" when no rule matched. */
  readonly policy: string;
  readonly rule: string;
  readonly revision: string;
  /** Condition errors met while deciding (an erroring allow rule is listed here and did not apply). */
  readonly errors: readonly EvaluationErrorInfo[];
  /** Present when explain was requested. */
  readonly explanation?: readonly RuleTrace[];
  /** Every usage limit that applied to an allowed request, in policy order; absent when none did. */
  readonly usage?: readonly LimitState[];
}

/** A usage limit as it stood for one decision (after this request's cost, when it was taken). */
export interface LimitState {
  readonly name: string;
  readonly policy: string;
  readonly kind: 'rate' | 'quota';
  readonly mode: 'enforce' | 'shadow';
  readonly scope: 'instance' | 'cluster';
  /** ok: within the limit (cost taken); over: the request is over it (nothing taken); error: when/key/cost failed. */
  readonly outcome: 'ok' | 'over' | 'error';
  /** The quota's count, or the rate's burst (what can pass at once). */
  readonly limit: number;
  /** Cost units that would pass now. */
  readonly remaining: number;
  /** Milliseconds until this request would pass (0 when it passed). */
  readonly retryAfterMs: number;
  /** Milliseconds until the counter is back to full (a rate) or the period ends (a quota). */
  readonly resetMs: number;
  /** A quota's window (a calendar month: its length), or the time a rate's burst takes to refill (burst × period / count), in milliseconds: `limit` units per `windowMs`. */
  readonly windowMs: number;
  /** For outcome "error": what failed. */
  readonly message?: string;
}

/** The enforced limit that denied, if one did. */
export function decidingLimit(decision: Decision): LimitState | undefined {
  if (decision.reason !== 'RATE_LIMITED' && decision.reason !== 'QUOTA_EXCEEDED' && decision.reason !== 'LIMIT_ERROR') return undefined;
  return decision.usage?.find((s) => s.mode === 'enforce' && s.outcome !== 'ok');
}
