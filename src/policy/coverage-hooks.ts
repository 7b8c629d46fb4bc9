import type { ASTNode, Environment } from '@marcbachmann/cel-js';
import type { SourceExpression } from './document.js';
import type { CelProgram } from './expression.js';
import type { SourcePosition } from './issues.js';

/**
 * Hooks for `verdict test --coverage` (src/testing/coverage.ts). Only a compiler given them
 * (CompileOptions.coverage) calls them, at compile time; a set compiled without them (the serving
 * path, `verdict check`, `verdict test` without --coverage) has no trace of coverage at all.
 */
export interface CoverageSite {
  readonly kind: 'rule' | 'derivedRole' | 'variable';
  /** Policy id (file path, plus "#N" for the Nth document of a file). */
  readonly policy: string;
  readonly file: string;
  readonly name: string;
  readonly position: SourcePosition;
}

export interface CoverageExpression {
  readonly source: SourceExpression;
  readonly ast: ASTNode;
  /** The environment the expression's parts can be compiled in (the policy's final typed one). */
  readonly env: () => Environment;
}

export interface CoverageHooks {
  /** Every rule, derived role and variable of every document, once. */
  site(site: CoverageSite): void;
  /** The program to run instead of `program`: it must return what `program` returns (or throw what it throws). */
  wrap(site: CoverageSite, expression: CoverageExpression, program: CelProgram): CelProgram;
}
