/**
 * The load-time half of the cost bound: the worst-case cost of every condition, variable and
 * derived role, computed from the largest request the limits allow (cel-go's static cost estimate
 * with size hints, where Verdict's hints are its request limits). A condition whose worst case is
 * over `limits.maxConditionCost` is rejected with CEL_COST at its position, naming the expensive
 * part and how to fix it. The formulas are the runtime's (src/cel/cost-model.ts).
 *
 * Loops: a comprehension over a list of n elements costs n times its step; when the step's cost
 * grows with the element (a regex over each string, a deep comparison of each item), the total is
 * bounded by what the whole list can hold, not n times the largest element, so a realistic
 * `list.all(s, s.matches(re))` is not priced as if every element were the longest string allowed.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import { asNode, callOperands, dispatchesAtRunTime, evaluated, type CelNode, type ComprehensionArgs } from '../cel/ast.js';
import {
  addCostBound,
  callCostBound,
  concatSize,
  COST,
  elemOf,
  equalsCostBound,
  inCostBound,
  joinSize,
  keyOf,
  listSize,
  orderCostBound,
  SCALAR,
  scaleSize,
  stringSize,
  type Size,
} from '../cel/cost-model.js';
import { referencedVariables } from '../cel/environment.js';
import type { CostLimits, RequestLimits } from '../engine/limits.js';
import type { Environment } from '@marcbachmann/cel-js';
import { DEFAULT_COST_LIMITS, DEFAULT_REQUEST_LIMITS } from '../engine/limits.js';
import type { ResourcePolicyDocument, SourceExpression } from './document.js';
import { checkExpression, type CheckedExpression } from './expression.js';
import type { PolicyIssue } from './issues.js';

export type CostEstimateLimits = RequestLimits & Pick<CostLimits, 'maxConditionCost'>;

export const DEFAULT_COST_ESTIMATE_LIMITS: CostEstimateLimits = { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: DEFAULT_COST_LIMITS.maxConditionCost };

/** A size with the setting that bounds its number of elements, for messages. */
type Sized = Size & { readonly why?: string };

interface Estimate {
  readonly cost: number;
  readonly size: Sized;
}

/** The most expensive loop or operation found, for the CEL_COST message. */
export interface CostHotspot {
  readonly text: string;
  /** Offset of the part in the expression text. */
  readonly start: number;
  readonly cost: number;
  /** For a comprehension: its most iterations, what bounds them, and the cost of each. */
  readonly iterations?: number;
  readonly bound?: string;
  readonly perIteration?: number;
  /** The comprehension inside this one's step, if any. */
  readonly nested?: string;
}

export interface ExpressionCost {
  /** Worst case of this expression alone (a `variables.X` read costs one node here). */
  readonly own: number;
  readonly size: Size;
  readonly hotspot: CostHotspot | undefined;
}

/** Past this depth of nested comprehensions the step is costed once, at full size (no amortisation). */
const AMORTISE_DEPTH = 4;

/** Sizes of the request, as the limits allow them. */
export function requestSizes(limits: RequestLimits) {
  const str = Math.min(limits.maxStringBytes, limits.maxAttributeBytes);
  const key = stringSize(str);
  const value: { -readonly [K in keyof Sized]: Sized[K] } = {
    str,
    count: limits.maxAttributeItems,
    items: limits.maxAttributeItems,
    bytes: limits.maxAttributeBytes,
    key,
    why: 'limits.maxAttributeItems',
  };
  value.elem = value as Size; // an item of an attribute is bounded like the attribute
  const attributes: Sized = {
    str: 0,
    count: limits.maxAttributes,
    items: limits.maxAttributes * (limits.maxAttributeItems + 1),
    bytes: limits.maxAttributes * limits.maxAttributeBytes,
    elem: value as Size,
    key,
    why: 'limits.maxAttributes',
  };
  const id = stringSize(limits.maxIdentifierLength);
  const roles: Sized = { ...listSize(limits.maxRoles, id), why: 'limits.maxRoles' };
  return { value: value as Sized, attributes, id, roles };
}

const requestSizesByLimits = new WeakMap<CostEstimateLimits, ReturnType<typeof requestSizes>>();

export class CostEstimator {
  private readonly sizes: ReturnType<typeof requestSizes>;
  private hot: CostHotspot | undefined;

  constructor(
    readonly limits: CostEstimateLimits,
    /** Sizes of the policy's variables, by name. */
    private readonly variables: ReadonlyMap<string, Size> = new Map(),
    private readonly source = '',
  ) {
    let sizes = requestSizesByLimits.get(limits);
    if (!sizes) requestSizesByLimits.set(limits, (sizes = requestSizes(limits)));
    this.sizes = sizes;
  }

