import { armMeter, disarmMeter } from '../cel/meter.js';
import { CallerValue, ResourceValue, SubjectValue, ANONYMOUS_CALLER } from '../cel/values.js';
import { DEFAULT_COST_LIMITS } from './limits.js';
import { didYouMean } from './suggest.js';
import type { Decision, DecisionReason, EvaluationErrorInfo, RuleOutcome, RuleTrace } from './decision.js';
import type { CompiledCondition, CompiledDerivedRole, CompiledPolicy, CompiledPolicySet, CompiledRule } from './model.js';
import type { CheckRequest, EvaluationOptions } from './request.js';

/** What a condition sees: the request's values, and `variables` for policies that declare some. */
interface Activation {
  [name: string]: unknown;
  subject: unknown;
  resource: unknown;
  action: string;
  context: unknown;
  now: Date;
  caller: unknown;
  variables: unknown;
}

type Verdict = { kind: 'true' } | { kind: 'false' } | { kind: 'error'; message: string };
const TRUE: Verdict = { kind: 'true' };
const FALSE: Verdict = { kind: 'false' };

function errorMessage(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { summary?: unknown; message?: unknown };
    if (typeof e.summary === 'string' && e.summary) return e.summary;
    if (typeof e.message === 'string') return e.message.split('\n')[0]!;
  }
  return String(err);
}

/** Runs a condition; anything but a literal `true` is not a yes, and a throw is an error, never an allow. */
function runCondition(condition: CompiledCondition, activation: Record<string, unknown>): Verdict {
  let value: unknown;
  try {
    value = condition(activation);
  } catch (err) {
    return { kind: 'error', message: errorMessage(err) };
  }
  if (value === true) return TRUE;
  if (value === false) return FALSE;
  return { kind: 'error', message: `condition returned ${value === null ? 'null' : typeof value}, not a bool` };
}

const NO_SUCH_KEY = /^No such key: (.+)$/;
/** Bounds on the suggestion work a request can cause: names and keys compared, and suggestions per check. */
const SUGGEST_MAX_NAME = 48;
const SUGGEST_MAX_KEYS = 128;
const SUGGESTIONS_PER_CHECK = 2;

/**
 * `No such key: amout` gets a "did you mean" from the keys the request does have (attributes of the
 * subject and resource, context): only on the error path, so a check that succeeds pays nothing.
 * Bounded (a request chooses its keys): at most 2 per check, 128 keys of at most 48 characters
 * each, so at most about 600,000 steps of edit distance per check.
 */
function withSuggestion(v: Verdict, scope: CheckScope): Verdict {
  if (v.kind !== 'error' || scope.suggestions >= SUGGESTIONS_PER_CHECK) return v;
  const m = NO_SUCH_KEY.exec(v.message);
  if (!m || m[1]!.length > SUGGEST_MAX_NAME) return v;
  scope.suggestions++;
  const { request } = scope;
  const keys: string[] = [];
  for (const map of [request.subject.attributes, request.resource.attributes, request.context]) {
    for (const k in map) {
      if (keys.length >= SUGGEST_MAX_KEYS) break;
      if (k.length <= SUGGEST_MAX_NAME) keys.push(k);
    }
  }
  const hint = didYouMean(m[1]!, keys);
  return hint ? { kind: 'error', message: `${v.message}${hint}` } : v;
}

/** Per-check state: activations per policy and derived-role results, each computed at most once. */
class CheckScope {
  private readonly base: Activation;
  // Most checks touch one or two policies with variables: the last one is kept at hand, the
  // maps are made only when a check needs more (profiles showed the per-check copies and maps).
  private lastPolicy: CompiledPolicy | undefined;
  private lastActivation: Activation | undefined;
  private activations: Map<CompiledPolicy, Activation> | undefined;
  private derived: Map<CompiledDerivedRole, Verdict> | undefined;
  /** "Did you mean" suggestions made in this check (bounded). */
  suggestions = 0;

  constructor(readonly request: CheckRequest, now: Date) {
    const { subject, resource, caller } = request;
    this.base = {
      subject: new SubjectValue(subject.type, subject.id, subject.roles, subject.attributes),
      resource: new ResourceValue(resource.type, resource.id, resource.attributes),
      action: request.action,
      context: request.context,
      now,
      caller: caller ? new CallerValue(caller.id, caller.kind) : ANONYMOUS_CALLER,
      variables: undefined,
    };
  }

