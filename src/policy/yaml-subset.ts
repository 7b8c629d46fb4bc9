/**
 * A reader for the plainest YAML a policy file is usually written in, tried before js-yaml on every
 * fast read (it reads the generated 1,000-type set in about two thirds of js-yaml's CPU). It accepts
 * only: one document of block mappings and block sequences; keys that are plain words; values that
 * are plain one-line scalars, quoted one-line scalars without escapes, one-line flow sequences of
 * such scalars, and `>-` folded scalars whose lines are all at one indent with no blank line and
 * no trailing space; full-line comments. Besides strings: `true`, `false` and short decimal numbers
 * (`0`, `-12`, `2.5`), and one-line flow mappings (`{ type: string, enum: [a, b] }`, nested) of
 * plain keys and such values, which is how JSON Schemas in declarations are usually written.
 * Anything else (a second document, anchors, tags, other block scalars, multi-line plain, quoted
 * or flow values, `#` after a value, duplicate keys, empty values, null, other number forms...)
 * returns undefined and the file takes the js-yaml path, then the precise `yaml` one. The result
 * still goes through the same checks as js-yaml's (yaml-fast.ts: scalars the core schema would type
 * differently are refused there).
 */

interface Line {
  readonly indent: number;
  /** The text after the indent. */
  readonly text: string;
  /** A comment line came right before this one (inside a `>-` scalar it would be text). */
  readonly afterComment: boolean;
}

// The YAML 1.2 core schema as `yaml` resolves plain scalars: a string that looks like one of these
// would be a null, bool or number there, so it goes the precise way.
export const CORE_NON_STRING = /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

class Decline extends Error {}

