import type { LineCounter, Node, YAMLMap, Pair } from 'yaml';
import { isMap, isScalar, isSeq } from '../files/yaml-lazy.js';
import type { SourceExpression } from './document.js';
import type { PolicyIssue, PolicyIssueCode, SourcePosition } from './issues.js';

/**
 * A string of its own, flat and internalized, equal to `s`. The YAML readers return slices of the
 * file's text: kept in a compiled set, each slice holds its whole file in memory, and every check
 * that compares one (a resource type or action looked up in a Map, a role in a Set) reads it
 * through its parent, wherever in a large heap that file sits. Property keys are internalized, so
 * this is one string-table lookup, and equal names share one string.
 */
export function ownString(s: string): string {
  if (s === '__proto__') return '__proto__'; // the one key a plain object would not keep
  const o: Record<string, number> = {};
  o[s] = 0;
  for (const k in o) return k;
  return s;
}

/**
 * Reads values out of a parsed YAML document while recording positioned issues, so a validator can
 * keep going after the first problem and report everything at once.
 */
export class YamlReader {
  readonly issues: PolicyIssue[] = [];
  private readonly sourceLines: string[];
  /**
   * A fast read's one position (line 0) and the one `positionAt` of its expressions: a compiled
   * 10,000-type set keeps ~300,000 positions and ~100,000 expressions, and one object per file
   * instead of one per node and a closure per expression is ~20 MB less heap. Frozen: shared.
   */
  private readonly unknownPosition: SourcePosition | undefined;
  private readonly unknownPositionAt: (() => SourcePosition) | undefined;

  /** @param lineCounter undefined for a fast read without positions: every position is line 0. */
  constructor(
    readonly file: string,
    private readonly text: string,
    private readonly lineCounter: LineCounter | undefined,
  ) {
    this.sourceLines = lineCounter ? text.split('\n') : [];
    if (!lineCounter) {
      const unknown = Object.freeze({ file, line: 0, column: 0 });
      this.unknownPosition = unknown;
      this.unknownPositionAt = () => unknown;
    }
  }

  positionOfOffset(offset: number): SourcePosition {
    if (!this.lineCounter) return this.unknownPosition!;
    const { line, col } = this.lineCounter.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { file: this.file, line, column: col };
  }

  positionOf(node: Node | null | undefined, fallback?: SourcePosition): SourcePosition {
    if (node?.range) return this.positionOfOffset(node.range[0]);
    return fallback ?? { file: this.file, line: 1, column: 1 };
  }

  report(code: PolicyIssueCode, message: string, at: SourcePosition): void {
    this.issues.push({ ...at, code, message });
  }

  /** The map's entries keyed by name; unknown keys are reported with the allowed ones. */
  entries(map: YAMLMap, allowed: readonly string[], where: string): Map<string, Pair<Node, Node | null>> {
    const out = new Map<string, Pair<Node, Node | null>>();
    for (const pair of map.items as Pair<Node, Node | null>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) {
        this.report('INVALID_VALUE', `${where}: keys must be plain strings`, this.positionOf(pair.key));
        continue;
      }
      if (!allowed.includes(key)) {
        this.report('UNKNOWN_FIELD', `${where}: unknown field "${key}" (allowed: ${allowed.join(', ')})`, this.positionOf(pair.key));
        continue;
      }
      out.set(key, pair);
    }
    return out;
  }

  asMap(node: Node | null | undefined, where: string, at: SourcePosition): YAMLMap | undefined {
    if (isMap(node)) return node;
    this.report('INVALID_VALUE', `${where} must be a mapping`, this.positionOf(node, at));
    return undefined;
  }

  asSeq(node: Node | null | undefined, where: string, at: SourcePosition): Node[] | undefined {
    if (isSeq(node)) return node.items as Node[];
    this.report('INVALID_VALUE', `${where} must be a list`, this.positionOf(node, at));
    return undefined;
  }

  asString(node: Node | null | undefined, where: string, at: SourcePosition): string | undefined {
    if (isScalar(node) && typeof node.value === 'string') return ownString(node.value);
    this.report('INVALID_VALUE', `${where} must be a string`, this.positionOf(node, at));
    return undefined;
  }

  /** A required field: reports MISSING_FIELD at the parent when absent. */
  required(entries: Map<string, Pair<Node, Node | null>>, key: string, where: string, parent: SourcePosition): Node | null | undefined {
    const pair = entries.get(key);
    if (!pair) {
      this.report('MISSING_FIELD', `${where}: missing required field "${key}"`, parent);
      return undefined;
    }
    return pair.value;
  }

  stringList(node: Node | null | undefined, where: string, at: SourcePosition): { value: string; position: SourcePosition }[] | undefined {
    // A single string is accepted where a list is expected: `actions: read` reads naturally.
    if (isScalar(node) && typeof node.value === 'string') return [{ value: ownString(node.value), position: this.positionOf(node) }];
    const items = this.asSeq(node, where, at);
    if (!items) return undefined;
    const out: { value: string; position: SourcePosition }[] = [];
    items.forEach((item, i) => {
      const value = this.asString(item, `${where}[${i}]`, this.positionOf(node, at));
      if (value !== undefined) out.push({ value, position: this.positionOf(item) });
    });
    return out;
  }

  /** A CEL expression scalar, with character offsets mapped back to file positions. */
  expression(node: Node | null | undefined, where: string, at: SourcePosition): SourceExpression | undefined {
    if (isScalar(node) && typeof node.value === 'boolean') {
      // `when: true` is natural YAML; treat it as the CEL literal.
      const text = String(node.value);
      const position = this.positionOf(node);
      return { text, position, positionAt: () => position };
    }
    const text = this.asString(node, where, at);
    if (text === undefined || !isScalar(node) || !node.range) return undefined;
    if (this.unknownPositionAt) return { text, position: this.unknownPosition!, positionAt: this.unknownPositionAt };
    const start = node.range[0];
    const type = node.type;
    const position = this.positionOfOffset(start);
    const positionAt = (offset: number): SourcePosition => {
      if (type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') {
        // Walk the block's source lines: each value character maps to one source character, and a
        // line break (literal) or the space that folding put in its place (folded) ends a line.
        const indent = (this.sourceLines[position.line] ?? '').match(/^ */)![0].length;
        let valueOffset = 0;
        for (let line = position.line + 1; line <= this.sourceLines.length; line++) {
          const content = (this.sourceLines[line - 1] ?? '').slice(indent);
          if (offset < valueOffset + content.length || line === this.sourceLines.length) {
            return { file: this.file, line, column: indent + Math.max(0, offset - valueOffset) + 1 };
          }
          valueOffset += content.length + 1;
        }
        return position;
      }
      const quoted = type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE' ? 1 : 0;
      return this.positionOfOffset(start + quoted + offset);
    };
    return { text, position, positionAt };
  }
}
