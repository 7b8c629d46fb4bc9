import type { ASTNode } from '@marcbachmann/cel-js';
import type { SourceExpression } from './document.js';
import type { SourcePosition } from './issues.js';

/** One attribute path an expression reads, e.g. resource.attributes.amount.currency. */
export interface AttributeRead {
  readonly root: 'subject' | 'resource';
  /** Field names after `attributes`; at least one. */
  readonly path: readonly string[];
  /** Position of each name in `path`, in the file (worked out when first asked: only a reported read needs them). */
  readonly positions: readonly SourcePosition[];
  /** How the expression uses the value read, where that says what type it must have (type-check.ts). */
  readonly uses: readonly AttributeUse[];
}

/** A literal's CEL type family: int, uint and double are one family (CEL compares them across). */
export type LiteralType = 'string' | 'number' | 'bool' | 'bytes' | 'list' | 'map' | 'null';

/**
 * One use of a read value that constrains its type:
 * - `compare`: an operand of ==, !=, <, <=, >, >= or + whose other operand is a literal or another read;
 * - `number`: an operand of -, *, /, % or unary minus (must be a number);
 * - `bool`: an operand of &&, ||, ! or the condition of ?: (must be a bool);
 * - `string`: the receiver or argument of a string function (startsWith, endsWith, contains, matches, …);
 * - `collection`: the right side of `in`, or the receiver of exists/all/exists_one/map/filter (a list or map);
 * - `sized`: the operand of size() (a string, bytes, list or map).
 */
export type AttributeUse =
  | { readonly kind: 'compare'; readonly op: string; readonly literal: LiteralType }
  | { readonly kind: 'compare'; readonly op: string; readonly other: AttributeRead }
  | { readonly kind: 'number' | 'bool' | 'collection' | 'sized'; readonly op: string }
  | { readonly kind: 'string'; readonly op: string };

/** A use as collected from the AST: the other read of a comparison by its index in the same list. */
export type RawUse =
  | { readonly kind: 'compare'; readonly op: string; readonly literal: LiteralType }
  | { readonly kind: 'compare'; readonly op: string; readonly other: number }
  | { readonly kind: 'number' | 'bool' | 'collection' | 'sized' | 'string'; readonly op: string };

/**
 * A read as collected from an expression's AST, shared by every site with the same compiled
 * expression (sets repeat their conditions across types): what the declarations check looks at.
 * The site's AttributeRead (positions included) is made only for a read that gets an issue.
 */
export interface RawRead {
  readonly root: 'subject' | 'resource';
  readonly links: readonly Link[];
  readonly uses: RawUse[];
  /** The names of `links`. */
  readonly path: readonly string[];
}

interface Link {
  readonly name: string;
  /** Offset of the name in the expression text. */
  readonly offset: number;
}

/** The chain of field selections under `node`: [root id, ...names], or undefined when it is not one. */
function chainOf(node: ASTNode): { root: string; links: Link[] } | undefined {
  const links: Link[] = [];
  let n: ASTNode = node;
  for (;;) {
    if (n.op === '.' || n.op === '.?') {
      const [target, field] = n.args as [ASTNode, string];
      links.push({ name: field, offset: n.range.end - field.length });
      n = target;
    } else if (n.op === '[]' || n.op === '[?]') {
      const [target, key] = n.args as [ASTNode, ASTNode];
      if (key.op !== 'value' || typeof key.args !== 'string') return undefined;
      links.push({ name: key.args, offset: key.range.start + 1 });
      n = target;
    } else if (n.op === 'id') {
      return { root: n.args as string, links: links.reverse() };
    } else return undefined;
  }
}

/**
 * Every `subject.attributes.…` and `resource.attributes.…` path an expression reads, by walking its
 * AST once (at load). Index access with a string literal (`["a-b"]`) counts as a field; a computed
 * index ends the path there.
 */