  /** The worst case of an expression, and what in it costs most. */
  estimate(ast: ASTNode): ExpressionCost {
    this.hot = undefined;
    const e = this.est(asNode(ast), new Map(), 0, true);
    return { own: e.cost, size: e.size, hotspot: this.hot };
  }

  private text(node: CelNode): string {
    return this.source.slice(node.start, node.end).replace(/\s+/g, ' ');
  }

  private spot(node: CelNode, cost: number, extra: Omit<CostHotspot, 'text' | 'cost' | 'start'> = {}): void {
    if (!this.hot || cost > this.hot.cost) this.hot = { text: this.text(node), start: node.start, cost, ...extra };
  }

  private root(name: string): Sized {
    switch (name) {
      case 'action':
        return this.sizes.id;
      case 'context':
        return this.sizes.attributes;
      default:
        return SCALAR; // subject, resource, caller, variables: their fields are read by type; now
    }
  }

  private field(target: CelNode, name: string, targetSize: Sized): Sized {
    const type = target.checkedType?.name ?? 'dyn';
    if (type === 'verdict.Subject' || type === 'verdict.Resource' || type === 'verdict.Caller') {
      if (name === 'attributes') return this.sizes.attributes;
      if (name === 'roles') return this.sizes.roles;
      return this.sizes.id;
    }
    if (type.startsWith('verdict.Variables')) return this.variables.get(name) ?? SCALAR;
    return elemOf(targetSize);
  }

  private est(root: CelNode, scope: ReadonlyMap<string, Sized>, depth: number, record: boolean): Estimate {
    const node = evaluated(root);
    const macro = node.meta.macro;
    if (macro) {
      if (macro.macroHasProps) {
        const base = this.est(macro.macroHasProps[macro.macroHasProps.length - 1]!, scope, depth, record);
        return { cost: base.cost + COST.node * (macro.macroHasProps.length - 1), size: SCALAR };
      }
      if (macro.val && macro.exp && macro.var) {
        const val = this.est(macro.val, scope, depth, record);
        const inner = new Map(scope).set(macro.var, val.size);
        const exp = this.est(macro.exp, inner, depth, record);
        return { cost: COST.node + val.cost + exp.cost, size: exp.size };
      }
      return { cost: COST.node, size: SCALAR };
    }
    const args = node.args;
    switch (node.op) {
      case 'value': {
        const v = args;
        if (typeof v === 'string') return { cost: COST.node, size: stringSize(v.length) };
        if (v instanceof Uint8Array) return { cost: COST.node, size: stringSize(v.length) };
        return { cost: COST.node, size: SCALAR };
      }
      case 'id': {
        const name = args as string;
        return { cost: COST.node, size: scope.get(name) ?? this.root(name) };
      }
      case '.':
      case '.?': {
        const [target, name] = args as [CelNode, string];
        const t = this.est(target, scope, depth, record);
        return { cost: COST.node + t.cost, size: this.field(evaluated(target), name, t.size) };
      }
      case '[]':
      case '[?]': {
        const [target, index] = args as [CelNode, CelNode];
        const t = this.est(target, scope, depth, record);
        const i = this.est(index, scope, depth, record);
        return { cost: COST.node + t.cost + i.cost, size: elemOf(t.size) };
      }
      case 'comprehension':
        return this.comprehension(node, scope, depth, record);
      case 'accuValue':
      case 'accuInc':
        return { cost: COST.node, size: SCALAR };
      case 'accuPush': {
        const item = this.est(args as CelNode, scope, depth, record);
        return { cost: COST.node + COST.push + item.cost, size: item.size };
      }
      case '?:': {
        const [c, l, r] = (args as CelNode[]).map((n) => this.est(n, scope, depth, record)) as [Estimate, Estimate, Estimate];
        return { cost: COST.node + c.cost + Math.max(l.cost, r.cost), size: joinSize(l.size, r.size) };
      }
      case '&&':
      case '||': {
        const [l, r] = (args as CelNode[]).map((n) => this.est(n, scope, depth, record)) as [Estimate, Estimate];
        return { cost: COST.node + l.cost + r.cost, size: SCALAR };
      }
      case '!_':
      case '-_': {
        const a = this.est(args as CelNode, scope, depth, record);
        return { cost: COST.node + a.cost, size: SCALAR };
      }
      case 'list': {
        let cost = COST.node;
        let size: Sized = { str: 0, count: 0, items: 0, bytes: 0, elem: SCALAR };
        for (const item of args as CelNode[]) {
          const e = this.est(item, scope, depth, record);
          cost += e.cost;
          size = { str: 0, count: size.count + 1, items: size.items + 1 + e.size.items, bytes: size.bytes + e.size.bytes, elem: joinSize(size.elem!, e.size) };
        }
        return { cost, size: { ...size, why: 'its literal' } };
      }
      case 'map': {
        let cost = COST.node;
        let size: Sized = { str: 0, count: 0, items: 0, bytes: 0, elem: SCALAR, key: SCALAR };
        for (const [k, v] of args as [CelNode, CelNode][]) {
          const ke = this.est(k, scope, depth, record);
          const ve = this.est(v, scope, depth, record);
          cost += ke.cost + ve.cost;
          size = {
            str: 0,
            count: size.count + 1,
            items: size.items + 1 + ve.size.items,
            bytes: size.bytes + ke.size.bytes + ve.size.bytes,
            elem: joinSize(size.elem!, ve.size),
            key: joinSize(size.key!, ke.size),
          };
        }
        return { cost, size: { ...size, why: 'its literal' } };
      }
      case 'call':
      case 'rcall': {
        const { name, receiver, args: params } = callOperands(node);
        const operands = [...(receiver ? [receiver] : []), ...params].map((n) => this.est(n, scope, depth, record));
        const call = callCostBound(name, operands.map((o) => o.size));
        const cost = COST.node + (dispatchesAtRunTime(node) ? COST.dynamic : 0) + operands.reduce((n, o) => n + o.cost, 0) + call.cost;
        if (record && call.cost > 0) this.spot(node, call.cost);
        return { cost, size: call.result };
      }
      default: {
        // Binary operators.
        const [left, right] = args as [CelNode, CelNode];
        const l = this.est(left, scope, depth, record);
        const r = this.est(right, scope, depth, record);
        let extra = 0;
        let size: Sized = SCALAR;
        switch (node.op) {
          case 'in':
            extra = right.checkedType?.kind === 'map' ? 0 : inCostBound(l.size, r.size);
            break;
          case '==':
          case '!=':
            extra = equalsCostBound(l.size, r.size);
            break;
          case '<':
          case '<=':
          case '>':
          case '>=':
            extra = orderCostBound(l.size, r.size);
            break;
          case '+':
            extra = addCostBound(l.size, r.size);
            size = concatSize(l.size, r.size);
            break;
        }
        if (record && extra > 0) this.spot(node, extra);
        return { cost: COST.node + (dispatchesAtRunTime(node) ? COST.dynamic : 0) + l.cost + r.cost + extra, size };
      }
    }
  }

