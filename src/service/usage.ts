/**
 * Usage limits in the decision flow (docs/policies.md#limits-and-quotas). The engine says which
 * limits apply to an allowed request, with each one's key and cost (src/engine/usage.ts); the
 * counters (this interface, implemented in src/usage/) take the costs at the service's clock. A
 * denied request never reaches the counters, so it never consumes.
 */
import type { Decision, LimitState } from '../engine/decision.js';
import type { CheckRequest } from '../engine/request.js';
import { usageDemands, type CompiledLimit, type UsageDemand, type UsageIndex } from '../engine/usage.js';

/** Where counters live: in the process (instance scope) and, for cluster scope, shared through NATS. */
export interface UsageCounters {
  /**
   * Takes each demand's cost at `nowMs`, atomically for the request: when any enforced limit is
   * over, nothing is taken; a shadow limit is taken only if it is within itself and no enforced one
   * is over. Returns the state of every demand, in order.
   */
  take(demands: readonly UsageDemand[], nowMs: number): LimitState[];
}

function errorState(limit: CompiledLimit, message: string): LimitState {
  return { name: limit.name, policy: limit.policy.id, kind: limit.measure.kind, mode: limit.mode, scope: limit.scope, outcome: 'error', limit: 0, remaining: 0, retryAfterMs: 0, resetMs: 0, windowMs: 0, message };
}

/**
 * The decision once the limits of an allowed request are applied: unchanged when none applies,
 * else with `usage`, and a DENY (RATE_LIMITED, QUOTA_EXCEEDED, LIMIT_ERROR) when an enforced limit
 * is over or failed. Without `counters` a limited request is denied (fail closed).
 */
export function applyUsage(decision: Decision, usage: UsageIndex | undefined, request: CheckRequest, now: Date, counters: UsageCounters | undefined, costLimit: number): Decision {
  if (usage === undefined || decision.effect !== 'ALLOW') return decision;
  const evaluation = usageDemands(usage, request, now, costLimit);
  if (evaluation.demands.length === 0 && evaluation.errors.length === 0) return decision;
  const errors = evaluation.errors.map((e) => errorState(e.limit, e.message));
  const failed = evaluation.errors.find((e) => e.limit.mode === 'enforce');
  if (failed) return limitError(decision, failed.limit, failed.message, errors);
  if (!counters) {
    const missing = 'no usage counters are configured';
    const states = [...evaluation.demands.map((d) => errorState(d.limit, missing)), ...errors];
    const enforced = evaluation.demands.find((d) => d.limit.mode === 'enforce');
    return enforced ? limitError(decision, enforced.limit, missing, states) : { ...decision, usage: states };
  }
  const states = evaluation.demands.length > 0 ? counters.take(evaluation.demands, now.getTime()) : [];
  const all = errors.length > 0 ? [...states, ...errors] : states;
  const unavailable = states.find((s) => s.mode === 'enforce' && s.outcome === 'error');
  if (unavailable) {
    const limit = evaluation.demands.find((d) => d.limit.name === unavailable.name)!.limit;
    return limitError(decision, limit, unavailable.message ?? 'the counters are unavailable', all);
  }
  const over = states.find((s) => s.mode === 'enforce' && s.outcome === 'over');
  if (!over) return { ...decision, usage: all };
  return { ...decision, effect: 'DENY', reason: over.kind === 'rate' ? 'RATE_LIMITED' : 'QUOTA_EXCEEDED', policy: over.policy, rule: '', usage: all };
}

function limitError(decision: Decision, limit: CompiledLimit, message: string, states: readonly LimitState[]): Decision {
  return { ...decision, effect: 'DENY', reason: 'LIMIT_ERROR', policy: limit.policy.id, rule: '', usage: states, errors: [...decision.errors, { policy: limit.policy.id, rule: limit.name, message }] };
}
