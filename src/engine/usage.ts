/**
 * Usage limits, the engine's half: which of a policy set's limits apply to an allowed request, with
 * the counter key and cost each computes. Pure: no counters, no clock but the one handed in. The
 * counters themselves are the service's (src/service/usage.ts, src/usage/).
 */
import { CallerValue, ResourceValue, SubjectValue, ANONYMOUS_CALLER } from '../cel/values.js';
import { armMeter, disarmMeter } from '../cel/meter.js';
import type { CompiledCondition, CompiledPolicy } from './model.js';
import type { CheckRequest } from './request.js';

/** A calendar period in UTC, or a rolling window of `rollingMs`. */
export type QuotaPeriod = { readonly calendar: 'hour' | 'day' | 'month' } | { readonly rollingMs: number };

/** How a limit counts: a sustained rate with a burst (GCRA), or a quota per period. */
export type LimitMeasure =
  | { readonly kind: 'rate'; readonly count: number; readonly periodMs: number; readonly burst: number; readonly text: string }
  | { readonly kind: 'quota'; readonly count: number; readonly period: QuotaPeriod; readonly text: string };

export interface CompiledLimit {
  /** Unique in the set. */
  readonly name: string;
  readonly policy: CompiledPolicy;
  readonly actions: readonly string[];
  /** True when any subject is concerned (no roles, or "*"). */
  readonly anyRole: boolean;
  readonly roles: ReadonlySet<string>;
  readonly condition: CompiledCondition | undefined;
  readonly key: readonly CompiledCondition[];
  /** Undefined: 1. */
  readonly cost: CompiledCondition | undefined;
  readonly measure: LimitMeasure;
  readonly mode: 'enforce' | 'shadow';
  readonly scope: 'instance' | 'cluster';
}

/** The limits of a policy set, indexed by resource type. */
export interface UsageIndex {
  readonly limits: readonly CompiledLimit[];
  /** The limits whose type ("*" included) and actions match, in policy order. */
  limitsFor(resourceType: string, action: string): readonly CompiledLimit[];
}

/** One limit that applies to a request: the counter it charges and by how much. */
export interface UsageDemand {
  readonly limit: CompiledLimit;
  readonly key: string;
  readonly cost: number;
}

export interface UsageEvaluation {
  readonly demands: readonly UsageDemand[];
  /** Limits whose `when`, key or cost failed: an enforced one denies (LIMIT_ERROR), a shadow one is recorded. */
  readonly errors: readonly { readonly limit: CompiledLimit; readonly message: string }[];
}

/** Longest counter key, in UTF-16 units (a longer one is an error: the limit fails closed). */
export const MAX_USAGE_KEY_LENGTH = 4096;
/** Largest cost one request may charge one limit. */
export const MAX_USAGE_COST = 1_000_000_000;
const KEY_SEPARATOR = '\u001f';
const NONE: UsageEvaluation = { demands: [], errors: [] };

function message(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { summary?: unknown; message?: unknown };
    if (typeof e.summary === 'string' && e.summary) return e.summary;
    if (typeof e.message === 'string') return e.message.split('\n')[0]!;
  }
  return String(err);
}

function keyPart(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'bigint':
    case 'boolean':
      return String(v);
    case 'number':
      if (Number.isFinite(v)) return String(v);
      break;
    default:
      break;
  }
  throw new Error(`key part is ${v === null ? 'null' : typeof v}, not a string, int or bool`);
}

function costOf(v: unknown): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`cost ${String(v)} is not a non-negative int`);
  if (n > MAX_USAGE_COST) throw new Error(`cost ${n} is over ${MAX_USAGE_COST}`);
  return n;
}

/**
 * The limits that apply to `request` (call it only for a request the rules allow), each with its
 * key and cost. `costLimit` bounds what the limits' CEL may spend together, like a decision's.
 */
export function usageDemands(usage: UsageIndex, request: CheckRequest, now: Date, costLimit: number): UsageEvaluation {
  const limits = usage.limitsFor(request.resource.type, request.action);
  if (limits.length === 0) return NONE;
  armMeter(costLimit, 'limits.maxDecisionCost');
  try {
    return evaluateLimits(limits, request, now);
  } finally {
    disarmMeter();
  }
}

function evaluateLimits(limits: readonly CompiledLimit[], request: CheckRequest, now: Date): UsageEvaluation {
  const { subject, resource, caller } = request;
  const base: Record<string, unknown> = {
    subject: new SubjectValue(subject.type, subject.id, subject.roles, subject.attributes),
    resource: new ResourceValue(resource.type, resource.id, resource.attributes),
    action: request.action,
    context: request.context,
    now,
    caller: caller ? new CallerValue(caller.id, caller.kind) : ANONYMOUS_CALLER,
    variables: undefined,
  };
  let activations: Map<CompiledPolicy, Record<string, unknown>> | undefined;
  const activationFor = (policy: CompiledPolicy): Record<string, unknown> => {
    if (!policy.hasVariables) return base;
    let a = activations?.get(policy);
    if (!a) {
      a = { ...base };
      a.variables = policy.createVariables(a);
      (activations ??= new Map()).set(policy, a);
    }
    return a;
  };
  const demands: UsageDemand[] = [];
  const errors: { limit: CompiledLimit; message: string }[] = [];
  for (const limit of limits) {
    if (!limit.anyRole && !subject.roles.some((r) => limit.roles.has(r))) continue;
    try {
      const activation = activationFor(limit.policy);
      if (limit.condition) {
        const v = limit.condition(activation);
        if (v === false) continue;
        if (v !== true) throw new Error(`condition returned ${v === null ? 'null' : typeof v}, not a bool`);
      }
      let key = limit.key.length === 1 ? keyPart(limit.key[0]!(activation)) : '';
      if (limit.key.length > 1) {
        const parts: string[] = [];
        for (const k of limit.key) parts.push(keyPart(k(activation)));
        key = parts.join(KEY_SEPARATOR);
      }
      if (key.length > MAX_USAGE_KEY_LENGTH) throw new Error(`key is longer than ${MAX_USAGE_KEY_LENGTH} characters`);
      const cost = limit.cost ? costOf(limit.cost(activation)) : 1;
      demands.push({ limit, key, cost });
    } catch (err) {
      errors.push({ limit, message: message(err) });
    }
  }
  return { demands, errors };
}
