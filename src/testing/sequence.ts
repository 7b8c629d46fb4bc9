/**
 * Sequences in policy test suites: requests at given times with expected outcomes, against fresh
 * usage counters and a fake clock, so rate limits and quotas are tested like rules
 * (docs/policies.md#testing-limits).
 *
 *   - name: five exports, then the rate limit
 *     request: {subject: …, action: export, resource: …}      # the base request of every step
 *     steps:
 *       - {at: "2026-03-01T10:00:00Z", repeat: 5, expect: allow}
 *       - {at: "2026-03-01T10:00:00Z", expect: deny, reason: RATE_LIMITED, limit: export-rate, retryAfter: 12s}
 *       - {at: "2026-03-01T10:00:12Z", expect: allow, request: {context: {ip: 10.0.0.2}}}
 */
import { decide } from '../engine/evaluate.js';
import { InvalidRequestError, parseCheckRequest } from '../engine/input.js';
import { decidingLimit, type Decision } from '../engine/decision.js';
import type { CompiledPolicySet } from '../engine/model.js';
import type { CheckRequest } from '../engine/request.js';
import { DEFAULT_COST_LIMITS } from '../engine/limits.js';
import { applyUsage, type UsageCounters } from '../service/usage.js';
import { InstanceCounters } from '../usage/instance-counters.js';
import { parseDuration } from '../policy/parse-limits.js';

/** Most steps in one test, and most repeats of one step (a suite file is input too). */
export const MAX_STEPS = 1000;
export const MAX_REPEAT = 10_000;

const STEP_FIELDS = new Set(['at', 'request', 'repeat', 'expect', 'reason', 'rule', 'limit', 'remaining', 'retryAfter', 'description']);

export interface PolicyTestStep {
  readonly index: number;
  readonly at: Date;
  readonly request: CheckRequest;
  readonly repeat: number;
  readonly expect: 'allow' | 'deny';
  readonly reason: string | undefined;
  readonly rule: string | undefined;
  /** The limit expected to deny ("" = none). */
  readonly limit: string | undefined;
  readonly remaining: number | undefined;
  /** Expected retry-after, in ms (rounded up to the second when compared). */
  readonly retryAfterMs: number | undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses `steps`; returns an error message instead when a step is not valid. */
export function parseSteps(raw: unknown, base: Record<string, unknown>): PolicyTestStep[] | string {
  if (!Array.isArray(raw) || raw.length === 0) return 'steps must be a non-empty list';
  if (raw.length > MAX_STEPS) return `steps has ${raw.length} steps; at most ${MAX_STEPS}`;
  const out: PolicyTestStep[] = [];
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i] as unknown;
    const where = `steps[${i}]`;
    if (!isRecord(s)) return `${where} must be a mapping`;
    for (const k of Object.keys(s)) if (!STEP_FIELDS.has(k)) return `${where}: unknown field "${k}"`;
    const at = s.at instanceof Date ? s.at : new Date(String(s.at));
    if (s.at === undefined || Number.isNaN(at.getTime())) return `${where}: at ${JSON.stringify(s.at)} is not an RFC 3339 timestamp`;
    if (s.expect !== 'allow' && s.expect !== 'deny') return `${where}: expect must be "allow" or "deny"`;
    const repeat = s.repeat ?? 1;
    if (typeof repeat !== 'number' || !Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) return `${where}: repeat must be a whole number from 1 to ${MAX_REPEAT}`;
    if (s.request !== undefined && !isRecord(s.request)) return `${where}: request must be a mapping (fields replace the test's request)`;
    let request: CheckRequest;
    try {
      request = parseCheckRequest({ ...base, ...(s.request as Record<string, unknown> | undefined) }, undefined, `${where}.request`);
    } catch (err) {
      if (err instanceof InvalidRequestError) return err.message;
      throw err;
    }
    if (s.remaining !== undefined && (typeof s.remaining !== 'number' || !Number.isInteger(s.remaining) || s.remaining < 0)) return `${where}: remaining must be a whole number`;
    let retryAfterMs: number | undefined;
    if (s.retryAfter !== undefined) {
      retryAfterMs = s.retryAfter === 0 || s.retryAfter === '0' ? 0 : parseDuration(String(s.retryAfter));
      if (retryAfterMs === undefined) return `${where}: retryAfter ${JSON.stringify(s.retryAfter)} must be a duration such as 12s, 5m or 0`;
    }
    for (const k of ['reason', 'rule', 'limit'] as const) {
      if (s[k] !== undefined && s[k] !== null && typeof s[k] !== 'string') return `${where}: ${k} must be a string`;
    }
    out.push({
      index: i,
      at,
      request,
      repeat,
      expect: s.expect,
      reason: s.reason as string | undefined,
      rule: s.rule === null ? '' : (s.rule as string | undefined),
      limit: s.limit === null ? '' : (s.limit as string | undefined),
      remaining: s.remaining as number | undefined,
      retryAfterMs,
    });
  }
  return out;
}