export function attributeReads(ast: ASTNode, positionAt: SourceExpression['positionAt']): AttributeRead[] {
  const raw = rawAttributeReads(ast);
  const out = raw.map((r) => new SiteRead(r, positionAt));
  for (let i = 0; i < raw.length; i++) {
    const uses = raw[i]!.uses;
    if (uses.length > 0) out[i]!.uses = uses.map((u) => ('other' in u ? { kind: 'compare', op: u.op, other: out[u.other]! } : u));
  }
  return out;
}

/**
 * A read at one site. Its positions are worked out when first asked: a set of 1,000 types lists
 * ~20,000 reads at load and reports none of them when it is right (issue 13: load time with
 * declarations), while the path and uses are what every read is checked by.
 */
class SiteRead implements AttributeRead {
  uses: readonly AttributeUse[] = NO_USES;
  private placed: readonly SourcePosition[] | undefined;
  constructor(
    private readonly raw: RawRead,
    private readonly positionAt: SourceExpression['positionAt'],
  ) {}

  get root(): 'subject' | 'resource' {
    return this.raw.root;
  }

  get path(): readonly string[] {
    return this.raw.path;
  }

  get positions(): readonly SourcePosition[] {
    return (this.placed ??= this.raw.links.map((l) => this.positionAt(l.offset)));
  }
}

const NO_USES: readonly AttributeUse[] = [];

/** The reads of an expression as collected from its AST, once per AST (see RawRead). */
export function rawAttributeReads(ast: ASTNode): readonly RawRead[] {
  let raw = rawReads.get(ast);
  if (!raw) rawReads.set(ast, (raw = readsOf(ast)));
  return raw;
}

function rawRead(root: 'subject' | 'resource', links: readonly Link[]): RawRead {
  return { root, links, uses: [], path: links.map((l) => l.name) };
}

/** Compiled expressions are shared by text (src/policy/expression.ts): so are their reads. */
const rawReads = new WeakMap<ASTNode, RawRead[]>();

const COMPARE = new Set(['==', '!=', '<', '<=', '>', '>=', '+']);
const ARITHMETIC = new Set(['-', '*', '/', '%', '-_']);
const LOGICAL = new Set(['&&', '||', '!_']);
const STRING_FUNCTIONS = new Set(['startsWith', 'endsWith', 'contains', 'matches', 'lowerAscii', 'upperAscii', 'trim', 'split', 'replace', 'indexOf', 'lastIndexOf', 'substring', 'charAt']);
/** Of these, the argument too must be a string (`"abc".startsWith(x)`). */
const STRING_ARGUMENT = new Set(['startsWith', 'endsWith', 'contains', 'matches']);
const COLLECTION_MACROS = new Set(['exists', 'all', 'exists_one', 'map', 'filter']);

/** The CEL type family of a literal operand, or undefined when it is not a literal. */
function literalType(node: ASTNode): LiteralType | undefined {
  if (node.op === 'list') return 'list';
  if (node.op === 'map') return 'map';
  if (node.op === '-_') {
    const inner = node.args as unknown as ASTNode;
    return inner.op === 'value' && (typeof inner.args === 'number' || typeof inner.args === 'bigint') ? 'number' : undefined;
  }
  if (node.op !== 'value') return undefined;
  const v: unknown = node.args;
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return 'bytes';
  return undefined; // uint literals are objects: not claimed
}

