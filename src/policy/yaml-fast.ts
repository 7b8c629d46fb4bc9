import jsyaml from 'js-yaml';
import type { Node } from 'yaml';
import { CORE_NON_STRING, subsetYamlValue } from './yaml-subset.js';

/**
 * The fast path for reading policy YAML. The `yaml` library keeps every position for error messages
 * and costs about 0.7 ms per generated policy file; js-yaml reads the same file about ten times
 * faster but keeps no positions. Positions only matter when something is wrong, so a file is first
 * read with js-yaml, and the result is used only when it is certain to be what `yaml` reads: no
 * YAML feature where the two libraries could differ (anchors and aliases, explicit tags, tabs, carriage returns,
 * directives, non-mapping documents, keys an object would reorder, scalars the YAML 1.2 core schema
 * of `yaml` would type differently). Anything else, and any file in which a problem is found later,
 * is read again with `yaml` for exact `file:line:column` errors.
 */

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;
/** The tags js-yaml's core schema gives plain scalars it resolves (null, bool, int, float). */
const IMPLICIT_TAGS = new Set(['null', 'bool', 'int', 'float'].map((t) => `tag:yaml.org,2002:${t}`));
/** Positions in a fast read are unknown: nodes get an empty range at offset 0. */
const NO_RANGE: [number, number, number] = [0, 0, 0];

// The reader only asks `yaml`'s isMap/isSeq/isScalar (which look at these registered symbols) and
// reads items, key, value, range and type: plain objects with those cost a fraction of the classes.
const NODE_TYPE = Symbol.for('yaml.node.type');
const MAP = Symbol.for('yaml.map');
const SEQ = Symbol.for('yaml.seq');
const PAIR = Symbol.for('yaml.pair');
const SCALAR = Symbol.for('yaml.scalar');

class NotSimple extends Error {}

/**
 * Whether `s` starts with a letter other than n, t, f (any case): then it is neither an array index
 * nor anything CORE_NON_STRING matches (~, null, true, false, numbers, .inf, .nan), so the two
 * regular expressions need not run. Most keys and strings of a policy file are such words.
 */
function plainWord(s: string): boolean {
  const c = s.charCodeAt(0);
  if (c >= 97 && c <= 122) return c !== 110 && c !== 116 && c !== 102;
  if (c >= 65 && c <= 90) return c !== 78 && c !== 84 && c !== 70;
  return false;
}

/**
 * On a fast-read mapping or sequence node: the plain value it was made from (checked, as JSON), so
 * a reader that wants plain JSON back (declarations' schemas) need not rebuild it node by node.
 */
export const PLAIN_VALUE = Symbol('verdict.plainValue');

function toNode(value: unknown): Node {
  if (Array.isArray(value)) return { [NODE_TYPE]: SEQ, items: value.map(toNode), range: NO_RANGE, [PLAIN_VALUE]: value } as unknown as Node;
  if (value !== null && typeof value === 'object') {
    if (Object.getPrototypeOf(value) !== Object.prototype) throw new NotSimple(); // a Date or another typed value
    const items: unknown[] = [];
    for (const key of Object.keys(value)) {
      if (!plainWord(key) && (ARRAY_INDEX.test(key) || key === '__proto__' || CORE_NON_STRING.test(key))) throw new NotSimple();
      items.push({ [NODE_TYPE]: PAIR, key: scalar(key), value: toNode((value as Record<string, unknown>)[key]) });
    }
    return { [NODE_TYPE]: MAP, items, range: NO_RANGE, [PLAIN_VALUE]: value } as unknown as Node;
  }
  return scalar(value);
}

/**
 * Throws NotSimple where toNode would; builds nothing. A collection the reader shares (a flow
 * mapping repeated in the file, such as the same property schema for every type) is checked once.
 */
function checkSimple(value: unknown, seen: WeakSet<object>): void {
  if (value !== null && typeof value === 'object') {
    if (seen.has(value)) return;
    seen.add(value);
  }
  if (Array.isArray(value)) {
    for (const v of value) checkSimple(v, seen);
    return;
  }
  if (value !== null && typeof value === 'object') {
    if (Object.getPrototypeOf(value) !== Object.prototype) throw new NotSimple();
    for (const key of Object.keys(value)) {
      if (!plainWord(key) && (ARRAY_INDEX.test(key) || key === '__proto__' || CORE_NON_STRING.test(key))) throw new NotSimple();
      checkSimple((value as Record<string, unknown>)[key], seen);
    }
    return;
  }
  checkScalar(value);
}

/**
 * A mapping or sequence node of a checked value whose items are made when first read. A
 * declarations document is mostly JSON Schemas, which its reader takes back whole as plain values
 * (PLAIN_VALUE): their nodes would be made only to be thrown away.
 */
