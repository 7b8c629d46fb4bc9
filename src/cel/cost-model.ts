/**
 * Verdict's CEL cost model, after cel-go's: every operation costs units, some in proportion to
 * the sizes of its operands. The same formulas serve twice:
 *
 *  - at load (src/policy/cost.ts), with the largest sizes the request limits allow, to compute a
 *    condition's worst case and reject a policy whose worst case is over `limits.maxConditionCost`;
 *  - at evaluation (src/cel/instrument.ts), with the actual operands, to charge the decision's
 *    meter (`limits.maxDecisionCost`, `limits.maxBatchCost`).
 *
 * One unit is about the work of comparing one list element in `x in list` (about 10 ns on the
 * reference machine; bench/cel/cost.ts measures it). The constants below were set from
 * measurements of cel-js 8.0.0 so that no operation costs much more time per unit than that.
 */
export const COST = {
  /** Any node evaluated: a literal, a field read, an operator. */
  node: 1,
  /** Overhead of one comprehension iteration (binding the variable, running the step). */
  iteration: 8,
  /** Appending one element to the list map() or filter() builds (an allocation). */
  push: 4,
  /** A function call. */
  call: 8,
  /** An operator or call with an operand of static type dyn: cel-js resolves the overload at run time. */
  dynamic: 4,
  /** One list element visited by `in`. */
  element: 1,
  /**
   * One list element visited by `x in list` when x is a string: a strict-equality scan
   * (Array.prototype.includes), about 4x faster than cel-js's per-element overload dispatch.
   */
  stringElement: 0.5,
  /** One nested list item or map entry visited by a deep `==` between lists or maps. */
  deepItem: 3,
  /** String characters compared (==, <, startsWith, `in` against strings of the same length). */
  compareChars: 64,
  /** String characters scanned by contains/indexOf or written into a new string (+, join, lowerAscii, ...). */
  buildChars: 16,
  /** One input character through matches() (re2js; its slow paths run at ~100 ns a character). */
  regexChar: 10,
  /** One character of size(string): cel-js counts code points one by one. */
  codePointChars: 1,
  /** One element of the list split() returns. */
  splitPart: 3,
  /** timestamp(string): Date parsing. */
  timestamp: 60,
  /** duration(string), besides its quadratic scan. */
  duration: 60,
  /** A timestamp accessor with a time zone: cel-js formats the date with ICU, ~165 µs a call. */
  timeZone: 20_000,
  /** inCidr(): address parsing and BigInt arithmetic. */
  cidr: 100,
} as const;

// ---- sizes -------------------------------------------------------------------------------------

/**
 * Upper bounds on a value's size, for the load-time estimate. A value of unknown type (an
 * attribute) may be any of string, list or map, so each dimension is bounded separately.
 */
export interface Size {
  /** Longest it can be as a string, in characters (UTF-8 bytes bound UTF-16 characters). */
  readonly str: number;
  /** Most elements (list) or entries (map). */
  readonly count: number;
  /** Most list items and map entries at every depth. */
  readonly items: number;
  /** Most string characters in total, at every depth, map keys included. */
  readonly bytes: number;
  /** Bound on each element (list) or value (map); absent: like the value itself. */
  readonly elem?: Size;
  /** Bound on each map key. */
  readonly key?: Size;
}

export const SCALAR: Size = Object.freeze({ str: 0, count: 0, items: 0, bytes: 0 });

export function stringSize(chars: number): Size {
  return { str: chars, count: 0, items: 0, bytes: chars };
}

export function elemOf(s: Size): Size {
  return s.elem ?? s;
}

export function keyOf(s: Size): Size {
  return s.key ?? s.elem ?? s;
}

/** The component-wise maximum: a value that is one or the other. */
export function joinSize(a: Size, b: Size, memo = new Map<Size, Map<Size, Size>>()): Size {
  if (a === b) return a;
  const hit = memo.get(a)?.get(b);
  if (hit) return hit;
  const out: { -readonly [K in keyof Size]: Size[K] } = {
    str: Math.max(a.str, b.str),
    count: Math.max(a.count, b.count),
    items: Math.max(a.items, b.items),
    bytes: Math.max(a.bytes, b.bytes),
  };
  let row = memo.get(a);
  if (!row) memo.set(a, (row = new Map()));
  row.set(b, out as Size);
  if (a.elem || b.elem) out.elem = joinSize(elemOf(a), elemOf(b), memo);
  if (a.key || b.key) out.key = joinSize(keyOf(a), keyOf(b), memo);
  return out;
}

