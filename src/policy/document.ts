import type { LimitMeasure } from '../engine/usage.js';
import type { SourcePosition } from './issues.js';

export type { LimitMeasure, QuotaPeriod } from '../engine/usage.js';

/** A CEL expression as written in a policy file, with a way to point at any character of it. */
export interface SourceExpression {
  readonly text: string;
  readonly position: SourcePosition;
  /**
   * File position of the character at `offset` in `text` (for CEL error locations). A function
   * value, not a method: a compiled expression keeps it without the rest of this object.
   */
  readonly positionAt: (offset: number) => SourcePosition;
}

export interface Named {
  readonly name: string;
  readonly position: SourcePosition;
}

export interface VariableDefinition extends Named {
  readonly expression: SourceExpression;
}

export interface DerivedRoleDefinition extends Named {
  readonly parentRoles: readonly string[];
  /** Where each of parentRoles is written (for declaration checks). */
  readonly parentRolePositions?: readonly SourcePosition[];
  readonly when: SourceExpression;
}

export type Effect = 'allow' | 'deny';

export interface RuleDefinition extends Named {
  readonly description: string;
  readonly actions: readonly { readonly pattern: string; readonly position: SourcePosition }[];
  readonly effect: Effect;
  /** Undefined or containing "*" means any subject. */
  readonly roles: readonly string[] | undefined;
  /** Where each of roles is written (for declaration checks). */
  readonly rolePositions?: readonly SourcePosition[];
  readonly when: SourceExpression | undefined;
}

/** One `kind: ResourcePolicy` document, validated structurally (CEL not yet compiled). */
export interface ResourcePolicyDocument {
  /** Policy id: the file path relative to the policy root, plus "#N" for the Nth document of a multi-document file. */
  readonly id: string;
  readonly file: string;
  readonly position: SourcePosition;
  readonly resource: string;
  readonly description: string;
  readonly variables: readonly VariableDefinition[];
  readonly derivedRoles: readonly DerivedRoleDefinition[];
  readonly rules: readonly RuleDefinition[];
  /** Usage limits (rates and quotas, docs/policies.md#limits-and-quotas); absent when none. */
  readonly limits?: readonly LimitDefinition[];
}


export interface LimitDefinition extends Named {
  readonly actions: readonly { readonly pattern: string; readonly position: SourcePosition }[];
  readonly roles: readonly string[] | undefined;
  readonly when: SourceExpression | undefined;
  /** One or more parts, joined into the counter's key. */
  readonly key: readonly SourceExpression[];
  readonly measure: LimitMeasure;
  /** Undefined: each request costs 1. */
  readonly cost: SourceExpression | undefined;
  readonly mode: 'enforce' | 'shadow';
  readonly scope: 'instance' | 'cluster';
}

/** A file as read from disk (or anywhere else): the compiler never touches the file system. */
export interface PolicySourceFile {
  /** Path relative to the policy root, with forward slashes; used in errors and decisions. */
  readonly path: string;
  readonly text: string;
}
