import type { AttributeRead, AttributeUse, LiteralType, RawUse } from './attribute-reads.js';
import type { PolicyIssue } from './issues.js';

/**
 * The type half of the declarations check (issue 13): a condition that uses an attribute in a way
 * its declared JSON Schema type cannot support is a load error (ATTRIBUTE_TYPE), e.g.
 * `resource.attributes.amount > "100"` where the schema says `amount: {type: number}`.
 *
 * This is a walk over the uses collected with each read (attribute-reads.ts), not CEL's type
 * checker: attributes stay `dyn` to cel-js. Only decidable cases are reported: the path's declared
 * type is known (a `type`, `const` or `enum` at the leaf, or anyOf/oneOf of those) and the use
 * needs a type family the declaration does not include. JSON `number` and `integer` are both CEL's
 * number family (int, uint and double compare across in CEL), so `amount > 100` is fine for a
 * `number`. A path through an open level (no properties, additionalProperties: true, $ref) has no
 * known type and is never reported.
 */

/** JSON Schema type names, as declared. */
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'object' | 'null';
const JSON_TYPES = new Set<string>(['string', 'number', 'integer', 'boolean', 'array', 'object', 'null']);

const FAMILY: Record<JsonType, LiteralType> = { string: 'string', number: 'number', integer: 'number', boolean: 'bool', array: 'list', object: 'map', null: 'null' };

function asObject(s: unknown): Record<string, unknown> | undefined {
  return s !== null && typeof s === 'object' && !Array.isArray(s) ? (s as Record<string, unknown>) : undefined;
}

function jsonTypeOfValue(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  return 'object';
}

const typeCache = new WeakMap<object, ReadonlySet<JsonType> | null>();

/** The JSON types a schema allows, or undefined when it does not say (then nothing is checked). */
export function typesOf(schema: unknown): ReadonlySet<JsonType> | undefined {
  const s = asObject(schema);
  if (!s) return undefined;
  const hit = typeCache.get(s);
  if (hit !== undefined) return hit ?? undefined;
  const out = computeTypes(s);
  typeCache.set(s, out ?? null);
  return out;
}

/** One set per single type, shared (so are the families computed from it). */
const SINGLE = new Map<string, ReadonlySet<JsonType>>([...JSON_TYPES].map((t) => [t, new Set([t as JsonType])]));

function computeTypes(s: Record<string, unknown>): ReadonlySet<JsonType> | undefined {
  if ('$ref' in s || '$dynamicRef' in s) return undefined;
  const t = s.type;
  if (typeof t === 'string') return SINGLE.get(t);
  if (Array.isArray(t)) return t.every((x) => typeof x === 'string' && JSON_TYPES.has(x)) ? new Set(t as JsonType[]) : undefined;
  if ('const' in s) return new Set([jsonTypeOfValue(s.const)]);
  if (Array.isArray(s.enum) && s.enum.length > 0) return new Set(s.enum.map(jsonTypeOfValue));
  for (const k of ['anyOf', 'oneOf'] as const) {
    const parts = s[k];
    if (!Array.isArray(parts) || parts.length === 0) continue;
    const all = new Set<JsonType>();
    for (const p of parts) {
      const pt = typesOf(p);
      if (!pt) return undefined;
      for (const x of pt) all.add(x);
    }
    return all;
  }
  return undefined;
}

const familyCache = new WeakMap<ReadonlySet<JsonType>, ReadonlySet<LiteralType>>();

function families(types: ReadonlySet<JsonType>): ReadonlySet<LiteralType> {
  let hit = familyCache.get(types);
  if (!hit) familyCache.set(types, (hit = new Set([...types].map((t) => FAMILY[t]))));
  return hit;
}

function describe(types: ReadonlySet<JsonType>): string {
  const list = [...types];
  return list.length === 1 ? list[0]! : list.slice(0, -1).join(', ') + ' or ' + list[list.length - 1]!;
}

const ARTICLE: Record<LiteralType, string> = { string: 'a string', number: 'a number', bool: 'a bool', bytes: 'bytes', list: 'a list', map: 'a map', null: 'null' };

