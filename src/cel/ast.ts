/**
 * The parts of cel-js's checked AST that Verdict reads and patches (cel-js 8.0.0; see
 * test/engine/cel-internals.test.ts, which pins the shapes this module relies on).
 *
 * After `check()`, every node carries `checkedType`, and operator/call nodes carry `handle`, the
 * function the evaluator calls with the evaluated operands. Macros are expanded at parse time:
 * `l.exists(x, p)` is an `rcall` node whose `meta.alternate` is a `comprehension` node; `has()` and
 * `cel.bind()` keep a `meta.macro` object with their own evaluation. Verdict wraps `handle` on
 * selected nodes (cost accounting, compiled regular expressions); it never changes evaluation order
 * or results.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** A node as the checker leaves it; only the fields Verdict uses are typed. */
export interface CelNode {
  readonly op: string;
  readonly args: unknown;
  readonly start: number;
  readonly end: number;
  readonly meta: { readonly alternate?: CelNode; readonly macro?: CelMacro };
  readonly checkedType?: CelType;
  handle?: (...args: never[]) => unknown;
}

export interface CelType {
  readonly name: string;
  readonly kind: string;
}

export interface CelMacro {
  readonly args?: readonly CelNode[];
  readonly macroHasProps?: readonly CelNode[];
  /** cel.bind(var, val, exp) */
  readonly var?: string;
  readonly val?: CelNode;
  readonly exp?: CelNode;
}

export interface ComprehensionArgs {
  readonly kind?: 'quantifier';
  readonly iterable: CelNode;
  readonly iterVarName: string;
  readonly init: CelNode;
  readonly step: CelNode;
}

export function asNode(ast: ASTNode): CelNode {
  return ast as unknown as CelNode;
}

export function isNode(value: unknown): value is CelNode {
  return value !== null && typeof value === 'object' && 'op' in value && 'args' in value && 'meta' in value;
}

/** The node that is actually evaluated for `node`: a macro's expansion, or the node itself. */
export function evaluated(node: CelNode): CelNode {
  return node.meta.alternate ?? node;
}

/**
 * The direct sub-expressions of an evaluated node, each with whether it runs once per evaluation
 * of the node (`false`) or once per iteration of a comprehension (`true`: the step).
 */
export function children(node: CelNode): { node: CelNode; perIteration: boolean }[] {
  const out: { node: CelNode; perIteration: boolean }[] = [];
  const add = (n: unknown, perIteration = false) => {
    if (isNode(n)) out.push({ node: n, perIteration });
  };
  const macro = node.meta.macro;
  if (macro) {
    if (macro.val) add(macro.val);
    if (macro.exp) add(macro.exp);
    // has(): the field chain, read without evaluating the leaves as expressions of their own
    if (macro.macroHasProps) add(macro.macroHasProps[macro.macroHasProps.length - 1]);
    return out;
  }
  if (node.op === 'comprehension') {
    const c = node.args as ComprehensionArgs;
    add(c.iterable);
    add(c.init);
    add(c.step, true);
    return out;
  }
  const args = node.args;
  if (Array.isArray(args)) {
    for (const a of args) {
      if (Array.isArray(a)) for (const b of a) Array.isArray(b) ? b.forEach((c) => add(c)) : add(b);
      else add(a);
    }
  } else add(args);
  return out;
}

/** Operands of call/rcall nodes: [receiver?, ...arguments]. */
export function callOperands(node: CelNode): { name: string; receiver: CelNode | undefined; args: CelNode[] } {
  if (node.op === 'rcall') {
    const [name, receiver, args] = node.args as [string, CelNode, CelNode[]];
    return { name, receiver, args };
  }
  const [name, args] = node.args as [string, CelNode[]];
  return { name, receiver: undefined, args };
}

/** Visits every evaluated node once (macro expansions instead of the macro call). */
export function walk(root: CelNode, visit: (node: CelNode) => void): void {
  const stack: CelNode[] = [evaluated(root)];
  const seen = new Set<CelNode>();
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    visit(node);
    for (const c of children(node)) stack.push(evaluated(c.node));
  }
}

const BINARY = new Set(['==', '!=', '<', '<=', '>', '>=', 'in', '+', '-', '*', '/', '%']);

/** True when cel-js picks this operator's or call's overload at run time (an operand is dyn). */
export function dispatchesAtRunTime(node: CelNode): boolean {
  let operands: CelNode[];
  if (BINARY.has(node.op)) operands = node.args as CelNode[];
  else if (node.op === 'rcall' || node.op === 'call') {
    if (node.meta.macro) return false;
    const c = callOperands(node);
    operands = c.receiver ? [c.receiver, ...c.args] : c.args;
  } else return false;
  return operands.some((o) => evaluated(o).checkedType?.kind === 'dyn');
}
