import type { CompiledPolicySet } from '../engine/model.js';
import type { PolicyIssue } from './issues.js';
import type { FileUnit } from './unit.js';
import { indexUsage, type UnitLimit } from './usage-compile.js';

/**
 * The set's usage limits from its units, in document order, and a way to attach their index to the
 * compiled set. A set without limits is left exactly as it was (no per-check work).
 */
export function usageOfSet(units: ReadonlyMap<string, FileUnit>, orderedPaths: readonly string[]): { issues: PolicyIssue[]; attach(set: CompiledPolicySet): CompiledPolicySet } {
  const limits: UnitLimit[] = [];
  for (const path of orderedPaths) {
    const unit = units.get(path);
    if (!unit) continue;
    for (const d of unit.documents) if (d.limits) limits.push(...d.limits);
  }
  const { usage, issues } = indexUsage(limits);
  return { issues, attach: (set) => (usage ? { ...set, usage } : set) };
}
