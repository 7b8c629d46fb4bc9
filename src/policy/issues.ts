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
  | 'CEL_NOT_INT' // a limit's cost is not an int
  // Declarations (kind: Declarations, src/policy/declarations.ts)
  | 'UNDECLARED_ROLE' // a rule's roles or a derived role's parentRoles names a role neither declared nor derived
  | 'UNKNOWN_ATTRIBUTE' // a condition reads an attribute path the schema does not declare
  | 'ATTRIBUTE_TYPE' // a condition uses an attribute in a way its declared type cannot support (type-check.ts)
  | 'INVALID_SCHEMA' // a schema does not compile (ajv, strict mode)
  | 'DUPLICATE_DECLARATIONS'; // more than one kind: Declarations document in the set

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