  /**
   * n iterations of the step, n bounded by the iterable's size. With the element's size scaled by
   * t (t·e: every dimension of the element bound times t), let c(t) be the step's cost; each actual
   * element x_i fits under m_i·e with Σ m_i ≤ M (what the whole iterable can hold, in elements'
   * worth). For a cost made of concave parts (saturating sums) and convex parts (loops over the
   * element), Σ c(m_i) ≤ n·c(0) + n·(c(M/n) − c(0)) + ⌈M⌉·(c(1) − c(0)), and never more than n·c(1).
   */
  private comprehension(node: CelNode, scope: ReadonlyMap<string, Sized>, depth: number, record: boolean): Estimate {
    const c = node.args as ComprehensionArgs;
    const iterable = this.est(c.iterable, scope, depth, record);
    const init = this.est(c.init, scope, depth, record);
    const coll = iterable.size;
    const n = coll.count;
    const kind = c.iterable.checkedType?.kind;
    const elem: Sized = kind === 'map' ? keyOf(coll) : kind === 'list' ? elemOf(coll) : joinSize(elemOf(coll), keyOf(coll));
    const stepAt = (x: Sized, rec: boolean) => this.est(c.step, new Map(scope).set(c.iterVarName, x), depth + 1, rec);
    const full = stepAt(elem, record);
    const perIteration = COST.iteration + full.cost;
    let loop = n * perIteration;
    if (depth < AMORTISE_DEPTH && n > 0) {
      const zero = stepAt(SCALAR, false).cost;
      const mass = holds(coll, elem);
      const t = Math.min(1, mass / n);
      const mid = t < 1 ? stepAt(scaleSize(elem, t), false).cost : full.cost;
      const amortised = n * (COST.iteration + zero) + n * (mid - zero) + Math.ceil(mass) * (full.cost - zero);
      // Sizes that overflowed make the amortised bound NaN: keep the plain one then.
      if (amortised < loop) loop = amortised;
    }
    const cost = COST.node + iterable.cost + init.cost + loop;
    if (record) {
      this.spot(node, loop, {
        iterations: n,
        bound: coll.why ?? 'the size of what it iterates over',
        perIteration,
        nested: this.hot && this.hot.iterations !== undefined && this.hot.text !== this.text(node) && this.text(node).includes(this.hot.text) ? this.hot.text : undefined,
      });
    }
    // map() and filter() build a list of up to n elements (filter: of the iterated elements).
    let size: Sized = SCALAR;
    if (c.kind !== 'quantifier') {
      const pushed = findPush(c.step);
      const item = pushed && pushed.op === 'id' && pushed.args === c.iterVarName ? elem : full.size;
      size = { ...listSize(n, item), why: coll.why };
    }
    return { cost, size };
  }
}

