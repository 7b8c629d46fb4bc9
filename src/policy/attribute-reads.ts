import type { ASTNode } from '@marcbachmann/cel-js';
import type { SourceExpression } from './document.js';
import type { SourcePosition } from './issues.js';

/** One attribute path an expression reads, e.g. resource.attributes.amount.currency. */
export interface AttributeRead {
  readonly root: 'subject' | 'resource';
  /** Field names after `attributes`; at least one. */
  readonly path: readonly string[];
  /** Position of each name in `path`, in the file. */
  readonly positions: readonly SourcePosition[];
}

interface RawRead {
  readonly root: 'subject' | 'resource';
  readonly links: readonly Link[];
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
export function attributeReads(ast: ASTNode, source: SourceExpression): AttributeRead[] {
  let raw = rawReads.get(ast);
  if (!raw) rawReads.set(ast, (raw = readsOf(ast)));
  return raw.map((r) => ({ root: r.root, path: r.links.map((l) => l.name), positions: r.links.map((l) => source.positionAt(l.offset)) }));
}

/** Compiled expressions are shared by text (src/policy/expression.ts): so are their reads. */
const rawReads = new WeakMap<ASTNode, RawRead[]>();

function readsOf(ast: ASTNode): RawRead[] {
  const found: RawRead[] = [];
  const visit = (node: ASTNode): void => {
    if (node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') {
      const chain = chainOf(node);
      if (chain) {
        if ((chain.root === 'subject' || chain.root === 'resource') && chain.links.length >= 2 && chain.links[0]!.name === 'attributes') {
          found.push({ root: chain.root, links: chain.links.slice(1) });
        }
        return;
      }
    }
    const args: unknown = node.args;
    const stack: unknown[] = Array.isArray(args) ? [...args] : [args];
    while (stack.length > 0) {
      const item = stack.pop();
      if (Array.isArray(item)) stack.push(...item);
      else if (item !== null && typeof item === 'object' && 'op' in item && 'args' in item) visit(item as ASTNode);
    }
  };
  visit(ast);
  // A chain nested in a longer one (a.b inside a.b.c) is visited only as the longer one; the same
  // path read twice is checked twice (both positions are reported if it is unknown).
  return found;
}
