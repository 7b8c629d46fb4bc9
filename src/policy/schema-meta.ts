/**
 * A quick "certainly valid" answer for the JSON Schemas declarations usually hold, so ajv need not
 * compile the draft-07 meta-schema (about as costly as loading ajv) just to say yes. It accepts a
 * schema only when every keyword is one of a few whose meta-schema rule is simple and is checked
 * here exactly as the draft-07 meta-schema states it (node_modules/ajv/dist/refs/json-schema-draft-07.json):
 *
 *   type                      one of the simple types, or a non-empty array of distinct ones
 *   enum                      a non-empty array of distinct values (here: strings, finite numbers, bools, null)
 *   const                     anything
 *   minimum maximum exclusiveMinimum exclusiveMaximum   a number
 *   multipleOf                a number > 0
 *   minLength maxLength minItems maxItems               an integer >= 0
 *   items                     a schema (itself accepted here)
 *   description title $comment format                  a string
 *   uniqueItems               a bool
 *
 * Anything else (another keyword, another form, a number JSON cannot write) is "not known" and the
 * caller asks ajv, whose answer and wording stand. So this never accepts a schema ajv would refuse;
 * test/fuzz/schema-meta.test.ts checks that against ajv on generated schemas.
 */

const SIMPLE_TYPES = new Set(['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']);
const NUMBER_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']);
const COUNT_KEYWORDS = new Set(['minLength', 'maxLength', 'minItems', 'maxItems']);
const STRING_KEYWORDS = new Set(['description', 'title', '$comment', 'format']);

/** Deeper than this is left to ajv (the check recurses through `items`). */
const MAX_DEPTH = 16;

/** True when `schema` is certainly valid against the draft-07 meta-schema; false means "ask ajv". */
export function certainlyValidSchema(schema: unknown, depth = 0): boolean {
  if (typeof schema === 'boolean') return true;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || depth > MAX_DEPTH) return false;
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'type') {
      if (typeof value === 'string') {
        if (!SIMPLE_TYPES.has(value)) return false;
      } else if (!Array.isArray(value) || value.length === 0 || !value.every((t) => typeof t === 'string' && SIMPLE_TYPES.has(t)) || new Set(value).size !== value.length) return false;
    } else if (key === 'enum') {
      if (!Array.isArray(value) || value.length === 0 || !value.every(isScalar) || new Set(value).size !== value.length) return false;
    } else if (key === 'const') {
      continue;
    } else if (NUMBER_KEYWORDS.has(key)) {
      if (!isFiniteNumber(value)) return false;
    } else if (key === 'multipleOf') {
      if (!isFiniteNumber(value) || value <= 0) return false;
    } else if (COUNT_KEYWORDS.has(key)) {
      if (!Number.isInteger(value) || (value as number) < 0) return false;
    } else if (key === 'items') {
      if (Array.isArray(value) || !certainlyValidSchema(value, depth + 1)) return false;
    } else if (STRING_KEYWORDS.has(key)) {
      if (typeof value !== 'string') return false;
    } else if (key === 'uniqueItems') {
      if (typeof value !== 'boolean') return false;
    } else return false;
  }
  return true;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Values whose equality is `===` (so a Set finds duplicates as the meta-schema's uniqueItems does). */
function isScalar(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || isFiniteNumber(v);
}

/** The one type a type-specific keyword applies to (ajv's strictTypes; `integer` counts as `number`). */
const KEYWORD_TYPE: Record<string, string> = {
  minimum: 'number',
  maximum: 'number',
  exclusiveMinimum: 'number',
  exclusiveMaximum: 'number',
  multipleOf: 'number',
  minLength: 'string',
  maxLength: 'string',
  minItems: 'array',
  maxItems: 'array',
  items: 'array',
  uniqueItems: 'array',
};

/**
 * True when ajv, configured as declarations configure it (strict mode, no formats registered),
 * certainly compiles `schema`: it is certainly valid (above), has no `format`, at most one `type`
 * (strict mode refuses union types), and every type-specific keyword sits beside the type it
 * applies to (strict mode refuses `minimum` without `type: number`). Such a schema can be compiled
 * when first needed instead of at load; false means "compile it at load" (ajv's errors stand).
 * test/fuzz/schema-meta.test.ts checks it against ajv's compile on generated schemas.
 */
export function certainlyCompiles(schema: unknown, depth = 0): boolean {
  if (typeof schema === 'boolean') return true;
  if (depth === 0 && !certainlyValidSchema(schema)) return false;
  const s = schema as Record<string, unknown>;
  if ('format' in s || (s.type !== undefined && typeof s.type !== 'string')) return false;
  const type = s.type === 'integer' ? 'number' : (s.type as string | undefined);
  for (const key of Object.keys(s)) {
    const applies = KEYWORD_TYPE[key];
    if (applies !== undefined && applies !== type) return false;
  }
  return s.items === undefined || certainlyCompiles(s.items, depth + 1);
}