class LazyCollection {
  readonly range = NO_RANGE;
  private made: unknown[] | undefined;
  constructor(
    type: symbol,
    private readonly plain: object,
  ) {
    (this as Record<symbol, unknown>)[NODE_TYPE] = type;
    (this as Record<symbol, unknown>)[PLAIN_VALUE] = plain;
  }

  get items(): unknown[] {
    if (this.made) return this.made;
    const v = this.plain;
    this.made = Array.isArray(v)
      ? v.map(lazyNode)
      : Object.keys(v).map((key) => ({ [NODE_TYPE]: PAIR, key: scalar(key), value: lazyNode((v as Record<string, unknown>)[key]) }));
    return this.made;
  }
}

function lazyNode(value: unknown): Node {
  if (value !== null && typeof value === 'object') return new LazyCollection(Array.isArray(value) ? SEQ : MAP, value) as unknown as Node;
  return scalar(value);
}

/** The node of a plain document: built at once, except a declarations document (built as read). */
function documentNode(value: object): Node {
  if ((value as Record<string, unknown>).kind !== 'Declarations') return toNode(value);
  checkSimple(value, new WeakSet());
  return lazyNode(value);
}

function scalar(value: unknown): Node {
  checkScalar(value);
  return { [NODE_TYPE]: SCALAR, value, range: NO_RANGE, type: undefined } as unknown as Node;
}

/** Throws NotSimple where scalar would; makes no node (checkSimple walks a whole declarations file). */
function checkScalar(value: unknown): void {
  if (typeof value === 'string') {
    if (!plainWord(value) && (value === '' || CORE_NON_STRING.test(value))) throw new NotSimple();
  } else if (typeof value === 'number') {
    // Numbers (JSON Schemas in declarations: `minimum: 0`): js-yaml's core schema reads them as
    // `yaml` does, except -0 and binary literals (0b11), which go the precise way (see below).
    if (!Number.isFinite(value) || Object.is(value, -0)) throw new NotSimple();
  } else if (value !== null && typeof value !== 'boolean') {
    throw new NotSimple();
  }
}

/**
 * The documents of `text` as `yaml` nodes without positions, or undefined when the fast read is not
 * certain to match `yaml` (then the caller reads the text with `yaml`).
 */
export function fastYamlDocuments(text: string): Node[] | undefined {
  // `[a]#x`: js-yaml reads `#` right after a flow collection or quoted scalar as a comment, yaml as an error.
  // js-yaml reads the integer `-0` as 0 (yaml: -0) and a signed `-0x10` as a number (yaml: a string).
  // `!!int 5` ends with the tag an implicit 5 gets (see the listener): any `!!` goes the precise way.
  if (text.includes('\t') || text.includes('\r') || text.includes('!!') || /^%/m.test(text) || /[-+]?\b0b[01]/.test(text) || /[\]}"']#/.test(text) || /(?<![\w.-])-0(?![\w.])|[-+]0[xXoO]/.test(text)) return undefined;
  // The plainest files first (yaml-subset.ts); then js-yaml.
  const plain = subsetYamlValue(text);
  if (plain !== undefined && plain !== null && typeof plain === 'object' && !Array.isArray(plain)) {
    try {
      return [documentNode(plain)];
    } catch (err) {
      if (!(err instanceof NotSimple)) throw err;
    }
  }
  let declined = false;
  const opened: { line: number; position: number }[] = [];
  const values: unknown[] = [];
  try {
    jsyaml.loadAll(text, (doc) => values.push(doc), {
      schema: jsyaml.CORE_SCHEMA,
      listener(event, raw) {
        const state = raw as unknown as { line: number; position: number; anchor: string | null; tag: string | null };
        if (event === 'open') {
          opened.push({ line: state.line, position: state.position });
          return;
        }
        const open = opened.pop();
        if (state.anchor !== null) declined = true; // anchors (and so aliases)
        // An explicit tag (`!`, `!!str`, `!!map`…): js-yaml reads `key: !` as null, `yaml` as "".
        // At close js-yaml leaves "?" on a plain scalar no implicit type took, null on a quoted one
        // or an untagged collection, and the implicit type's tag on a number, bool or null.
        else if (state.tag !== null && state.tag !== '?' && !IMPLICIT_TAGS.has(state.tag)) declined = true;
        // A flow collection or a quoted scalar over several lines: the libraries differ on how far
        // its continuation lines must be indented.
        else if (open && state.line !== open.line && /^(?:\s|#[^\n]*)*["'[{]/.test(text.slice(open.position, open.position + 256))) declined = true;
      },
    });
  } catch {
    return undefined;
  }
  if (declined || values.length === 0) return undefined;
  try {
    return values.map((v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new NotSimple();
      return documentNode(v);
    });
  } catch (err) {
    if (err instanceof NotSimple) return undefined;
    throw err;
  }
}