/** One decision as `verdict test` and `verdict serve` make it: rules, then limits against `counters`. */
export function decideWithUsage(set: CompiledPolicySet, request: CheckRequest, now: Date, counters: UsageCounters): Decision {
  const decision = decide(set, request, { now, explain: true });
  return applyUsage(decision, set.usage, request, now, counters, DEFAULT_COST_LIMITS.maxDecisionCost);
}

/** What is wrong with `decision` for `step` ("" when nothing). */
function stepProblems(step: PolicyTestStep, decision: Decision, repetition: number): string {
  const problems: string[] = [];
  const got = decision.effect === 'ALLOW' ? 'allow' : 'deny';
  if (got !== step.expect) problems.push(`expected ${step.expect}, got ${got} (${decision.reason})`);
  if (step.reason !== undefined && decision.reason !== step.reason) problems.push(`expected reason ${step.reason}, got ${decision.reason}`);
  if (step.rule !== undefined && decision.rule !== step.rule) problems.push(`expected rule ${JSON.stringify(step.rule)}, decided by ${JSON.stringify(decision.rule)}`);
  const limit = decidingLimit(decision);
  if (step.limit !== undefined && (limit?.name ?? '') !== step.limit) problems.push(`expected limit ${JSON.stringify(step.limit)}, denied by ${JSON.stringify(limit?.name ?? '')}`);
  // remaining/retryAfter: of the limit that denied, else of the first enforced limit that applied.
  const state = limit ?? decision.usage?.find((u) => u.mode === 'enforce');
  if (step.remaining !== undefined && state?.remaining !== step.remaining) problems.push(`expected remaining ${step.remaining}, got ${state?.remaining ?? 'none (no limit applied)'}`);
  if (step.retryAfterMs !== undefined) {
    const got = Math.ceil((state?.retryAfterMs ?? 0) / 1000);
    if (got !== Math.ceil(step.retryAfterMs / 1000)) problems.push(`expected retryAfter ${Math.ceil(step.retryAfterMs / 1000)}s, got ${got}s`);
  }
  if (problems.length === 0) return '';
  const rep = step.repeat > 1 ? ` (repetition ${repetition + 1} of ${step.repeat})` : '';
  return `step ${step.index + 1} at ${step.at.toISOString()}${rep}: ${problems.join('; ')}`;
}

/** Runs the steps in order against fresh counters; stops at the first step that fails. */
export function runSteps(set: CompiledPolicySet, steps: readonly PolicyTestStep[]): { decision: Decision; failure: string } {
  const counters = new InstanceCounters();
  let last: Decision | undefined;
  for (const step of steps) {
    for (let r = 0; r < step.repeat; r++) {
      last = decideWithUsage(set, step.request, step.at, counters);
      const failure = stepProblems(step, last, r);
      if (failure) return { decision: last, failure };
    }
  }
  return { decision: last!, failure: '' };
}