/** How many elements' worth `coll` holds, counting each dimension of the element bound apart. */
function holds(coll: Size, elem: Size): number {
  let mass = 0;
  const seen = new Set<Size>();
  const visit = (e: Size | undefined): void => {
    if (!e || seen.has(e)) return;
    seen.add(e);
    if (e.str > 0) mass += coll.bytes / e.str;
    if (e.count > 0) mass += coll.items / e.count;
    if (e.items > 0) mass += coll.items / e.items;
    if (e.bytes > 0) mass += coll.bytes / e.bytes;
    visit(e.elem);
    visit(e.key);
  };
  visit(elem);
  return mass;
}

function findPush(step: CelNode): CelNode | undefined {
  const node = evaluated(step);
  if (node.op === 'accuPush') return evaluated(node.args as CelNode);
  if (node.op === '?:') {
    for (const a of node.args as CelNode[]) {
      const found = findPush(a);
      if (found) return found;
    }
  }
  return undefined;
}

/** "1,234,567" */
export function units(n: number): string {
  return Number.isFinite(n) ? Math.ceil(n).toLocaleString('en-US') : 'beyond any number';
}

/** The CEL_COST message: what is expensive and how to fix it. */
export function costMessage(total: number, limit: number, spot: CostHotspot | undefined): string {
  let message = `worst-case cost ${units(total)} is over the limit of ${units(limit)} (limits.maxConditionCost)`;
  if (spot?.iterations !== undefined) {
    message += `: "${spot.text}" runs its step up to ${units(spot.iterations)} times (${spot.bound}), at up to ${units(spot.perIteration ?? 0)} each`;
    if (spot.nested) message += `, and that step runs the loop "${spot.nested}"; loops nested over request lists multiply`;
    message +=
      '. Test membership with `in` rather than a nested loop (e.g. `a.exists(x, x in b)`), move work out of the loop into a variable, or lower the request limits that bound the list';
  } else if (spot) {
    message += `: "${spot.text}" alone may cost ${units(spot.cost)} (its operands can be as large as the request limits allow). Work on smaller values, or lower the request limits`;
  }
  return message;
}

/** One expression of a policy to cost: where it is, how to name it, and its checked form. */
export interface CostedExpression {
  readonly where: string;
  readonly source: SourceExpression;
  readonly checked: CheckedExpression;
}

/**
 * Costs every expression of one policy document and reports those over the limit. Variables are
 * costed in dependency order (their sizes feed the expressions that read them); a condition's
 * worst case includes each variable it reads, directly or not, once (variables are evaluated at
 * most once per request). A variable over the limit is reported at the variable only.
 */
