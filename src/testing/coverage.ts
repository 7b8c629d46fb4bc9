import type { Environment } from '@marcbachmann/cel-js';
import type { Decision } from '../engine/decision.js';
import type { CoverageExpression, CoverageHooks, CoverageSite } from '../policy/coverage-hooks.js';
import type { CelProgram } from '../policy/expression.js';

/**
 * Coverage of a policy set by its test suites (`verdict test --coverage`). The set is compiled
 * for the test run with these hooks (CompileOptions.coverage): each condition's program is wrapped
 * so that, after the real program has given its value (which is what the engine uses, unchanged),
 * the condition's top-level `&&`, `||` and `?:` parts are evaluated on the same activation and
 * their outcomes counted. The serving path never compiles with hooks, so it pays nothing.
 *
 * What counts:
 * - a rule is covered when it applied at least once (from the explanation of each test's decision);
 *   the times it was considered and did not apply are shown too;
 * - a derived role, when its condition was seen both true and false;
 * - a variable, when it was seen both true and false (a non-bool variable: evaluated once);
 * - a branch point (each operand of `&&`/`||`, each condition of `?:`) has two outcomes, true and
 *   false; branch coverage counts outcomes seen. Parts inside function calls and macros
 *   (`exists`, `all`, `has`, ...) are not branch points.
 */

/** A `&&`/`||` operand or a `?:` condition. */
export interface BranchRecord {
  readonly line: number;
  readonly column: number;
  readonly text: string;
  trueCount: number;
  falseCount: number;
  errorCount: number;
}

export interface SiteRecord {
  readonly site: CoverageSite;
  /** Condition value counts (rules: of the condition, when it ran). */
  trueCount: number;
  falseCount: number;
  otherCount: number;
  errorCount: number;
  /** Rules only, from decisions: applied / considered and not applied. */
  applied: number;
  notApplied: number;
  readonly branches: BranchRecord[];
}

type Value = unknown;
const ERROR = Symbol('error');

interface BranchNode {
  readonly op: '&&' | '||' | '?:' | '!' | 'leaf';
  readonly children: BranchNode[];
  /** For a branch point (operand of &&/||, condition of ?:), its record. */
  record?: BranchRecord;
  readonly text: string;
  leaf?: CelProgram | null;
}

function key(site: CoverageSite): string {
  return `${site.policy}\u0000${site.kind}\u0000${site.name}`;
}

export class CoverageRecorder implements CoverageHooks {
  readonly sites = new Map<string, SiteRecord>();

  private recordOf(site: CoverageSite): SiteRecord {
    let r = this.sites.get(key(site));
    if (!r) {
      r = { site, trueCount: 0, falseCount: 0, otherCount: 0, errorCount: 0, applied: 0, notApplied: 0, branches: [] };
      this.sites.set(key(site), r);
    }
    return r;
  }

  site(site: CoverageSite): void {
    this.recordOf(site);
  }

  wrap(site: CoverageSite, expression: CoverageExpression, program: CelProgram): CelProgram {
    const record = this.recordOf(site);
    const tree = buildTree(expression.ast as unknown as RawNode, expression, record.branches);
    const hasBranches = record.branches.length > 0;
    return (activation) => {
      let value: unknown;
      try {
        value = program(activation);
      } catch (err) {
        record.errorCount++;
        if (hasBranches) evaluate(tree, activation, expression.env);
        throw err;
      }
      if (value === true) record.trueCount++;
      else if (value === false) record.falseCount++;
      else record.otherCount++;
      if (hasBranches) evaluate(tree, activation, expression.env);
      return value;
    };
  }

  /** Counts what each rule did in a decision made with `explain` (every candidate rule is traced). */
  observe(decision: Decision): void {
    for (const t of decision.explanation ?? []) {
      const r = this.sites.get(`${t.policy}\u0000rule\u0000${t.rule}`);
      if (!r) continue;
      if (t.outcome === 'APPLIED') r.applied++;
      else if (t.outcome === 'ROLE_MISMATCH' || t.outcome === 'CONDITION_FALSE') r.notApplied++;
    }
  }
}