  activationFor(policy: CompiledPolicy): Activation {
    if (!policy.hasVariables) return this.base;
    if (this.lastPolicy === policy) return this.lastActivation!;
    let activation = this.activations?.get(policy);
    if (!activation) {
      const b = this.base;
      // Same shape as the base (a literal, not a spread): property access stays monomorphic.
      activation = { subject: b.subject, resource: b.resource, action: b.action, context: b.context, now: b.now, caller: b.caller, variables: undefined };
      activation.variables = policy.createVariables(activation);
      if (this.lastPolicy) (this.activations ??= new Map()).set(this.lastPolicy, this.lastActivation!);
    }
    this.lastPolicy = policy;
    this.lastActivation = activation;
    return activation;
  }

  holdsDerivedRole(role: CompiledDerivedRole): Verdict {
    let result = this.derived?.get(role);
    if (!result) {
      const roles = this.request.subject.roles;
      if (role.parentRoles.length > 0 && !role.parentRoles.some((p) => roles.includes(p))) result = FALSE;
      else result = withSuggestion(runCondition(role.condition, this.activationFor(role.policy)), this);
      (this.derived ??= new Map()).set(role, result);
    }
    return result;
  }
}

interface RuleResult {
  readonly outcome: RuleOutcome;
  readonly detail: string;
  readonly derivedRoles: readonly string[];
}

function roleCheck(rule: CompiledRule, scope: CheckScope): { ok: boolean; error?: string; derived: string[] } {
  if (rule.anyRole) return { ok: true, derived: [] };
  for (const r of scope.request.subject.roles) if (rule.staticRoles.has(r)) return { ok: true, derived: [] };
  const errors: string[] = [];
  for (const role of rule.derivedRoles) {
    const v = scope.holdsDerivedRole(role);
    if (v.kind === 'true') return { ok: true, derived: [role.name] };
    if (v.kind === 'error') errors.push(`derived role "${role.name}": ${v.message}`);
  }
  return errors.length > 0 ? { ok: false, error: errors.join('; '), derived: [] } : { ok: false, derived: [] };
}

function evaluateRule(rule: CompiledRule, scope: CheckScope): RuleResult {
  const roles = roleCheck(rule, scope);
  if (roles.error !== undefined) return { outcome: 'CONDITION_ERROR', detail: roles.error, derivedRoles: [] };
  if (!roles.ok) {
    const wanted = [...rule.staticRoles, ...rule.derivedRoles.map((d) => d.name)].join(', ');
    return { outcome: 'ROLE_MISMATCH', detail: `subject holds none of the roles [${wanted}]`, derivedRoles: [] };
  }
  if (!rule.condition) return { outcome: 'APPLIED', detail: '', derivedRoles: roles.derived };
  const v = withSuggestion(runCondition(rule.condition, scope.activationFor(rule.policy)), scope);
  if (v.kind === 'true') return { outcome: 'APPLIED', detail: '', derivedRoles: roles.derived };
  if (v.kind === 'false') return { outcome: 'CONDITION_FALSE', detail: `condition is false: ${rule.conditionSource}`, derivedRoles: roles.derived };
  return { outcome: 'CONDITION_ERROR', detail: v.message, derivedRoles: roles.derived };
}

function decision(set: CompiledPolicySet, effect: 'ALLOW' | 'DENY', reason: DecisionReason, rule: CompiledRule | undefined, errors: EvaluationErrorInfo[], explanation?: RuleTrace[]): Decision {
  const d: Decision = {
    effect,
    reason,
    policy: rule ? rule.policy.id : '',
    rule: rule ? rule.name : '',
    revision: set.revision,
    errors,
  };
  return explanation ? { ...d, explanation } : d;
}

/**
 * Decides one request against a compiled policy set. Pure: no I/O, no clock, no logging.
 * Deny overrides allow; nothing applies → deny; an erroring deny rule denies; an erroring allow rule
 * does not apply. Any unexpected failure is a DENY with reason INTERNAL_ERROR.
 */
export function decide(set: CompiledPolicySet, request: CheckRequest, options: EvaluationOptions): Decision {
  armMeter(options.costLimit ?? DEFAULT_COST_LIMITS.maxDecisionCost, options.costSetting ?? 'limits.maxDecisionCost');
  try {
    return decideArmed(set, request, options);
  } finally {
    disarmMeter();
  }
}

/**
 * `decide`, also returning the cost units the decision used. Conditions charge a meter armed for
 * this decision only (src/cel/meter.ts); when its limit is reached the condition being evaluated
 * errors, which fails closed like any evaluation error.
 */
export function decideMetered(set: CompiledPolicySet, request: CheckRequest, options: EvaluationOptions): { decision: Decision; cost: number } {
  armMeter(options.costLimit ?? DEFAULT_COST_LIMITS.maxDecisionCost, options.costSetting ?? 'limits.maxDecisionCost');
  const result = decideArmed(set, request, options);
  return { decision: result, cost: disarmMeter() };
}

