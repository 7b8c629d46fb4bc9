import type { CandidateRules, CompiledRule, ResourceTypeIndex } from '../engine/model.js';

/** Shared empty lists: a check then reads one hot object, not a cold one of each type's (a 10,000-type set holds thousands). */
const NO_RULES: readonly CompiledRule[] = [];
const EMPTY: CandidateRules = { deny: NO_RULES, allow: NO_RULES };
/** Bound on memoised answers for actions no rule names exactly (so arbitrary input cannot grow memory). */
const MAX_MEMO = 1024;

export function actionMatches(pattern: string, action: string): boolean {
  const last = pattern.length - 1;
  if (pattern.charCodeAt(last) !== 42 /* * */) return pattern === action;
  if (action.length < last) return false;
  // A prefix glob, compared in place (no substring per call: indexes are built for thousands of types).
  for (let i = 0; i < last; i++) if (pattern.charCodeAt(i) !== action.charCodeAt(i)) return false;
  return true;
}

/** The rules (in order) one of whose patterns matches `action`, split by effect. */
function candidatesFor(rules: readonly CompiledRule[], action: string): CandidateRules {
  let deny: CompiledRule[] | undefined;
  let allow: CompiledRule[] | undefined;
  for (const r of rules) {
    for (const p of r.actions) {
      if (!actionMatches(p, action)) continue;
      if (r.effect === 'deny') (deny ??= []).push(r);
      else (allow ??= []).push(r);
      break;
    }
  }
  return deny || allow ? { deny: deny ?? NO_RULES, allow: allow ?? NO_RULES } : EMPTY;
}

/**
 * Index of one resource type's rules by action. Every action named literally in a rule gets its
 * candidate list, made with the type's first check (not at load: a first load of thousands of
 * types would build tables most of which no check reads for a while, and none of it can fail, so
 * nothing is validated later than before); other actions (matched only by globs) are computed once
 * and memoised. A check therefore costs one Map lookup however many types and rules the set holds.
 * `ordered` is in the order of the set's documents (file path order, then position in the file).
 */
export function buildResourceTypeIndex(ordered: readonly CompiledRule[], hasOwnPolicy: boolean): ResourceTypeIndex {
  return new ActionIndex(hasOwnPolicy, ordered);
}

/**
 * One class for every type's index (not a closure per type): the code a check runs is then shared
 * and warmed by every type's checks, instead of each of thousands of types running its own cold copy.
 */
class ActionIndex implements ResourceTypeIndex {
  private memo: Map<string, CandidateRules> | undefined;
  private exact: Map<string, CandidateRules> | undefined;
  private globRules: CompiledRule[] = [];

  constructor(
    readonly hasOwnPolicy: boolean,
    readonly allRules: readonly CompiledRule[],
  ) {}

  candidates(action: string): CandidateRules {
    const exact = this.exact ?? this.build();
    const hit = exact.get(action) ?? this.memo?.get(action);
    if (hit) return hit;
    if (this.globRules.length === 0) return EMPTY;
    const computed = candidatesFor(this.globRules, action);
    const memo = (this.memo ??= new Map());
    if (memo.size < MAX_MEMO) memo.set(action, computed);
    return computed;
  }

  private build(): Map<string, CandidateRules> {
    const exact = new Map<string, CandidateRules>();
    for (const r of this.allRules) {
      let glob = false;
      for (const p of r.actions) {
        if (p.charCodeAt(p.length - 1) === 42) glob = true;
        else exact.set(p, EMPTY);
      }
      if (glob) this.globRules.push(r);
    }
    for (const action of exact.keys()) exact.set(action, candidatesFor(this.allRules, action));
    return (this.exact = exact);
  }
}