/** `a + b` on strings or lists. */
export function concatSize(a: Size, b: Size): Size {
  return {
    str: a.str + b.str,
    count: a.count + b.count,
    items: a.items + b.items,
    bytes: a.bytes + b.bytes,
    elem: joinSize(elemOf(a), elemOf(b)),
  };
}

/** A list of at most `count` elements, each bounded by `elem`. */
export function listSize(count: number, elem: Size): Size {
  return { str: 0, count, items: count * (1 + elem.items), bytes: count * elem.bytes, elem };
}

/** The size scaled by t in [0, 1] (for the amortised bound of a loop, see policy/cost.ts). */
export function scaleSize(s: Size, t: number, memo = new Map<Size, Size>()): Size {
  const hit = memo.get(s);
  if (hit) return hit;
  const out: { -readonly [K in keyof Size]: Size[K] } = { str: s.str * t, count: s.count * t, items: s.items * t, bytes: s.bytes * t };
  // Attribute sizes are self-similar (an element is bounded like the value): keep the cycles.
  memo.set(s, out as Size);
  if (s.elem) out.elem = scaleSize(s.elem, t, memo);
  if (s.key) out.key = scaleSize(s.key, t, memo);
  return out;
}

// ---- static costs (bounds) ----------------------------------------------------------------------

/** `x in coll`: every element compared; strings of equal length and nested lists/maps compared in depth. */
export function inCostBound(x: Size, coll: Size): number {
  const n = coll.count;
  return n * COST.element + Math.min(n * x.str, coll.bytes) / COST.compareChars + Math.min(n * x.items, coll.items) * COST.deepItem;
}

/** `a == b`, `a != b`. */
export function equalsCostBound(a: Size, b: Size): number {
  return Math.min(a.str, b.str) / COST.compareChars + Math.min(a.items, b.items) * COST.deepItem;
}

/** `a < b` and friends (strings compare character by character). */
export function orderCostBound(a: Size, b: Size): number {
  return Math.min(a.str, b.str) / COST.compareChars;
}

/** `a + b`: a new string, or a copied list. */
export function addCostBound(a: Size, b: Size): number {
  return (a.str + b.str) / COST.buildChars + a.count + b.count;
}

/**
 * A function call's size-dependent cost and result size. `args` holds the receiver first for
 * methods. Unknown functions are costed as if they read and copied every argument.
 */
export function callCostBound(name: string, args: readonly Size[]): { cost: number; result: Size } {
  const [a = SCALAR, b = SCALAR] = args;
  switch (name) {
    case 'contains':
    case 'indexOf':
    case 'lastIndexOf':
      return { cost: COST.call + (a.str + b.str) / COST.buildChars, result: SCALAR };
    case 'startsWith':
    case 'endsWith':
      return { cost: COST.call + Math.min(a.str, b.str) / COST.compareChars, result: SCALAR };
    case 'matches':
      return { cost: COST.call + a.str * COST.regexChar, result: SCALAR };
    case 'lowerAscii':
    case 'upperAscii':
      // Case mapping may lengthen a string (one UTF-16 unit can become three).
      return { cost: COST.call + a.str / COST.buildChars, result: stringSize(a.str * 3) };
    case 'trim':
    case 'substring':
      return { cost: COST.call + a.str / COST.buildChars, result: stringSize(a.str) };
    case 'split': {
      const parts = a.str + 1;
      return { cost: COST.call + a.str / COST.buildChars + parts * COST.splitPart, result: listSize(parts, stringSize(a.str)) };
    }
    case 'join': {
      const sep = b.str;
      const chars = a.bytes + a.count * sep;
      return { cost: COST.call + chars / COST.buildChars + a.count, result: stringSize(chars) };
    }
    case 'size':
      return { cost: COST.call + a.str / COST.codePointChars + a.count, result: SCALAR };
    case 'int':
    case 'uint':
    case 'double':
    case 'bool':
      return { cost: COST.call + a.str / COST.compareChars, result: SCALAR };
    case 'string':
      return { cost: COST.call + a.str / COST.buildChars, result: stringSize(Math.max(a.str, 32)) };
    case 'bytes':
      return { cost: COST.call + a.str / COST.buildChars, result: stringSize(a.str * 3) };
    case 'timestamp':
      return { cost: COST.call + COST.timestamp, result: SCALAR };
    case 'duration':
      // cel-js scans the rest of the string once per unit it parses: quadratic in the length.
      return { cost: COST.call + COST.duration + (a.str * a.str) / 64, result: SCALAR };
    case 'getDate':
    case 'getDayOfMonth':
    case 'getDayOfWeek':
    case 'getDayOfYear':
    case 'getFullYear':
    case 'getHours':
    case 'getMilliseconds':
    case 'getMinutes':
    case 'getMonth':
    case 'getSeconds':
      return { cost: COST.call + (args.length > 1 ? COST.timeZone : 0), result: SCALAR };
    case 'inCidr':
      return { cost: COST.call + COST.cidr + (a.str + b.str) / COST.buildChars, result: SCALAR };
    case 'dyn':
      return { cost: 0, result: a };
    case 'type':
      return { cost: 0, result: SCALAR };
    case 'hex':
    case 'base64':
    case 'json':
      return { cost: COST.call + a.str / COST.buildChars, result: name === 'json' ? attributeLikeSize(a.str) : stringSize(a.str * 2 + 4) };
    case 'at':
      return { cost: COST.call, result: SCALAR };
    default: {
      let chars = 0;
      let count = 0;
      for (const s of args) {
        chars += s.str + s.bytes;
        count += s.items;
      }
      return { cost: COST.call + chars / COST.buildChars + count, result: { str: chars, count, items: count, bytes: chars } };
    }
  }
}

