/** Stable codes for everything that can be wrong with a policy set at load time. */
export type PolicyIssueCode =
  | 'FILE_UNREADABLE'
  | 'YAML_SYNTAX'
  | 'UNSUPPORTED_API_VERSION'
  | 'UNKNOWN_KIND'
  | 'UNKNOWN_FIELD'
  | 'MISSING_FIELD'
  | 'INVALID_VALUE'
  | 'INVALID_EFFECT'
  | 'INVALID_ACTION'
  | 'DUPLICATE_NAME'
  | 'CEL_SYNTAX'
  | 'CEL_TYPE'
  | 'CEL_NOT_BOOL'
  | 'CEL_UNSAFE'
  | 'CEL_COST' // a condition's worst-case cost is over limits.maxConditionCost
  | 'UNDEFINED_VARIABLE'
  | 'CYCLIC_VARIABLE'
  | 'NO_POLICIES'
  | 'INVALID_RATE' // a limit's rate or burst cannot be read or is out of range
  | 'INVALID_PERIOD' // a quota's period is not hour, day, month or "rolling <duration>"
  | 'CEL_NOT_KEY' // a limit's key part is not a string, int, uint or bool
  | 'CEL_NOT_INT'; // a limit's cost is not an int

/** A position in a policy file; line and column are 1-based as editors show them. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface PolicyIssue extends SourcePosition {
  readonly code: PolicyIssueCode;
  readonly message: string;
}

export function formatIssue(issue: Omit<PolicyIssue, 'code'> & { readonly code: string }): string {
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.code}: ${issue.message}`;
}

/** Thrown when a policy set cannot be loaded; carries every issue found, not only the first. */
export class PolicyLoadError extends Error {
  readonly code = 'POLICY_LOAD_FAILED';
  constructor(readonly issues: readonly PolicyIssue[]) {
    super(
      `policy set rejected with ${issues.length} error${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  ${formatIssue(i)}`).join('\n'),
    );
    this.name = 'PolicyLoadError';
  }
}
