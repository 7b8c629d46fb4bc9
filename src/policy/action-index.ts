import type { CandidateRules, CompiledRule, ResourceTypeIndex } from '../engine/model.js';

const EMPTY: CandidateRules = { deny: [], allow: [] };
/** Bound on memoised answers for actions no rule names exactly (so arbitrary input cannot grow memory). */
const MAX_MEMO = 1024;

export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return action.startsWith(pattern.slice(0, -1));
  return pattern === action;
}

function split(rules: readonly CompiledRule[]): CandidateRules {
  if (rules.length === 0) return EMPTY;
  return { deny: rules.filter((r) => r.effect === 'deny'), allow: rules.filter((r) => r.effect === 'allow') };
}

/**
 * Index of one resource type's rules by action. Every action named literally in a rule gets its
 * candidate list at load; other actions (matched only by globs) are computed once and memoised.
 * A check therefore costs one Map lookup however many types and rules the set holds. `ordered` is in
 * the order of the set's documents (file path order, then position in the file).
 */
export function buildResourceTypeIndex(ordered: readonly CompiledRule[], hasOwnPolicy: boolean): ResourceTypeIndex {
  const globRules = ordered.filter((r) => r.actions.some((p) => p.endsWith('*')));
  const exact = new Map<string, CandidateRules>();
  const literalActions = new Set(ordered.flatMap((r) => r.actions.filter((p) => !p.endsWith('*'))));
  for (const action of literalActions) {
    exact.set(action, split(ordered.filter((r) => r.actions.some((p) => actionMatches(p, action)))));
  }
  const memo = new Map<string, CandidateRules>();
  return {
    hasOwnPolicy,
    allRules: ordered,
    candidates(action: string): CandidateRules {
      const hit = exact.get(action) ?? memo.get(action);
      if (hit) return hit;
      if (globRules.length === 0) return EMPTY;
      const computed = split(globRules.filter((r) => r.actions.some((p) => actionMatches(p, action))));
      if (memo.size < MAX_MEMO) memo.set(action, computed);
      return computed;
    },
  };
}
