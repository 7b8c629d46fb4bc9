import type { Decision, LimitState, RuleTrace } from '../engine/decision.js';
import type { CheckOutcome } from '../service/decision-service.js';

/** An AuthZEN Decision: `decision` plus Verdict's account of it in `context`. */
export interface AuthzenDecision {
  readonly decision: boolean;
  readonly context: Record<string, unknown>;
}

/** Rule outcomes under the names the gRPC API uses (docs/api.md, "Enums"). */
const OUTCOMES: Record<RuleTrace['outcome'], string> = {
  APPLIED: 'RULE_OUTCOME_APPLIED',
  ACTION_MISMATCH: 'RULE_OUTCOME_ACTION_MISMATCH',
  ROLE_MISMATCH: 'RULE_OUTCOME_ROLE_MISMATCH',
  CONDITION_FALSE: 'RULE_OUTCOME_CONDITION_FALSE',
  CONDITION_ERROR: 'RULE_OUTCOME_CONDITION_ERROR',
  NOT_EVALUATED: 'RULE_OUTCOME_UNSPECIFIED',
};

/**
 * `context` carries the decision id (= the decision event's id), the reason code, the policy and
 * rule that decided (left out when none did), the revision, condition errors when there were any,
 * and the explanation when it was asked for.
 */
export function toAuthzenDecision(outcome: CheckOutcome): AuthzenDecision {
  const d: Decision = outcome.decision;
  const context: Record<string, unknown> = { decision_id: outcome.decisionId, reason: d.reason };
  if (d.policy) context.policy = d.policy;
  if (d.rule) context.rule = d.rule;
  context.revision = d.revision;
  if (d.usage) context.limits = d.usage.map(limitContext);
  if (d.errors.length > 0) context.errors = d.errors.map((e) => ({ policy: e.policy, rule: e.rule, message: e.message }));
  if (d.explanation) {
    context.explanation = d.explanation.map((t) => ({
      policy: t.policy,
      rule: t.rule,
      effect: t.effect,
      outcome: OUTCOMES[t.outcome],
      detail: t.detail,
      derived_roles: t.derivedRoles ?? [],
    }));
  }
  return { decision: d.effect === 'ALLOW', context };
}

/** A usage limit in an AuthZEN context (snake_case, like the rest of the context; gRPC's LimitState). */
function limitContext(u: LimitState): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: u.name,
    policy: u.policy,
    kind: u.kind,
    mode: u.mode,
    scope: u.scope,
    outcome: u.outcome,
    limit: u.limit,
    remaining: u.remaining,
    retry_after_ms: u.retryAfterMs,
    reset_ms: u.resetMs,
    window_ms: u.windowMs,
  };
  if (u.message !== undefined) out.message = u.message;
  return out;
}

/** An `evaluations` item that could not be decided: a deny (AuthZEN: decisions default to closed) saying why. */
export function itemError(message: string): AuthzenDecision {
  return { decision: false, context: { error: { status: 400, code: 'INVALID_REQUEST', message } } };
}
