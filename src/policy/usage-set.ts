import type { UsageIndex } from '../engine/usage.js';
import type { PolicyIssue } from './issues.js';
import type { FileUnit } from './unit.js';
import { indexUsage, type UnitLimit } from './usage-compile.js';

/**
 * The set's usage limits from its units, in document order, and their index for the compiled set
 * (policySetOf's extras). A set without limits gets none (no per-check work).
 */
export function usageOfSet(units: ReadonlyMap<string, FileUnit>, orderedPaths: readonly string[]): { issues: PolicyIssue[]; usage: UsageIndex | undefined } {
  const limits: UnitLimit[] = [];
  for (const path of orderedPaths) {
    const unit = units.get(path);
    if (!unit) continue;
    for (const d of unit.documents) if (d.limits) limits.push(...d.limits);
  }
  const { usage, issues } = indexUsage(limits);
  return { issues, usage };
}
