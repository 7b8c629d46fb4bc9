/**
 * Prepares a checked CEL expression for metered evaluation, once, at load:
 *
 *  - each comprehension (exists, all, exists_one, map, filter) charges, before it iterates, its
 *    actual number of iterations times the fixed cost of one iteration, so nested loops over
 *    request lists are stopped before they run, not after;
 *  - each operation whose work depends on its operands (`in`, `==` on strings, lists and maps,
 *    `+`, string functions, ...) charges what its actual operands cost (cost-model.ts);
 *  - `matches()` runs a pattern compiled once with re2js (linear time);
 *  - the rest of the expression costs a fixed number of units, which the returned program
 *    charges when it starts.
 *
 * Nodes whose static types make them cheap (numbers, booleans, timestamps) are left alone, so
 * ordinary conditions pay one charge per run plus one per list or string operation.
 */
import { asNode, callOperands, children, dispatchesAtRunTime, evaluated, type CelNode, type ComprehensionArgs } from './ast.js';
import { addCost, callCostOf, COST, CONSTANT_FUNCTIONS, equalsCost, inCost, orderCost, SIZED_FUNCTIONS } from './cost-model.js';
import { charge, unitsLeft } from './meter.js';
import { compilePattern } from './regex.js';
import type { ASTNode } from '@marcbachmann/cel-js';

type Handle = (...args: unknown[]) => unknown;

const CHEAP_TYPES = new Set(['int', 'uint', 'double', 'bool', 'null', 'type', 'google.protobuf.Timestamp', 'google.protobuf.Duration']);

function cheap(node: CelNode): boolean {
  const t = node.checkedType;
  return t !== undefined && CHEAP_TYPES.has(t.name);
}

const instrumented = new WeakSet<object>();

/** Instruments `ast` (once; shared ASTs are instrumented by the first caller) and returns its fixed cost. */
export function instrumentExpression(ast: ASTNode): number {
  return scopeCost(asNode(ast));
}

/** Fixed cost of evaluating `node` once, outside the iterations of the comprehensions inside it. */
function scopeCost(root: CelNode): number {
  const node = evaluated(root);
  let cost = COST.node + (node.op === 'accuPush' ? COST.push : 0) + (dispatchesAtRunTime(node) ? COST.dynamic : 0);
  const macro = node.meta.macro;
  if (macro?.macroHasProps) cost += macro.macroHasProps.length - 1;
  for (const c of children(node)) {
    const inner = scopeCost(c.node);
    if (!c.perIteration) cost += inner;
    else wrapComprehension(node, COST.iteration + inner);
  }
  return cost + wrapSized(node);
}

/** A literal whose comparison with anything costs under one unit (a short string, a number, ...). */
function smallLiteral(node: CelNode): boolean {
  const n = evaluated(node);
  return n.op === 'value' && (typeof n.args !== 'string' || n.args.length < COST.compareChars);
}

/** A literal list of small literals: `x in [...]` costs at most its length. */
function smallLiteralList(node: CelNode): number | undefined {
  const n = evaluated(node);
  if (n.op !== 'list') return undefined;
  const items = n.args as CelNode[];
  return items.every(smallLiteral) ? items.length * COST.element : undefined;
}

function wrapComprehension(node: CelNode, perIteration: number): void {
  if (instrumented.has(node) || !node.handle) return;
  instrumented.add(node);
  const run = node.handle as Handle;
  node.handle = ((items: unknown, args: ComprehensionArgs, ev: unknown, ctx: unknown) => {
    charge(iterations(items) * perIteration);
    return run(items, args, ev, ctx);
  }) as Handle;
}

/** What cel-js iterates: list elements or map keys. */
function iterations(items: unknown): number {
  if (Array.isArray(items)) return items.length;
  if (items instanceof Map || items instanceof Set) return items.size;
  if (items !== null && typeof items === 'object') {
    let n = 0;
    for (const _ in items) n++;
    return n;
  }
  return 0;
}

/**
 * Wraps the node's handle to charge what its operands cost, and returns 0; or, when that cost has
 * a small bound known now (a literal operand), returns the bound to add to the fixed cost instead,
 * so common conditions (`status == "published"`, `t in ["a", "b"]`) pay no wrapper at all.
 */
function wrapSized(node: CelNode): number {
  if (instrumented.has(node) || !node.handle) return 0;
  const run = node.handle as Handle;
  let wrapped: Handle | undefined;
  switch (node.op) {
    case 'in': {
      const [, right] = node.args as [CelNode, CelNode];
      if (right.checkedType?.kind === 'map') return 0;
      const bound = smallLiteralList(right);
      if (bound !== undefined) return bound;
      wrapped = (l, r, ast, ev) => {
        charge(inCost(l, r, unitsLeft()));
        // A string equals only the identical string (cel-js compares other element types with
        // it as not equal, without an error), so a strict-equality scan answers as cel-js's
        // per-element overload dispatch does, about 4x faster.
        if (typeof l === 'string' && Array.isArray(r)) return r.includes(l);
        return run(l, r, ast, ev);
      };
      break;
    }
    case '==':
    case '!=': {
      const [left, right] = node.args as [CelNode, CelNode];
      if (cheap(left) || cheap(right)) return 0;
      if (smallLiteral(left) || smallLiteral(right)) return 1;
      wrapped = (l, r, ast, ev) => {
        const c = equalsCost(l, r, unitsLeft());
        if (c > 0) charge(c);
        return run(l, r, ast, ev);
      };
      break;
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [left, right] = node.args as [CelNode, CelNode];
      if (cheap(left) || cheap(right)) return 0;
      if (smallLiteral(left) || smallLiteral(right)) return 1;
      wrapped = (l, r, ast, ev) => {
        const c = orderCost(l, r);
        if (c > 0) charge(c);
        return run(l, r, ast, ev);
      };
      break;
    }
    case '+': {
      if (cheap(node)) return 0;
      wrapped = (l, r, ast, ev) => {
        charge(addCost(l, r));
        return run(l, r, ast, ev);
      };
      break;
    }
    case 'rcall':
    case 'call': {
      const { name, args } = callOperands(node);
      if (name === 'matches' && node.op === 'rcall') {
        wrapped = matcher(args[0]!, run);
        break;
      }
      if (CONSTANT_FUNCTIONS.has(name)) return 0;
      // Unknown functions are costed by the size of their operands (callCost's default).
      const costOf = callCostOf(SIZED_FUNCTIONS.has(name) ? name : '');
      // rcall handles take (values, ev, ast), call handles (values, ast, ev); the values come first.
      wrapped = (values, x, y) => {
        charge(costOf(values as unknown[]));
        return run(values, x, y);
      };
      break;
    }
    default:
      return 0;
  }
  instrumented.add(node);
  node.handle = wrapped as CelNode['handle'];
  return 0;
}

/**
 * matches() with a literal pattern (the linter requires one): compiled once, run with re2js. The
 * receiver may be dyn; anything but a string is the same error cel-js gives.
 */
function matcher(patternNode: CelNode, run: Handle): Handle {
  if (patternNode.op !== 'value' || typeof patternNode.args !== 'string') return run;
  const pattern = compilePattern(patternNode.args);
  return (values) => {
    const input = (values as unknown[])[0];
    if (typeof input !== 'string') {
      throw new Error(`found no matching overload for '${input === null ? 'null' : Array.isArray(input) ? 'list' : typeof input}.matches(string)'`);
    }
    charge(input.length * COST.regexChar);
    return pattern.test(input);
  };
}
