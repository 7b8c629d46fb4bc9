import type { ErrorObject, Options as AjvOptions, ValidateFunction } from 'ajv';
import { lazyModule } from '../files/lazy-module.js';
import type { Node } from 'yaml';
import { isMap, isScalar, isSeq } from '../files/yaml-lazy.js';
import { compilePattern } from '../cel/regex.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import type { YamlReader } from './yaml-reader.js';
import { PLAIN_VALUE } from './yaml-fast.js';
import { certainlyCompiles, certainlyValidSchema } from './schema-meta.js';
import { schemaShape } from './schema-shape.js';

/**
 * `kind: Declarations`: what a policy set declares about the world its rules talk about. One such
 * document per set (conventionally `_declarations.yaml` at the policy root):
 *
 *   apiVersion: verdict/v1
 *   kind: Declarations
 *   roles: [employee, editor, admin]       # the static roles subjects carry
 *   schemas:
 *     mode: warn                           # off | warn | enforce: requests checked at run time
 *     subject: { JSON Schema of subject.attributes }
 *     resources:
 *       document: { JSON Schema of resource.attributes for type "document" }
 *
 * At load, every role a rule or a derived role's parentRoles names must be declared here or be a
 * derived role in scope, and every attribute path a condition reads is checked against the schema
 * (src/policy/declared-check.ts). Schemas are compiled once, here, with ajv.
 */

export type SchemaMode = 'off' | 'warn' | 'enforce';
export const SCHEMA_MODES: readonly SchemaMode[] = ['off', 'warn', 'enforce'];
export const DECLARATIONS_KIND = 'Declarations';

const DECLARATION_FIELDS = ['apiVersion', 'kind', 'description', 'roles', 'schemas'] as const;
const SCHEMA_FIELDS = ['mode', 'subject', 'resources'] as const;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9_.:\-]*$/;

/** A JSON Schema as written (plain JSON), with where it starts in the file. */
export interface SchemaSource {
  readonly schema: unknown;
  readonly position: SourcePosition;
}

export interface DeclarationsDocument {
  readonly id: string;
  readonly file: string;
  readonly position: SourcePosition;
  readonly roles: readonly { readonly name: string; readonly position: SourcePosition }[];
  readonly mode: SchemaMode;
  readonly subject: SchemaSource | undefined;
  readonly resources: ReadonlyMap<string, SchemaSource>;
}