export function checkPolicyCosts(
  variables: ReadonlyMap<string, CostedExpression>,
  conditions: readonly CostedExpression[],
  limits: CostEstimateLimits,
  issues: PolicyIssue[],
): void {
  const sizes = new Map<string, Size>();
  const own = new Map<string, number>();
  const deps = new Map<string, string[]>();
  const over = new Set<string>();
  const closure = (names: readonly string[]): Set<string> => {
    const out = new Set<string>();
    const stack = [...names];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (out.has(n) || !variables.has(n)) continue;
      out.add(n);
      stack.push(...(deps.get(n) ?? []));
    }
    return out;
  };
  const report = (e: CostedExpression, total: number, spot: CostHotspot | undefined, via: readonly string[]) => {
    let message = costMessage(total, limits.maxConditionCost, spot);
    if (via.length > 0) {
      const costly = [...via].sort((a, b) => (own.get(b) ?? 0) - (own.get(a) ?? 0));
      const more = costly.length > 3 ? ` and ${costly.length - 3} more` : '';
      message += `. It reads ${costly.slice(0, 3).map((v) => `variables.${v} (${units(own.get(v) ?? 0)})`).join(', ')}${more}`;
    }
    const at = spot ? e.source.positionAt(spot.start) : e.source.position;
    issues.push({ ...at, code: 'CEL_COST', message: `${e.where}: ${message}` });
  };

  // What an estimate depends on besides its own expression: the limits and the variables it can read.
  let context = `${idOf(limits)}|`;
  for (const [name, e] of variables) context += `${name}=${idOf(e.checked)},`;

  // Variables in dependency order (cycles were reported by the variables compiler).
  for (const [name, e] of variables) deps.set(name, [...new Set(referencedVariables(e.checked.ast).map((r) => r.name))]);
  const state = new Map<string, 'visiting' | 'done'>();
  const order: string[] = [];
  const visit = (name: string): void => {
    if (state.get(name) || !variables.has(name)) return;
    state.set(name, 'visiting');
    for (const d of deps.get(name) ?? []) visit(d);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of variables.keys()) visit(name);

  for (const name of order) {
    const e = variables.get(name)!;
    const estimate = estimateOnce(e, limits, sizes, context);
    sizes.set(name, estimate.size);
    own.set(name, estimate.own);
    const via = [...closure(deps.get(name) ?? [])];
    const total = estimate.own + via.reduce((n, v) => n + (own.get(v) ?? 0), 0);
    // `!(x <= limit)`: an estimate that overflowed to Infinity or NaN is over the limit too.
    if (!(total <= limits.maxConditionCost) && !via.some((v) => over.has(v))) {
      over.add(name);
      report(e, total, estimate.hotspot, via);
    } else if (via.some((v) => over.has(v))) over.add(name);
  }
  for (const e of conditions) {
    const estimate = estimateOnce(e, limits, sizes, context);
    const via = [...closure(referencedVariables(e.checked.ast).map((r) => r.name))];
    if (via.some((v) => over.has(v))) continue;
    const total = estimate.own + via.reduce((n, v) => n + (own.get(v) ?? 0), 0);
    if (!(total <= limits.maxConditionCost)) report(e, total, estimate.hotspot, via);
  }
}

/**
 * Estimates by compiled expression and context. Compiled expressions are shared per environment and
 * text, and sets repeat the same conditions and variables on many types: each is estimated once per
 * context (the limits, and the compiled expressions of the variables it can read, which fix their
 * sizes), not once per type. Costing was a third of compiling a 1,000-type set.
 */
const estimates = new WeakMap<CheckedExpression, Map<string, ExpressionCost>>();
const MAX_CONTEXTS = 64;
const ids = new WeakMap<object, number>();
let nextId = 1;

function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

function estimateOnce(e: CostedExpression, limits: CostEstimateLimits, sizes: ReadonlyMap<string, Size>, context: string): ExpressionCost {
  let byContext = estimates.get(e.checked);
  const hit = byContext?.get(context);
  if (hit) return hit;
  const estimate = new CostEstimator(limits, sizes, e.source.text).estimate(e.checked.ast);
  if (!byContext) estimates.set(e.checked, (byContext = new Map()));
  if (byContext.size < MAX_CONTEXTS) byContext.set(context, estimate);
  return estimate;
}

/**
 * The compiler's entry point: costs a document whose expressions have been checked in `env`
 * (their checked forms are cached, so this re-reads them; those that failed are skipped, already
 * reported).
 */
export function checkDocumentCosts(
  doc: ResourcePolicyDocument,
  env: Environment,
  variables: ReadonlyMap<string, CheckedExpression>,
  limits: CostEstimateLimits,
  issues: PolicyIssue[],
): void {
  const scratch: PolicyIssue[] = [];
  const vars = new Map<string, CostedExpression>();
  for (const def of doc.variables) {
    const checked = variables.get(def.name);
    if (checked) vars.set(def.name, { where: `variables.${def.name}`, source: def.expression, checked });
  }
  if (vars.size !== doc.variables.length) return; // the variables did not compile: reported already
  const conditions: CostedExpression[] = [];
  for (const def of doc.derivedRoles) {
    const checked = checkExpression(env, def.when, '', scratch, true);
    if (checked) conditions.push({ where: `derived role "${def.name}"`, source: def.when, checked });
  }
  for (const def of doc.rules) {
    const checked = def.when && checkExpression(env, def.when, '', scratch, true);
    if (checked && def.when) conditions.push({ where: `rule "${def.name}"`, source: def.when, checked });
  }
  checkPolicyCosts(vars, conditions, limits, issues);
}
