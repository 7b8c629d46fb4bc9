/**
 * Usage limits, the compiler's half: each limit's CEL (`when`, `key`, `cost`) type-checked and
 * costed with the file's unit, and the set's limits indexed by resource type once a snapshot
 * compiles (names unique across the set: a name is the counter's identity).
 */
import type { CompiledPolicy } from '../engine/model.js';
import type { CompiledLimit, UsageIndex } from '../engine/usage.js';
import { actionMatches } from './action-index.js';
import { checkPolicyCosts, type CostEstimateLimits, type CostedExpression } from './cost.js';
import type { ResourcePolicyDocument } from './document.js';
import { checkExpression } from './expression.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import type { CompiledVariables } from './variables.js';

/** Key parts may be any of these (a dyn is checked when evaluated). */
const KEY_TYPES = new Set(['string', 'int', 'uint', 'bool', 'dyn']);
const COST_TYPES = new Set(['int', 'uint', 'dyn']);

/** A limit compiled with its file, with where it is defined (for duplicate names across files). */
export interface UnitLimit {
  readonly position: SourcePosition;
  readonly resource: string;
  readonly limit: CompiledLimit;
}

/** Compiles the limits of one document; problems are issues, and a broken limit is left out. */
export function compileLimits(
  doc: ResourcePolicyDocument,
  policy: CompiledPolicy,
  vars: CompiledVariables,
  costLimits: CostEstimateLimits,
  issues: PolicyIssue[],
): { limits: UnitLimit[]; expressions: number; checked: readonly CostedExpression[] } {
  const out: UnitLimit[] = [];
  let expressions = 0;
  const costed: CostedExpression[] = [];
  for (const def of doc.limits ?? []) {
    const label = `limit "${def.name}"`;
    const before = issues.length;
    let condition;
    if (def.when) {
      expressions++;
      const checked = checkExpression(vars.env, def.when, `${label}: when`, issues, true);
      if (checked) {
        condition = checked.program;
        costed.push({ where: `${label}: when`, source: def.when, checked });
      }
    }
    const key = def.key.map((part, i) => {
      expressions++;
      const where = def.key.length > 1 ? `${label}: key[${i}]` : `${label}: key`;
      const checked = checkExpression(vars.env, part, where, issues, false);
      if (!checked) return undefined;
      if (!KEY_TYPES.has(checked.type)) {
        issues.push({ ...part.position, code: 'CEL_NOT_KEY', message: `${where}: a key part must be a string, int, uint or bool, but ${JSON.stringify(part.text)} is ${checked.type}` });
        return undefined;
      }
      costed.push({ where, source: part, checked });
      return checked.program;
    });
    let cost;
    if (def.cost) {
      expressions++;
      const checked = checkExpression(vars.env, def.cost, `${label}: cost`, issues, false);
      if (checked && !COST_TYPES.has(checked.type)) {
        issues.push({ ...def.cost.position, code: 'CEL_NOT_INT', message: `${label}: cost must be an int, but ${JSON.stringify(def.cost.text)} is ${checked.type}` });
      } else if (checked) {
        cost = checked.program;
        costed.push({ where: `${label}: cost`, source: def.cost, checked });
      }
    }
    if (issues.length > before) continue;
    const roles = def.roles ?? [];
    out.push({
      position: def.position,
      resource: doc.resource,
      limit: {
        name: def.name,
        policy,
        actions: def.actions.map((a) => a.pattern),
        anyRole: roles.length === 0 || roles.includes('*'),
        roles: new Set(roles),
        condition,
        key: key as CompiledLimit['key'],
        cost,
        measure: def.measure,
        mode: def.mode,
        scope: def.scope,
      },
    });
  }
  // Each expression's worst case, like a rule's condition (CEL_COST); variables are reported by the rules' pass.
  if (costed.length > 0 && vars.ok) {
    const variables = new Map<string, CostedExpression>();
    for (const def of doc.variables) {
      const checked = vars.checked.get(def.name);
      if (checked) variables.set(def.name, { where: `variables.${def.name}`, source: def.expression, checked });
    }
    if (variables.size === doc.variables.length) {
      const scratch: PolicyIssue[] = [];
      checkPolicyCosts(variables, costed, costLimits, scratch);
      for (const i of scratch) if (i.message.startsWith('limit "')) issues.push(i);
    }
  }
  // Every expression that compiled (when, key parts, cost): the declarations check reads their attribute paths.
  return { limits: out, expressions, checked: costed };
}

/** Every limit of the set, in document order: the index, or the duplicate names. */
export function indexUsage(limits: readonly UnitLimit[]): { usage: UsageIndex | undefined; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  if (limits.length === 0) return { usage: undefined, issues };
  const seen = new Map<string, SourcePosition>();
  const byType = new Map<string, CompiledLimit[]>();
  const wildcard: CompiledLimit[] = [];
  const all: CompiledLimit[] = [];
  for (const u of limits) {
    const prev = seen.get(u.limit.name);
    if (prev) {
      // A name is the counter's identity (and, with scope: cluster, its key in NATS): unique across the set.
      issues.push({ ...u.position, code: 'DUPLICATE_NAME', message: `limit "${u.limit.name}" is already defined at ${prev.file}:${prev.line} (limit names are unique across the policy set)` });
      continue;
    }
    seen.set(u.limit.name, u.position);
    all.push(u.limit);
    if (u.resource === '*') wildcard.push(u.limit);
    else {
      let list = byType.get(u.resource);
      if (!list) byType.set(u.resource, (list = []));
      list.push(u.limit);
    }
  }
  const ofType = new Map<string, readonly CompiledLimit[]>();
  for (const [type, list] of byType) ofType.set(type, all.filter((l) => list.includes(l) || wildcard.includes(l)));
  const empty: readonly CompiledLimit[] = [];
  const usage: UsageIndex = {
    limits: all,
    limitsFor(resourceType, action) {
      const candidates = ofType.get(resourceType) ?? wildcard;
      if (candidates.length === 0) return empty;
      let matched: CompiledLimit[] | undefined;
      for (const l of candidates) {
        for (const p of l.actions) {
          if (actionMatches(p, action)) {
            (matched ??= []).push(l);
            break;
          }
        }
      }
      return matched ?? empty;
    },
  };
  return { usage, issues };
}