const NUMBER: readonly LiteralType[] = ['number'];
const BOOL: readonly LiteralType[] = ['bool'];
const STRING: readonly LiteralType[] = ['string'];
const COLLECTION: readonly LiteralType[] = ['list', 'map'];
const SIZED: readonly LiteralType[] = ['string', 'bytes', 'list', 'map'];
const LITERAL = new Map<LiteralType, readonly LiteralType[]>((Object.keys(ARTICLE) as LiteralType[]).map((t) => [t, [t]]));

/** What a use needs, as families any one of which will do (shared lists: this runs for every read at load). */
function needs(use: AttributeUse): readonly LiteralType[] | undefined {
  switch (use.kind) {
    case 'compare':
      return 'literal' in use ? LITERAL.get(use.literal) : undefined;
    case 'number':
      return NUMBER;
    case 'bool':
      return BOOL;
    case 'string':
      return STRING;
    case 'collection':
      return COLLECTION;
    case 'sized':
      return SIZED;
  }
}

/** How to say what a use needs (only for a use that gets an issue). */
function saysOf(use: AttributeUse): string {
  switch (use.kind) {
    case 'compare':
      return 'literal' in use ? `is ${use.op === '+' ? 'added (+) to' : `compared (${use.op}) with`} ${ARTICLE[use.literal]}` : '';
    case 'number':
      return `is used in arithmetic (${use.op}), which needs a number`;
    case 'bool':
      return `is used as a condition (${use.op}), which needs a bool`;
    case 'string':
      return `is used with ${use.op}(), which needs a string`;
    case 'collection':
      return use.op === 'in' ? 'is the right side of `in`, which needs a list or map' : `is used with ${use.op}(), which needs a list or map`;
    case 'sized':
      return 'is used with size(), which needs a string, list or map';
  }
}

function overlap(a: ReadonlySet<LiteralType>, b: ReadonlySet<LiteralType>): boolean {
  for (const f of a) if (b.has(f)) return true;
  return false;
}

/**
 * Whether checkReadTypes would report some use of a read declared as `types`, from the read's raw
 * uses (`otherTypes`: the declared types of the read a comparison's other side is, by index). The
 * check asks this of every read and makes the read's positions and messages only when it is so.
 */
export function someUseUnsupported(uses: readonly RawUse[], types: ReadonlySet<JsonType>, otherTypes: (index: number) => ReadonlySet<JsonType> | undefined): boolean {
  const fam = families(types);
  return uses.some((use) => !fits(use, fam, use.kind === 'compare' && 'other' in use ? otherTypes(use.other) : undefined));
}

/**
 * Whether a use fits a read whose declared type families are `fam`. `other`: for a comparison with
 * another read, that read's declared types (undefined: not known, so it fits).
 */
function fits(use: RawUse | AttributeUse, fam: ReadonlySet<LiteralType>, other: ReadonlySet<JsonType> | undefined): boolean {
  if (use.kind === 'compare' && 'other' in use) return other === undefined || overlap(fam, families(other));
  const need = needs(use as AttributeUse);
  return !need || need.some((f) => fam.has(f));
}

/**
 * Appends an ATTRIBUTE_TYPE issue for each use of `read` its declared type cannot support.
 * `typesAt` answers the declared JSON types of a read (undefined: unknown, not checked); `schema`
 * names where `read` is declared, for the message.
 */
export function checkReadTypes(
  where: string,
  read: AttributeRead,
  typesAt: (read: AttributeRead) => ReadonlySet<JsonType> | undefined,
  schema: (read: AttributeRead) => string,
  issues: PolicyIssue[],
): void {
  if (read.uses.length === 0) return;
  const types = typesAt(read);
  if (!types) return;
  const fam = families(types);
  const path = (r: AttributeRead) => `${r.root}.attributes.${r.path.join('.')}`;
  for (const use of read.uses) {
    const withRead = use.kind === 'compare' && 'other' in use ? use : undefined;
    const otherTypes = withRead ? typesAt(withRead.other) : undefined;
    if (fits(use, fam, otherTypes)) continue;
    const says = withRead ? `is ${withRead.op === '+' ? 'added (+) to' : `compared (${withRead.op}) with`} ${path(withRead.other)}, declared as ${describe(otherTypes!)}` : saysOf(use);
    issues.push({
      ...read.positions[read.positions.length - 1]!,
      code: 'ATTRIBUTE_TYPE',
      message: `${where}: ${path(read)} is declared as ${describe(types)} in ${schema(read)}, but ${says}`,
    });
  }
}
