/**
 * A key for the top level of a JSON Schema object: two schemas with the same key have the same
 * property names mapped to the very same sub-schema objects, the same `required`, `type` and
 * `additionalProperties`, so compiling or checking against one is the same as against the other.
 *
 * Large sets template their schemas: a thousand types list the same few property schemas, and the
 * YAML reader shares a repeated flow mapping (`{ type: string }`) as one object. Keyed by shape,
 * the declarations compile and the load-time check do their work once per distinct shape rather
 * than once per type (issue 13: a 1,000-type set with schemas loads within 20% of one without).
 *
 * Only the usual form (type, properties, required, additionalProperties and string annotations) is
 * keyed by content; any other schema gets a key of its own (its identity), so nothing is shared
 * that might differ.
 */

const OBJECT_ID = new WeakMap<object, number>();
let nextObjectId = 1;
const SHAPES = new WeakMap<object, string>();
const USUAL_KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties', 'description', 'title', '$comment']);
const ANNOTATIONS = ['description', 'title', '$comment'] as const;

function idOf(o: object): number {
  let id = OBJECT_ID.get(o);
  if (id === undefined) OBJECT_ID.set(o, (id = nextObjectId++));
  return id;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A primitive as part of a key (strings quoted, so `"1"` and `1` differ). */
function atom(v: unknown): string | undefined {
  if (v === undefined) return 'u';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  return undefined;
}

function usualShape(s: Record<string, unknown>): string | undefined {
  for (const k in s) if (!USUAL_KEYWORDS.has(k)) return undefined;
  for (const a of ANNOTATIONS) if (s[a] !== undefined && typeof s[a] !== 'string') return undefined;
  const type = atom(s.type);
  if (type === undefined) return undefined;
  let key = `t${type}`;
  if (s.properties !== undefined) {
    if (!isPlainObject(s.properties)) return undefined;
    key += '|p';
    for (const name in s.properties) {
      if (!Object.hasOwn(s.properties, name)) continue;
      const sub = s.properties[name];
      const part = isPlainObject(sub) ? `#${idOf(sub)}` : atom(sub);
      if (part === undefined) return undefined;
      // The name length-prefixed, the part ended by NUL (which neither an id nor an atom holds:
      // JSON writes it escaped): no key can be read as that of other properties.
      key += `${name.length}:${name}${part}\u0000`;
    }
  }
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || !s.required.every((r) => typeof r === 'string')) return undefined;
    key += `|r${JSON.stringify(s.required)}`;
  }
  const extra = s.additionalProperties;
  const extraPart = isPlainObject(extra) ? `#${idOf(extra)}` : typeof extra === 'boolean' || extra === undefined ? atom(extra) : undefined;
  if (extraPart === undefined) return undefined;
  return `${key}|a${extraPart}`;
}

/** The shape key of a schema object (kept per object: a set's schemas are keyed once). */
export function schemaShape(schema: object): string {
  let key = SHAPES.get(schema);
  if (key === undefined) {
    key = (isPlainObject(schema) ? usualShape(schema) : undefined) ?? `!${idOf(schema)}`;
    SHAPES.set(schema, key);
  }
  return key;
}