function decideArmed(set: CompiledPolicySet, request: CheckRequest, options: EvaluationOptions): Decision {
  try {
    const declarations = set.declarations;
    if (declarations !== undefined && declarations.mode !== 'off') {
      // The request against the set's schemas (validators compiled at load): enforce denies a
      // request that does not match, before any rule runs; warn decides and reports the problems.
      const problems = declarations.checkRequest(request);
      if (problems.length > 0) {
        if (declarations.mode === 'enforce') {
          const denied = decision(set, 'DENY', 'SCHEMA_MISMATCH', undefined, [], options.explain ? [] : undefined);
          return { ...denied, schemaProblems: problems };
        }
        const decided = options.explain ? decideExplained(set, request, options.now) : decideFast(set, request, options.now);
        return { ...decided, schemaProblems: problems };
      }
    }
    return options.explain ? decideExplained(set, request, options.now) : decideFast(set, request, options.now);
  } catch (err) {
    return decision(set, 'DENY', 'INTERNAL_ERROR', undefined, [{ policy: '', rule: '', message: errorMessage(err) }]);
  }
}

function decideFast(set: CompiledPolicySet, request: CheckRequest, now: Date): Decision {
  const index = set.indexFor(request.resource.type);
  const candidates = index.candidates(request.action);
  const scope = new CheckScope(request, now);
  const errors: EvaluationErrorInfo[] = [];
  for (const rule of candidates.deny) {
    const r = evaluateRule(rule, scope);
    if (r.outcome === 'APPLIED') return decision(set, 'DENY', 'RULE_DENY', rule, errors);
    if (r.outcome === 'CONDITION_ERROR') {
      errors.push({ policy: rule.policy.id, rule: rule.name, message: r.detail });
      return decision(set, 'DENY', 'RULE_ERROR', rule, errors);
    }
  }
  for (const rule of candidates.allow) {
    const r = evaluateRule(rule, scope);
    if (r.outcome === 'APPLIED') return decision(set, 'ALLOW', 'RULE_ALLOW', rule, errors);
    if (r.outcome === 'CONDITION_ERROR') errors.push({ policy: rule.policy.id, rule: rule.name, message: r.detail });
  }
  return decision(set, 'DENY', index.hasOwnPolicy ? 'NO_MATCHING_RULE' : 'NO_POLICY', undefined, errors);
}

function decideExplained(set: CompiledPolicySet, request: CheckRequest, now: Date): Decision {
  const index = set.indexFor(request.resource.type);
  const candidates = index.candidates(request.action);
  const relevant = new Set<CompiledRule>([...candidates.deny, ...candidates.allow]);
  const scope = new CheckScope(request, now);
  const traces: RuleTrace[] = [];
  const results = new Map<CompiledRule, RuleResult>();
  for (const rule of index.allRules) {
    const base = { policy: rule.policy.id, rule: rule.name, effect: rule.effect };
    if (!relevant.has(rule)) {
      traces.push({ ...base, outcome: 'ACTION_MISMATCH', detail: `action "${request.action}" is not in [${rule.actions.join(', ')}]` });
      continue;
    }
    const r = evaluateRule(rule, scope);
    results.set(rule, r);
    traces.push(r.derivedRoles.length > 0 ? { ...base, outcome: r.outcome, detail: r.detail, derivedRoles: r.derivedRoles } : { ...base, outcome: r.outcome, detail: r.detail });
  }
  const errors: EvaluationErrorInfo[] = [];
  for (const rule of [...candidates.deny, ...candidates.allow]) {
    const r = results.get(rule)!;
    if (r.outcome === 'CONDITION_ERROR') errors.push({ policy: rule.policy.id, rule: rule.name, message: r.detail });
  }
  for (const rule of candidates.deny) {
    const r = results.get(rule)!;
    if (r.outcome === 'APPLIED') return decision(set, 'DENY', 'RULE_DENY', rule, errors, traces);
    if (r.outcome === 'CONDITION_ERROR') return decision(set, 'DENY', 'RULE_ERROR', rule, errors, traces);
  }
  for (const rule of candidates.allow) {
    if (results.get(rule)!.outcome === 'APPLIED') return decision(set, 'ALLOW', 'RULE_ALLOW', rule, errors, traces);
  }
  return decision(set, 'DENY', index.hasOwnPolicy ? 'NO_MATCHING_RULE' : 'NO_POLICY', undefined, errors, traces);
}
