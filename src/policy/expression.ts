import type { ASTNode, Environment } from '@marcbachmann/cel-js';
import { lintExpression, referencedVariables } from '../cel/environment.js';
import { instrumentExpression } from '../cel/instrument.js';
import { charge } from '../cel/meter.js';
import type { SourceExpression } from './document.js';
import type { PolicyIssue, PolicyIssueCode } from './issues.js';

/** A CEL program ready to run against an activation; throws on evaluation errors. */
export type CelProgram = (activation: Record<string, unknown>) => unknown;

export interface CheckedExpression {
  /** The metered program: charges the decision's cost meter as it runs (src/cel/instrument.ts). */
  readonly program: CelProgram;
  readonly ast: ASTNode;
  readonly type: string;
  /** Cost units charged on every run, besides loops and size-dependent operations. */
  readonly fixedCost: number;
}

interface CelErrorShape {
  readonly name?: string;
  readonly summary?: string;
  readonly message?: string;
  readonly range?: { readonly start: number };
}

function celIssue(code: PolicyIssueCode, source: SourceExpression, where: string, err: unknown): PolicyIssue {
  const e = (err ?? {}) as CelErrorShape;
  const text = e.summary ?? (e.message ?? String(err)).split('\n')[0];
  const at = source.positionAt(e.range?.start ?? 0);
  return { ...at, code, message: `${where}: ${text} in ${JSON.stringify(source.text.trim().replace(/\s+/g, ' '))}` };
}

/** Parses the expression and returns its AST, or records a CEL_SYNTAX issue. */
export function parseExpression(env: Environment, source: SourceExpression, where: string, issues: PolicyIssue[]): ReturnType<Environment['parse']> | undefined {
  try {
    return env.parse(source.text);
  } catch (err) {
    issues.push(celIssue('CEL_SYNTAX', source, where, err));
    return undefined;
  }
}

/**
 * Parses, type-checks and lints an expression in `env`. `expectBool` rejects any statically known
 * non-bool type; `dyn` passes here and is checked at evaluation (a non-bool result is an error).
 */
/**
 * Compiled expressions by environment and text. Policy sets repeat conditions (the same ownership
 * or department test on hundreds of resource types): each distinct text is parsed, checked and
 * compiled once per environment and its program shared, which keeps a large set's memory and the
 * working set a check touches small. Environments are per policy-set compilation, so entries go
 * away with the set.
 */
const compiled = new WeakMap<Environment, Map<string, CheckedExpression>>();

export function checkExpression(
  env: Environment,
  source: SourceExpression,
  where: string,
  issues: PolicyIssue[],
  expectBool: boolean,
): CheckedExpression | undefined {
  let byText = compiled.get(env);
  if (!byText) compiled.set(env, (byText = new Map()));
  const hit = byText.get(source.text);
  if (hit) {
    if (expectBool && hit.type !== 'bool' && hit.type !== 'dyn') {
      issues.push({ ...source.position, code: 'CEL_NOT_BOOL', message: `${where}: condition must be a bool, but ${JSON.stringify(source.text)} is ${hit.type}` });
      return undefined;
    }
    return hit;
  }
  const result = checkFresh(env, source, where, issues, expectBool);
  // Only successes are shared: every occurrence of a broken expression reports its own position.
  if (result) byText.set(source.text, result);
  return result;
}

function checkFresh(
  env: Environment,
  source: SourceExpression,
  where: string,
  issues: PolicyIssue[],
  expectBool: boolean,
): CheckedExpression | undefined {
  const parsed = parseExpression(env, source, where, issues);
  if (!parsed) return undefined;
  const result = parsed.check();
  if (!result.valid) {
    issues.push(celIssue('CEL_TYPE', source, where, result.error));
    return undefined;
  }
  const type = result.type ?? 'dyn';
  if (expectBool && type !== 'bool' && type !== 'dyn') {
    issues.push({ ...source.position, code: 'CEL_NOT_BOOL', message: `${where}: condition must be a bool, but ${JSON.stringify(source.text)} is ${type}` });
    return undefined;
  }
  const lint = lintExpression(parsed.ast);
  for (const problem of lint) {
    issues.push({ ...source.positionAt(problem.start), code: 'CEL_UNSAFE', message: `${where}: ${problem.message}` });
  }
  if (lint.length > 0) return undefined;
  const fixedCost = instrumentExpression(parsed.ast);
  const run = parsed as unknown as CelProgram;
  const program: CelProgram = (activation) => {
    charge(fixedCost);
    return run(activation);
  };
  return { program, ast: parsed.ast, type, fixedCost };
}

export { referencedVariables };