const KEY = /^([A-Za-z_][A-Za-z0-9_.-]*):(?: +|$)/;
/** Characters that start something other than a plain scalar (or start one only in some contexts). */
const NOT_PLAIN_START = /^[-?:,[\]{}#&*!|>'"%@`\s]/;
const FLOW_PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;
/**
 * Decimal numbers read exactly as the core schema reads them (`yaml` resolves them with parseInt or
 * parseFloat of the same text; short enough that every reader rounds alike). Other forms (1e3,
 * 0x1F, 007, .5, +1, 1.) are refused.
 */
const NUMBER = /^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?$/;
/** The plain scalars read as something other than a string: a number or bool as above; undefined for a string. */
function typedPlain(text: string): number | boolean | undefined {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (NUMBER.test(text)) return Number(text);
  if (CORE_NON_STRING.test(text)) throw new Decline();
  return undefined;
}
/**
 * Characters the libraries treat specially or refuse: every control but the line feed (tabs and
 * carriage returns included: the libraries differ on them), a byte-order mark, non-characters, lone surrogates, and
 * Unicode line and paragraph separators; and white space other than the space (YAML's white space
 * is space and tab only, JavaScript's trim() takes more).
 */
const SPECIAL = /[\x00-\x09\x0B-\x1F\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/;

/** `text` without its leading spaces (spaces only: YAML's indentation). */
function skipSpaces(text: string): string {
  let i = 0;
  while (text.charCodeAt(i) === 32) i++;
  return i === 0 ? text : text.slice(i);
}

/** The value of `text` when it is in the subset above; undefined otherwise. */
export function subsetYamlValue(text: string): unknown {
  if (SPECIAL.test(text)) return undefined;
  const lines: Line[] = [];
  let afterComment = false;
  for (const raw of text.split('\n')) {
    const body = skipSpaces(raw);
    if (body === '' || body.startsWith('#')) {
      if (body === '' && raw !== '') return undefined; // a line of spaces: leave it to the libraries
      if (body !== '') afterComment = true;
      continue;
    }
    if (body.startsWith('---') || body.startsWith('...')) return undefined;
    lines.push({ indent: raw.length - body.length, text: body, afterComment });
    afterComment = false;
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  const reader = new Reader(lines, text, afterComment);
  try {
    const value = reader.block(0);
    return reader.done() ? value : undefined;
  } catch (err) {
    if (err instanceof Decline) return undefined;
    throw err;
  }
}

class Reader {
  private i = 0;
  /**
   * One-line flow mappings by text. Declarations repeat the same few property schemas for every
   * type (`{ type: string }`), so each text is read once and its value shared: nothing modifies a
   * value read here (readers copy what they keep, or take a schema whole and only read it).
   */
  private readonly flowMappings = new Map<string, Record<string, unknown>>();
  /** Blank lines inside a `>-` scalar would change its value: with any blank line, `>-` is refused. */
  private readonly hasBlankLines: boolean;

  constructor(
    private readonly lines: readonly Line[],
    text: string,
    private readonly trailingComment: boolean,
  ) {
    this.hasBlankLines = /\n[ ]*\n/.test(text.trimEnd());
  }

  done(): boolean {
    return this.i === this.lines.length;
  }

  /** A block node whose first line is the current one, at exactly `indent`. */
  block(indent: number): unknown {
    const line = this.lines[this.i];
    if (!line || line.indent !== indent) throw new Decline();
    return line.text.startsWith('- ') || line.text === '-' ? this.sequence(indent) : this.mapping(indent, line.text, indent);
  }

  /**
   * A block mapping at `indent`; its first key may start mid-line (`- key: v`, column `indent`),
   * so its text is passed in.
   */
  private mapping(indent: number, firstText: string, _column: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let text: string | undefined = firstText;
    for (;;) {
      const m = KEY.exec(text);
      if (!m) throw new Decline();
      const key = m[1]!;
      if (CORE_NON_STRING.test(key) || Object.hasOwn(out, key) || key === '__proto__' || key.length > 1000) throw new Decline();
      const rest = text.slice(m[0].length);
      this.i++;
      out[key] = this.valueAfterKey(indent, rest);
      const next = this.lines[this.i];
      if (!next || next.indent < indent) return out;
      if (next.indent > indent) throw new Decline();
      text = next.text;
    }
  }

  /** The value of `key:` whose line (already consumed) ended with `rest`; the key is at `indent`. */
  private valueAfterKey(indent: number, rest: string): unknown {
    if (rest === '') {
      const next = this.lines[this.i];
      if (!next) throw new Decline(); // null
      // A sequence may sit at the key's own indent; anything else must be indented further.
      if (next.indent === indent && (next.text.startsWith('- ') || next.text === '-')) return this.sequence(indent);
      if (next.indent <= indent) throw new Decline(); // null
      return this.block(next.indent);
    }
    if (rest === '>-') return this.folded(indent);
    const value = this.inline(rest);
    this.noContinuation(indent);
    return value;
  }

  /** A block sequence at `indent` (lines `- item`). */
  private sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      const line = this.lines[this.i];
      if (!line || line.indent < indent) return out;
      if (line.indent > indent || !line.text.startsWith('- ')) throw new Decline();
      const rest = line.text.slice(2);
      const item = skipSpaces(rest);
      const spaces = rest.length - item.length;
      const column = indent + 2 + spaces;
      if (item === '' || item.startsWith('- ') || item === '-') throw new Decline();
      if (KEY.test(item)) {
        out.push(this.mapping(column, item, column));
      } else {
        this.i++;
        out.push(this.inline(item));
        this.noContinuation(indent);
      }
      const next = this.lines[this.i];
      if (next && next.indent > indent && next.indent !== column) throw new Decline();
    }
  }

  /** After a one-line value, a more indented line would continue it (or be an error): refuse. */
  private noContinuation(indent: number): void {
    const next = this.lines[this.i];
    if (next && next.indent > indent) throw new Decline();
  }

  /** `>-`: lines more indented than the key, all at one indent, folded into one line. */
  private folded(indent: number): string {
    if (this.hasBlankLines) throw new Decline();
    const first = this.lines[this.i];
    if (!first || first.indent <= indent) throw new Decline();
    const parts: string[] = [];
    while (this.i < this.lines.length && this.lines[this.i]!.indent > indent) {
      const line = this.lines[this.i]!;
      if (line.indent !== first.indent || line.text.endsWith(' ') || line.afterComment) throw new Decline();
      parts.push(line.text);
      this.i++;
    }
    // A comment line right after the scalar might be read as its text: refuse.
    if (this.i < this.lines.length ? this.lines[this.i]!.afterComment : this.trailingComment) throw new Decline();
    return parts.join(' ');
  }

  /** A one-line scalar, flow sequence or flow mapping. */
  private inline(text: string): unknown {
    if (text.startsWith('[')) return flowSequence(text);
    if (text.startsWith('{')) {
      let value = this.flowMappings.get(text);
      if (!value) this.flowMappings.set(text, (value = flowMapping(text)));
      return value;
    }
    const quoted = quotedScalar(text);
    if (quoted !== undefined) return quoted;
    const typed = typedPlain(text);
    if (typed !== undefined) return typed;
    if (NOT_PLAIN_START.test(text) || text.includes(': ') || text.includes('#') || text.endsWith(':') || text.endsWith(' ')) throw new Decline();
    return text;
  }
}

/** `"…"` without escapes or `'…'` (with `''`), the whole of `text`; undefined if not quoted. */
function quotedScalar(text: string): string | undefined {
  if (text.startsWith('"')) {
    const end = text.indexOf('"', 1);
    if (end !== text.length - 1 || text.includes('\\')) throw new Decline();
    return text.slice(1, -1);
  }
  if (text.startsWith("'")) {
    if (text.length < 2 || !text.endsWith("'")) throw new Decline();
    const inner = text.slice(1, -1);
    if (inner.replaceAll("''", '').includes("'")) throw new Decline();
    return inner.replaceAll("''", "'");
  }
  return undefined;
}

/** `[a, "b", 'c', 1, true]` on one line: plain words, numbers and bools as above, or quoted scalars without commas or brackets. */
function flowSequence(text: string): unknown[] {
  if (!text.endsWith(']')) throw new Decline();
  const inner = text.slice(1, -1).replace(/^ +| +$/g, '');
  if (inner === '') return [];
  if (/[[\]{}#]/.test(inner)) throw new Decline();
  return inner.split(',').map((raw) => {
    const item = raw.replace(/^ +| +$/g, '');
    if (item === '') throw new Decline();
    const quoted = quotedScalar(item);
    if (quoted !== undefined) return quoted;
    const typed = typedPlain(item);
    if (typed !== undefined) return typed;
    if (!FLOW_PLAIN.test(item)) throw new Decline();
    return item;
  });
}

/**
 * `{ key: value, … }` on one line, the whole of `text`: plain keys (as in a block mapping), values
 * that are plain words, `true`/`false`, short decimal numbers, quoted scalars without escapes, and
 * flow sequences and mappings of those, nested. Spaces only around the punctuation; no trailing
 * comma, no empty entry, no `#`.
 */
function flowMapping(text: string): Record<string, unknown> {
  const flow = new FlowReader(text);
  const value = flow.mapping();
  if (flow.at !== text.length) throw new Decline();
  return value;
}

const FLOW_KEY = /[A-Za-z_][A-Za-z0-9_.-]*/y;
const FLOW_WORD = /[^,[\]{}\s]+/y;

class FlowReader {
  at = 0;
  constructor(private readonly text: string) {}

  private spaces(): void {
    while (this.text.charCodeAt(this.at) === 32) this.at++;
  }

  /** At `{`: the mapping up to its `}`. */
  mapping(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.at++;
    this.spaces();
    if (this.text[this.at] === '}') {
      this.at++;
      return out;
    }
    for (;;) {
      FLOW_KEY.lastIndex = this.at;
      const m = FLOW_KEY.exec(this.text);
      if (!m) throw new Decline();
      const key = m[0];
      this.at += key.length;
      // `key: value` with a space after the colon; `key:value` is one plain scalar in YAML.
      if (this.text[this.at] !== ':' || this.text[this.at + 1] !== ' ') throw new Decline();
      if (CORE_NON_STRING.test(key) || Object.hasOwn(out, key) || key === '__proto__' || key.length > 1000) throw new Decline();
      this.at += 2;
      out[key] = this.value();
      if (this.close('}')) return out;
    }
  }

  /** At `[`: the sequence up to its `]`. */
  sequence(): unknown[] {
    const out: unknown[] = [];
    this.at++;
    this.spaces();
    if (this.text[this.at] === ']') {
      this.at++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      if (this.close(']')) return out;
    }
  }

  /** After an entry: true at the closing bracket (consumed), false after a comma followed by another entry. */
  private close(bracket: string): boolean {
    this.spaces();
    const c = this.text[this.at];
    this.at++;
    if (c === bracket) return true;
    if (c !== ',') throw new Decline();
    this.spaces();
    const next = this.text[this.at];
    if (next === undefined || next === ',' || next === ']' || next === '}') throw new Decline(); // trailing or empty entry
    return false;
  }

  private value(): unknown {
    this.spaces();
    const c = this.text[this.at];
    if (c === '{') return this.mapping();
    if (c === '[') return this.sequence();
    if (c === '"' || c === "'") {
      // To the closing quote (a doubled '' inside single quotes is a quote); no escapes.
      let end = this.at + 1;
      for (;;) {
        end = this.text.indexOf(c, end);
        if (end < 0) throw new Decline();
        if (c === "'" && this.text[end + 1] === "'") {
          end += 2;
          continue;
        }
        break;
      }
      const raw = this.text.slice(this.at, end + 1);
      this.at = end + 1;
      // A quoted key (`"a": b`) makes a pair, not a scalar: only a separator may follow.
      this.spaces();
      const after = this.text[this.at];
      if (after !== ',' && after !== ']' && after !== '}') throw new Decline();
      return quotedScalar(raw);
    }
    FLOW_WORD.lastIndex = this.at;
    const m = FLOW_WORD.exec(this.text);
    if (!m) throw new Decline();
    const word = m[0];
    this.at += word.length;
    const typed = typedPlain(word);
    if (typed !== undefined) return typed;
    if (!FLOW_PLAIN.test(word)) throw new Decline();
    return word;
  }
}