/** A value parsed from `chars` characters of JSON: any shape that fits. */
export function attributeLikeSize(chars: number): Size {
  const s: { -readonly [K in keyof Size]: Size[K] } = { str: chars, count: chars, items: chars, bytes: chars };
  s.elem = s as Size;
  return s;
}

// ---- runtime costs (actual operands) -----------------------------------------------------------

/**
 * List items and map entries at every depth, counted up to a little past `cap` (a bound is all that
 * is needed; the count stops growing once it is over).
 */
export function itemsOf(value: unknown, cap = Infinity): number {
  if (value === null || typeof value !== 'object') return 0;
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= cap) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      count += v.length;
      for (let i = 0; i < v.length; i++) if (v[i] !== null && typeof v[i] === 'object') stack.push(v[i]);
    } else if (v !== null && typeof v === 'object' && isPlainMap(v)) {
      for (const k in v) {
        count++;
        const item = (v as Record<string, unknown>)[k];
        if (item !== null && typeof item === 'object') stack.push(item);
      }
    }
  }
  return count;
}

function isPlainMap(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function countOf(v: unknown): number {
  if (Array.isArray(v)) return v.length;
  if (v !== null && typeof v === 'object' && isPlainMap(v)) {
    let n = 0;
    for (const _ in v) n++;
    return n;
  }
  return 0;
}

/**
 * Actual cost of `x in coll`: the formula of inCostBound, except that a string `x` is looked up
 * by a strict-equality scan (instrument.ts) at COST.stringElement per element, which the bound's
 * COST.element covers. Measuring nested operands is itself work, so it stops as soon as the cost
 * passes `cap` (what the decision has left): values that share structure (a list of 1,000
 * references to one list of 1,000 lists, ...) can hold more items than any budget.
 */
export function inCost(x: unknown, coll: unknown, cap = Infinity): number {
  if (!Array.isArray(coll)) return 0; // map membership: a key lookup
  const n = coll.length;
  if (typeof x === 'string') {
    let cost = n * COST.stringElement;
    if (x.length >= COST.compareChars) {
      let chars = 0;
      for (let i = 0; i < n; i++) {
        const e = coll[i] as unknown;
        if (typeof e === 'string' && e.length === x.length) chars += x.length;
      }
      cost += chars / COST.compareChars;
    }
    return cost;
  }
  let cost = n * COST.element;
  if (x !== null && typeof x === 'object') {
    const own = itemsOf(x, cap / COST.deepItem);
    for (let i = 0; i < n && cost <= cap; i++) {
      const e = coll[i] as unknown;
      if (e !== null && typeof e === 'object') cost += itemsOf(e, own) * COST.deepItem;
    }
  }
  return cost;
}

export function equalsCost(a: unknown, b: unknown, cap = Infinity): number {
  if (typeof a === 'string') return typeof b === 'string' && a.length === b.length ? a.length / COST.compareChars : 0;
  if (a !== null && typeof a === 'object' && b !== null && typeof b === 'object') {
    const left = itemsOf(a, cap / COST.deepItem);
    return Math.min(left, itemsOf(b, left)) * COST.deepItem;
  }
  return 0;
}

export function orderCost(a: unknown, b: unknown): number {
  return typeof a === 'string' && typeof b === 'string' ? Math.min(a.length, b.length) / COST.compareChars : 0;
}

export function addCost(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string') return (a.length + b.length) / COST.buildChars;
  if (Array.isArray(a) && Array.isArray(b)) return a.length + b.length;
  return 0;
}

function strLen(v: unknown): number {
  return typeof v === 'string' ? v.length : v instanceof Uint8Array ? v.length : 0;
}

/** Actual cost of a call, the same formulas as callCostBound; `args` holds the receiver first for methods. */
export function callCost(name: string, args: readonly unknown[]): number {
  return COST.call + callOperandCost(name, args);
}

/**
 * callCost for one function, resolved once (instrumentation binds it to the call node), so a
 * call does not go through the switch on every evaluation.
 */
export function callCostOf(name: string): (args: readonly unknown[]) => number {
  const a0 = (args: readonly unknown[]) => strLen(args[0]);
  switch (name) {
    case 'startsWith':
    case 'endsWith':
      return (args) => COST.call + Math.min(strLen(args[0]), strLen(args[1])) / COST.compareChars;
    case 'contains':
    case 'indexOf':
    case 'lastIndexOf':
      return (args) => COST.call + (strLen(args[0]) + strLen(args[1])) / COST.buildChars;
    case 'lowerAscii':
    case 'upperAscii':
    case 'trim':
    case 'substring':
    case 'string':
      return (args) => COST.call + a0(args) / COST.buildChars;
    case 'timestamp':
      return () => COST.call + COST.timestamp;
    case 'inCidr':
      return (args) => COST.call + COST.cidr + (strLen(args[0]) + strLen(args[1])) / COST.buildChars;
    default:
      return (args) => COST.call + callOperandCost(name, args);
  }
}

function callOperandCost(name: string, args: readonly unknown[]): number {
  const a = args[0];
  const b = args[1];
  switch (name) {
    case 'contains':
    case 'indexOf':
    case 'lastIndexOf':
      return (strLen(a) + strLen(b)) / COST.buildChars;
    case 'startsWith':
    case 'endsWith':
      return Math.min(strLen(a), strLen(b)) / COST.compareChars;
    case 'lowerAscii':
    case 'upperAscii':
    case 'trim':
    case 'substring':
    case 'string':
    case 'bytes':
    case 'hex':
    case 'base64':
    case 'json':
      return strLen(a) / COST.buildChars;
    case 'split':
      return strLen(a) / COST.buildChars + (strLen(a) + 1) * COST.splitPart;
    case 'join': {
      if (!Array.isArray(a)) return 0;
      let chars = a.length * strLen(b);
      for (const e of a) chars += strLen(e);
      return chars / COST.buildChars + a.length;
    }
    case 'size':
      return strLen(a) / COST.codePointChars + (Array.isArray(a) ? 0 : countOf(a));
    case 'int':
    case 'uint':
    case 'double':
    case 'bool':
      return strLen(a) / COST.compareChars;
    case 'timestamp':
      return COST.timestamp;
    case 'duration':
      return COST.duration + (strLen(a) * strLen(a)) / 64;
    case 'getDate':
    case 'getDayOfMonth':
    case 'getDayOfWeek':
    case 'getDayOfYear':
    case 'getFullYear':
    case 'getHours':
    case 'getMilliseconds':
    case 'getMinutes':
    case 'getMonth':
    case 'getSeconds':
      return args.length > 1 ? COST.timeZone : 0;
    case 'inCidr':
      return COST.cidr + (strLen(a) + strLen(b)) / COST.buildChars;
    case 'at':
      return 0;
    default: {
      let chars = 0;
      let count = 0;
      for (const v of args) {
        chars += strLen(v);
        count += itemsOf(v, 1e7);
      }
      return chars / COST.buildChars + count;
    }
  }
}

/** Functions whose cost depends on their operands (the others cost one node). */
export const SIZED_FUNCTIONS: ReadonlySet<string> = new Set([
  'contains', 'indexOf', 'lastIndexOf', 'startsWith', 'endsWith', 'lowerAscii', 'upperAscii', 'trim', 'substring',
  'string', 'bytes', 'hex', 'base64', 'json', 'split', 'join', 'size', 'int', 'uint', 'double', 'bool', 'duration', 'timestamp', 'at',
  'getDate', 'getDayOfMonth', 'getDayOfWeek', 'getDayOfYear', 'getFullYear', 'getHours', 'getMilliseconds',
  'getMinutes', 'getMonth', 'getSeconds', 'inCidr',
]);

/** Functions known to cost one node whatever their operands. */
export const CONSTANT_FUNCTIONS: ReadonlySet<string> = new Set(['type', 'dyn', 'has', 'bind']);