function readsOf(ast: ASTNode): RawRead[] {
  const found: RawRead[] = [];
  /** The read a node is, if it is an attribute chain (the same node object is visited once). */
  const readAt = new Map<ASTNode, number>();
  const asRead = (node: unknown): number | undefined => {
    if (node === null || typeof node !== 'object' || !('op' in node)) return undefined;
    const n = node as ASTNode;
    if (n.op !== '.' && n.op !== '.?' && n.op !== '[]' && n.op !== '[?]') return undefined;
    const known = readAt.get(n);
    if (known !== undefined) return known;
    const chain = chainOf(n);
    if (!chain || !(chain.root === 'subject' || chain.root === 'resource') || chain.links.length < 2 || chain.links[0]!.name !== 'attributes') return undefined;
    found.push(rawRead(chain.root, chain.links.slice(1)));
    readAt.set(n, found.length - 1);
    return found.length - 1;
  };
  const use = (operand: unknown, u: RawUse) => {
    const i = asRead(operand);
    if (i !== undefined) found[i]!.uses.push(u);
  };
  const constrain = (node: ASTNode): void => {
    const op = node.op;
    const args = node.args as unknown;
    if (COMPARE.has(op) && Array.isArray(args) && args.length === 2) {
      const [a, b] = args as [ASTNode, ASTNode];
      for (const [self, other] of [[a, b], [b, a]] as const) {
        const lit = literalType(other);
        if (lit !== undefined && lit !== 'null') use(self, { kind: 'compare', op, literal: lit });
        else {
          const j = asRead(other);
          if (j !== undefined && self === a) use(self, { kind: 'compare', op, other: j });
        }
      }
      if (op === '+') return;
    }
    if (ARITHMETIC.has(op)) for (const a of Array.isArray(args) ? args : [args]) use(a, { kind: 'number', op: op === '-_' ? '-' : op });
    else if (LOGICAL.has(op)) for (const a of Array.isArray(args) ? args : [args]) use(a, { kind: 'bool', op: op === '!_' ? '!' : op });
    else if (op === '?:' && Array.isArray(args)) use(args[0], { kind: 'bool', op: '?:' });
    else if (op === 'in' && Array.isArray(args)) use(args[1], { kind: 'collection', op: 'in' });
    else if (op === 'rcall') {
      const [name, receiver, callArgs] = args as [string, ASTNode, ASTNode[]];
      if (STRING_FUNCTIONS.has(name)) use(receiver, { kind: 'string', op: name });
      if (STRING_ARGUMENT.has(name) && callArgs.length === 1) use(callArgs[0], { kind: 'string', op: name });
      if (COLLECTION_MACROS.has(name)) use(receiver, { kind: 'collection', op: name });
      if (name === 'size' && callArgs.length === 0) use(receiver, { kind: 'sized', op: 'size' });
    } else if (op === 'call') {
      const [name, callArgs] = args as [string, ASTNode[]];
      if (name === 'size' && callArgs.length === 1) use(callArgs[0], { kind: 'sized', op: 'size' });
    }
  };
  const visit = (node: ASTNode): void => {
    if (node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') {
      if (readAt.has(node)) return;
      const chain = chainOf(node);
      if (chain) {
        if ((chain.root === 'subject' || chain.root === 'resource') && chain.links.length >= 2 && chain.links[0]!.name === 'attributes') {
          found.push(rawRead(chain.root, chain.links.slice(1)));
          readAt.set(node, found.length - 1);
        }
        return;
      }
    }
    constrain(node);
    const args: unknown = node.args;
    // Children in text order (popped last-first), so reads are usually found already sorted.
    const stack: unknown[] = Array.isArray(args) ? [...args].reverse() : [args];
    while (stack.length > 0) {
      const item = stack.pop();
      if (Array.isArray(item)) for (let i = item.length - 1; i >= 0; i--) stack.push(item[i]);
      else if (item !== null && typeof item === 'object' && 'op' in item && 'args' in item) visit(item as ASTNode);
    }
  };
  visit(ast);
  // A chain nested in a longer one (a.b inside a.b.c) is visited only as the longer one; the same
  // path read twice is checked twice (both positions are reported if it is unknown). Reads are
  // listed in the order they appear in the text.
  if (found.every((r, i) => i === 0 || found[i - 1]!.links[0]!.offset <= r.links[0]!.offset)) return found;
  const order = found.map((_, i) => i).sort((x, y) => found[x]!.links[0]!.offset - found[y]!.links[0]!.offset);
  const moved = new Map(order.map((from, to) => [from, to]));
  return order.map((i) => {
    const r = found[i]!;
    return { ...r, uses: r.uses.map((u) => ('other' in u ? { ...u, other: moved.get(u.other)! } : u)) };
  });
}