interface RawNode {
  readonly op: string;
  readonly args: unknown;
  readonly range: { readonly start: number; readonly end: number };
}

function buildTree(node: RawNode, expr: CoverageExpression, records: BranchRecord[]): BranchNode {
  const text = expr.source.text.slice(node.range.start, node.range.end);
  const point = (child: RawNode): BranchNode => {
    const built = buildTree(child, expr, records);
    const at = expr.source.positionAt(child.range.start);
    built.record = { line: at.line, column: at.column, text: displayText(expr.source.text, child.range.start, child.range.end), trueCount: 0, falseCount: 0, errorCount: 0 };
    return built;
  };
  if (node.op === '&&' || node.op === '||') {
    const [l, r] = node.args as [RawNode, RawNode];
    // Points in source order: the left operand (and its inner points) first.
    const left = point(l);
    records.push(left.record!);
    const right = point(r);
    records.push(right.record!);
    return { op: node.op, children: [left, right], text };
  }
  if (node.op === '?:') {
    const [c, a, b] = node.args as [RawNode, RawNode, RawNode];
    const cond = point(c);
    records.push(cond.record!);
    return { op: '?:', children: [cond, buildTree(a, expr, records), buildTree(b, expr, records)], text };
  }
  if (node.op === '!_') return { op: '!', children: [buildTree(node.args as RawNode, expr, records)], text };
  return { op: 'leaf', children: [], text };
}

/** The text of a part, for reports: cel-js ranges can stop before a closing parenthesis, which is put back. */
function displayText(source: string, start: number, end: number): string {
  let e = end;
  const open = (t: string) => (t.match(/\(/g)?.length ?? 0) - (t.match(/\)/g)?.length ?? 0);
  while (open(source.slice(start, e)) > 0 && source[e] === ')') e++;
  return source.slice(start, e).replace(/\s+/g, ' ');
}

/** Evaluates the tree as CEL would (errors absorbed by a decisive other side), counting each point. */
function evaluate(node: BranchNode, activation: Record<string, unknown>, env: () => Environment): Value {
  const v = value(node, activation, env);
  const r = node.record;
  if (r) {
    if (v === true) r.trueCount++;
    else if (v === false) r.falseCount++;
    else if (v === ERROR) r.errorCount++;
  }
  return v;
}

function value(node: BranchNode, activation: Record<string, unknown>, env: () => Environment): Value {
  switch (node.op) {
    case '&&': {
      const l = evaluate(node.children[0]!, activation, env);
      if (l === false) return false;
      const r = evaluate(node.children[1]!, activation, env);
      if (r === false) return false;
      return l === true && r === true ? true : ERROR;
    }
    case '||': {
      const l = evaluate(node.children[0]!, activation, env);
      if (l === true) return true;
      const r = evaluate(node.children[1]!, activation, env);
      if (r === true) return true;
      return l === false && r === false ? false : ERROR;
    }
    case '?:': {
      const c = evaluate(node.children[0]!, activation, env);
      if (c === true) return evaluate(node.children[1]!, activation, env);
      if (c === false) return evaluate(node.children[2]!, activation, env);
      return ERROR;
    }
    case '!': {
      const v = evaluate(node.children[0]!, activation, env);
      return v === true ? false : v === false ? true : ERROR;
    }
    default: {
      if (node.leaf === undefined) node.leaf = compileLeaf(node.text, env());
      if (node.leaf === null) return ERROR;
      try {
        return node.leaf(activation);
      } catch {
        return ERROR;
      }
    }
  }
}

/** A part of a condition as its own program, unmetered (coverage runs only in `verdict test`). */
function compileLeaf(text: string, env: Environment): CelProgram | null {
  try {
    const parsed = env.parse(text);
    if (!parsed.check().valid) return null;
    return parsed as unknown as CelProgram;
  } catch {
    return null;
  }
}