/** The value of a YAML node as plain JSON (works on precise and fast-read nodes alike). */
export function plainValue(node: Node | null | undefined): unknown {
  if (node === null || node === undefined) return null;
  // A fast-read node keeps the value it was made from (nothing else holds or changes that value).
  const plain = (node as { [PLAIN_VALUE]?: unknown })[PLAIN_VALUE];
  if (plain !== undefined) return plain;
  if (isScalar(node)) return node.value;
  if (isSeq(node)) return (node.items as Node[]).map(plainValue);
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items as { key: Node; value: Node | null }[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(plainValue(pair.key));
      Object.defineProperty(out, key, { value: plainValue(pair.value), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return null;
}

/** The `kind` of a document root, if it is a mapping with a string `kind`. */
export function kindOf(root: Node | null): string | undefined {
  if (!isMap(root)) return undefined;
  for (const pair of root.items as { key: Node; value: Node | null }[]) {
    if (isScalar(pair.key) && pair.key.value === 'kind' && isScalar(pair.value) && typeof pair.value.value === 'string') return pair.value.value;
  }
  return undefined;
}

/** Reads a `kind: Declarations` document; every problem is an issue of `reader`. */
export function readDeclarations(reader: YamlReader, root: Node | null, id: string, apiVersion: string): DeclarationsDocument | undefined {
  const position = reader.positionOf(root);
  const map = reader.asMap(root, 'a declarations document', position);
  if (!map) return undefined;
  const fields = reader.entries(map, DECLARATION_FIELDS, 'declarations');
  const versionNode = reader.required(fields, 'apiVersion', 'declarations', position);
  if (versionNode !== undefined) {
    const v = reader.asString(versionNode, 'apiVersion', position);
    if (v !== undefined && v !== apiVersion) reader.report('UNSUPPORTED_API_VERSION', `apiVersion "${v}" is not supported (use "${apiVersion}")`, reader.positionOf(versionNode));
  }
  const roles: { name: string; position: SourcePosition }[] = [];
  const rolesNode = fields.get('roles')?.value;
  if (rolesNode !== undefined && rolesNode !== null) {
    const seen = new Set<string>();
    for (const r of reader.stringList(rolesNode, 'declarations: roles', position) ?? []) {
      if (!ROLE.test(r.value) || r.value === '*') reader.report('INVALID_VALUE', `declarations: role "${r.value}" must be letters, digits and _ . : -`, r.position);
      else if (seen.has(r.value)) reader.report('DUPLICATE_NAME', `declarations: role "${r.value}" is declared twice`, r.position);
      else {
        seen.add(r.value);
        roles.push({ name: r.value, position: r.position });
      }
    }
  }
  let mode: SchemaMode = 'warn';
  let subject: SchemaSource | undefined;
  const resources = new Map<string, SchemaSource>();
  const schemasNode = fields.get('schemas')?.value;
  if (schemasNode !== undefined && schemasNode !== null) {
    const sm = reader.asMap(schemasNode, 'declarations: schemas', position);
    if (sm) {
      const sf = reader.entries(sm, SCHEMA_FIELDS, 'declarations: schemas');
      const modeNode = sf.get('mode')?.value;
      if (modeNode !== undefined && modeNode !== null) {
        const m = reader.asString(modeNode, 'declarations: schemas.mode', position);
        if (m !== undefined) {
          if ((SCHEMA_MODES as readonly string[]).includes(m)) mode = m as SchemaMode;
          else reader.report('INVALID_VALUE', `declarations: schemas.mode "${m}" must be one of ${SCHEMA_MODES.join(', ')}`, reader.positionOf(modeNode));
        }
      }
      const subjectNode = sf.get('subject')?.value;
      if (subjectNode !== undefined && subjectNode !== null) subject = { schema: plainValue(subjectNode), position: reader.positionOf(subjectNode) };
      const resNode = sf.get('resources')?.value;
      if (resNode !== undefined && resNode !== null) {
        const rm = reader.asMap(resNode, 'declarations: schemas.resources', position);
        for (const pair of (rm?.items ?? []) as { key: Node; value: Node | null }[]) {
          const type = reader.asString(pair.key, 'resource type', position);
          if (type !== undefined) resources.set(type, { schema: plainValue(pair.value), position: reader.positionOf(pair.value ?? pair.key) });
        }
      }
    }
  }
  return { id, file: reader.file, position, roles, mode, subject, resources };
}

/** A schema compiled once at load: `check` lists what is wrong with a value, [] when it matches. */
export interface CompiledSchema {
  readonly source: SchemaSource;
  /** Appends what is wrong with `value` (as lines starting with `prefix`) to `out`, up to MAX_SCHEMA_PROBLEMS. */
  check(value: unknown, prefix: string, out: string[]): void;
}

export interface CompiledDeclarationsUnit {
  readonly document: DeclarationsDocument;
  readonly subject: CompiledSchema | undefined;
  readonly resources: ReadonlyMap<string, CompiledSchema>;
  /** Compiles the validators left for first use (see compileDeclarations), e.g. just after a start. */
  warm(): void;
}

/** A property's validator: compiled at load, or on first use when it certainly compiles. */
type Validator = () => ValidateFunction;

// ajv ships CommonJS with a default export; under NodeNext the class is on `.default`.
type AjvInstance = { compile(schema: object): ValidateFunction; validateSchema(schema: object): boolean | Promise<unknown>; errorsText(errors?: ErrorObject[] | null): string; errors?: ErrorObject[] | null };
// Loaded with the first declarations (a set without them never loads ajv; docs/performance.md, "Cold start").
const ajvModule = lazyModule<{ default?: unknown }>('ajv');
const ajvClass = (): new (options: AjvOptions) => AjvInstance => (ajvModule().default ?? ajvModule()) as new (options: AjvOptions) => AjvInstance;

/**
 * One validator per declarations file. `pattern` keywords run on RE2 (linear time whatever the
 * request sends); strict mode makes a misspelt keyword (`porperties`) a load error rather than a
 * schema that silently accepts everything.
 */
function newAjv(): AjvInstance {
  const regExp = (pattern: string) => compilePattern(pattern) as unknown as RegExp;
  const Ajv = ajvClass();
  // validateSchema: false: compileDeclarations validates every schema before compiling it (and so
  // ajv compiles the meta-schema only when a schema is not certainly valid, schema-meta.ts).
  return new Ajv({ allErrors: true, strict: true, validateSchema: false, code: { regExp: regExp as unknown as NonNullable<AjvOptions['code']>['regExp'] } });
}

/** Keywords of an object schema that Verdict checks itself, compiling only its property schemas with ajv. */
const OBJECT_KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties', 'description', 'title', '$comment']);

function plainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `{type: object, properties, required, additionalProperties}` at this level (what is below: `refersAcross`). */
function simpleObjectLevel(s: Record<string, unknown>): boolean {
  if (s.type !== 'object') return false;
  for (const k of Object.keys(s)) if (!OBJECT_KEYWORDS.has(k)) return false;
  if (s.properties !== undefined && !plainObject(s.properties)) return false;
  if (s.required !== undefined && !(Array.isArray(s.required) && s.required.every((r) => typeof r === 'string'))) return false;
  return s.additionalProperties === undefined || typeof s.additionalProperties === 'boolean' || plainObject(s.additionalProperties);
}

/** Whether JSON text names `$ref` or `$dynamicRef` anywhere (then the schema is compiled whole). */
function refersAcross(text: string): boolean {
  return text.includes('"$ref"') || text.includes('"$dynamicRef"');
}

/**
 * The draft-07 meta-schema's own checks of a level `simpleObjectLevel` accepted (type, properties
 * and required's shape are checked there): `required` has no name twice; the annotations are strings.
 */
function simpleLevelValid(s: Record<string, unknown>): boolean {
  const required = (s.required ?? []) as string[];
  if (new Set(required).size !== required.length) return false;
  for (const k of ['description', 'title', '$comment']) if (s[k] !== undefined && typeof s[k] !== 'string') return false;
  return true;
}

/** Whether a plain JSON value holds an infinite or NaN number (which JSON.stringify writes as null). */
function hasNonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (Array.isArray(v)) return v.some(hasNonFinite);
  return plainObject(v) && Object.values(v).some(hasNonFinite);
}

const pointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Compiles every schema of a declarations document once: at load, or, for a property schema ajv
 * certainly compiles, when first needed (see `validator` below). Large sets repeat the same
 * attribute schemas across types (a template per type), and ajv spends about a millisecond on each
 * compile: so an object schema of the usual form (type, properties, required, additionalProperties)
 * is checked by Verdict at that level, and each distinct property schema is compiled by ajv once and
 * shared. Any other schema is compiled by ajv whole. Every schema is first validated against the
 * JSON Schema meta-schema: an object schema of the usual form as its level plus each distinct
 * property schema once (what the meta-schema checks of it), any other whole.
 */
export function compileDeclarations(document: DeclarationsDocument, issues: PolicyIssue[]): CompiledDeclarationsUnit {
  // ajv itself is loaded and set up only when something is compiled or validated with it.
  let instance: AjvInstance | undefined;
  const ajv = (): AjvInstance => (instance ??= newAjv());
  const byText = new Map<string, ValidateFunction>();
  const shared = (schema: unknown, text = JSON.stringify(schema)): ValidateFunction => {
    // JSON writes .inf and NaN as null: such a schema's text does not say which it is, so it is
    // compiled on its own ({const: .inf} must not share {const: null}'s validator).
    if (text.includes('null') && hasNonFinite(schema)) return ajv().compile(schema as object);
    let v = byText.get(text);
    if (!v) byText.set(text, (v = ajv().compile(schema as object)));
    return v;
  };
  // A property schema ajv certainly compiles (schema-meta.ts) is compiled when a request first
  // needs it (or by warm()): loading ajv and compiling a thousand types' distinct property schemas
  // was a fifth of a 1,000-type set's load (issue 13). Any other is compiled here, so its errors
  // are load errors as before.
  const later = new Map<string, Validator>();
  const pending: Validator[] = [];
  const validator = (schema: unknown, text: string): Validator => {
    if (text.includes('null') && hasNonFinite(schema)) {
      // its text does not say what it is (see `shared`): its own validator, now
      const own = shared(schema, text);
      return () => own;
    }
    let v = later.get(text);
    if (v) return v;
    if (!certainlyCompiles(schema)) {
      const now = shared(schema, text);
      v = () => now;
    } else {
      let made: ValidateFunction | undefined;
      v = () => (made ??= shared(schema, text));
      pending.push(v);
    }
    later.set(text, v);
    return v;
  };
  // Whether a property schema is valid against the meta-schema, by its JSON text: the same few
  // property schemas repeat across a thousand types, and validating each whole schema again cost
  // more than everything else here (issue 13).
  const metaValid = new Map<string, boolean>();
  const validSub = (sub: unknown, text: string): boolean => {
    if (typeof sub === 'boolean') return true;
    // Own `$schema` would make ajv pick another meta-schema for it alone, and JSON writes .inf as
    // null (so the text would not say which it is): validate the whole instead.
    if (!plainObject(sub) || Object.hasOwn(sub, '$schema') || (text.includes('null') && hasNonFinite(sub))) return false;
    let ok = metaValid.get(text);
    if (ok === undefined) metaValid.set(text, (ok = certainlyValidSchema(sub) || ajv().validateSchema(sub) === true));
    return ok;
  };
  // A property schema's JSON text, once per object: the reader shares a flow mapping repeated in
  // the file (the same property schema for a thousand types), so most are one object.
  const texts = new WeakMap<object, string>();
  const textOf = (sub: unknown): string => {
    if (!plainObject(sub)) return JSON.stringify(sub);
    let t = texts.get(sub);
    if (t === undefined) texts.set(sub, (t = JSON.stringify(sub)));
    return t;
  };
  // Types whose schemas have one shape (schema-shape.ts: the same names for the same property
  // schema objects) share one check: a templated set compiles a handful, not one per type.
  const checkByShape = new Map<string, CompiledSchema['check']>();
  const compile = (source: SchemaSource, where: string): CompiledSchema | undefined => {
    const s = source.schema;
    if (!plainObject(s)) {
      issues.push({ ...source.position, code: 'INVALID_SCHEMA', message: `${where}: a schema must be a mapping (a JSON Schema object)` });
      return undefined;
    }
    const shape = schemaShape(s);
    const known = checkByShape.get(shape);
    if (known) return { source, check: known };
    const made = compileLevel(source, s, where);
    if (made) checkByShape.set(shape, made.check);
    return made;
  };
  const compileLevel = (source: SchemaSource, s: Record<string, unknown>, where: string): CompiledSchema | undefined => {
    try {
      const validateWhole = () => {
        if (ajv().validateSchema(s) !== true) throw new Error(ajv().errorsText(ajv().errors));
      };
      const simple = simpleObjectLevel(s);
      const subs = simple ? Object.entries((s.properties ?? {}) as Record<string, unknown>).map(([name, sub]) => ({ name, sub, text: textOf(sub) })) : [];
      const extra = s.additionalProperties;
      const extraText = simple && plainObject(extra) ? textOf(extra) : undefined;
      // A `$ref` anywhere (or a property or required name that reads like one) may refer across
      // the schema: compiled whole, like any schema not of the usual form.
      const names = [...subs.map((p) => p.name), ...((s.required ?? []) as string[])];
      if (!simple || subs.some((p) => refersAcross(p.text)) || (extraText !== undefined && refersAcross(extraText)) || names.some((n) => n === '$ref' || n === '$dynamicRef')) {
        validateWhole();
        const whole = shared(s, JSON.stringify(s));
        return { source, check: (value, prefix, out) => void (whole(value) || describeSchemaErrors(prefix, whole.errors, out)) };
      }
      // The draft-07 meta-schema checks each property schema (and an additionalProperties schema)
      // with `$ref: "#"`, i.e. as a schema on its own: the whole is valid when the few keywords of
      // this level are and each of those is. Anything short of that validates the whole, as before,
      // so a problem is reported in ajv's words for the whole schema.
      const fastValid = simpleLevelValid(s) && subs.every((p) => validSub(p.sub, p.text)) && (extraText === undefined || validSub(extra, extraText));
      if (!fastValid) validateWhole();
      const props = new Map<string, Validator>();
      for (const { name, sub, text: subText } of subs) props.set(name, validator(sub, subText));
      const required = (s.required ?? []) as string[];
      const extraCheck = extraText !== undefined ? validator(extra, extraText) : undefined;
      return { source, check: objectCheck(props, required, extra === false, extraCheck) };
    } catch (err) {
      issues.push({ ...source.position, code: 'INVALID_SCHEMA', message: `${where}: ${(err as Error).message.split('\n')[0]}` });
      return undefined;
    }
  };
  const subject = document.subject && compile(document.subject, 'schemas.subject');
  const resources = new Map<string, CompiledSchema>();
  for (const [type, source] of document.resources) {
    const c = compile(source, `schemas.resources.${type}`);
    if (c) resources.set(type, c);
  }
  return { document, subject, resources, warm: () => pending.splice(0).forEach((v) => v()) };
}

/** The object level checked here, with ajv's wording; property values by their shared ajv validators. */
function objectCheck(props: ReadonlyMap<string, Validator>, required: readonly string[], closed: boolean, extra: Validator | undefined): CompiledSchema['check'] {
  return (value, prefix, out) => {
    if (!plainObject(value)) {
      out.push(`${prefix}: must be object`);
      return;
    }
    for (const r of required) {
      if (out.length >= MAX_SCHEMA_PROBLEMS) return;
      if (!Object.hasOwn(value, r)) out.push(truncateBytes(`${prefix}: must have required property '${r}'`, MAX_SCHEMA_PROBLEM_BYTES));
    }
    for (const key of Object.keys(value)) {
      if (out.length >= MAX_SCHEMA_PROBLEMS) return;
      const validator = props.get(key) ?? extra;
      if (validator) {
        let v: ValidateFunction;
        try {
          v = validator();
        } catch {
          // certainlyCompiles promised otherwise: report it (enforce mode denies), never pass it
          out.push(truncateBytes(`${prefix}/${pointer(key)}: its schema could not be compiled`, MAX_SCHEMA_PROBLEM_BYTES));
          continue;
        }
        if (!v(value[key])) describeSchemaErrors(`${prefix}/${pointer(key)}`, v.errors, out);
      } else if (closed) out.push(truncateBytes(`${prefix}: must NOT have additional properties "${key}"`, MAX_SCHEMA_PROBLEM_BYTES));
    }
  };
}

/** Problems reported per request, and the bytes of each: a request cannot make a decision (or its event) large. */
export const MAX_SCHEMA_PROBLEMS = 8;
export const MAX_SCHEMA_PROBLEM_BYTES = 160;

/** ajv's errors as short lines, e.g. `resource.attributes/amount: must be number`; bounded. */
export function describeSchemaErrors(prefix: string, errors: readonly ErrorObject[] | null | undefined, out: string[]): void {
  for (const e of errors ?? []) {
    if (out.length >= MAX_SCHEMA_PROBLEMS) return;
    let extra = '';
    if (e.keyword === 'additionalProperties') extra = ` "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`;
    out.push(truncateBytes(`${prefix}${e.instancePath}: ${e.message ?? e.keyword}${extra}`, MAX_SCHEMA_PROBLEM_BYTES));
  }
}

/** `text` cut to at most `max` UTF-8 bytes (ending in "…" when cut), never splitting a character. */
export function truncateBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 3; // the ellipsis
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > max) break;
    out += ch;
    bytes += b;
  }
  return `${out}…`;
}
