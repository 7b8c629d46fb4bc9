import type { CompiledDeclarations, CompiledDerivedRole } from '../engine/model.js';
import type { CheckRequest } from '../engine/request.js';
import type { AttributeRead, RawRead } from './attribute-reads.js';
import type { CompiledDeclarationsUnit, CompiledSchema } from './declarations.js';
import type { PolicyIssue } from './issues.js';
import { checkReadTypes, someUseUnsupported, typesOf, type JsonType } from './type-check.js';
import { didYouMean } from '../engine/suggest.js';
import type { Work } from './slices.js';
import type { FileUnit, UnitDocument } from './unit.js';
import { schemaShape } from './schema-shape.js';

/** What the set-level declarations check found. */
export interface DeclarationsCheck {
  readonly issues: PolicyIssue[];
  /** One line each; e.g. the set declares nothing, so its names go unchecked. */
  readonly warnings: string[];
  /** The run-time side (schemas by type and mode); undefined without declarations. */
  readonly declarations: CompiledDeclarations | undefined;
}

export const NO_DECLARATIONS_WARNING =
  'policy set has no declarations (kind: Declarations): role names and attribute paths are not checked at load, and requests are not checked against schemas (see docs/policies.md, "Declarations")';

/**
 * Checks every document's references against the set's declarations: roles named by rules and
 * parentRoles, and attribute paths read by conditions and variables. The references were collected
 * when each file was compiled (unit.ts), so this is lookups only: no CEL is parsed again. It runs
 * over the whole set on every compile, as sliced work; a read list already found clean under the
 * same schema shape is skipped (ReadsMemo below: ~10 ms at 1,000 types with schemas, from ~30).
 * `withDeclarations`: the paths of the units that hold declarations (the compiler keeps them).
 */
export function* checkDeclarations(
  units: ReadonlyMap<string, FileUnit>,
  withDeclarations: Iterable<string>,
  scopeOf: (type: string) => ReadonlyMap<string, CompiledDerivedRole> | undefined,
): Work<DeclarationsCheck> {
  const all: CompiledDeclarationsUnit[] = [];
  for (const path of withDeclarations) all.push(...units.get(path)!.declarations);
  if (all.length === 0) return { issues: [], warnings: [NO_DECLARATIONS_WARNING], declarations: undefined };
  const issues: PolicyIssue[] = [];
  all.sort((a, b) => (a.document.id < b.document.id ? -1 : a.document.id > b.document.id ? 1 : 0));
  const decl = all[0]!;
  for (const other of all.slice(1)) {
    issues.push({ ...other.document.position, code: 'DUPLICATE_DECLARATIONS', message: `a policy set has one declarations document; ${decl.document.id} already declares this set` });
  }
  const declaredRoles = new Set(decl.document.roles.map((r) => r.name));
  const warnings: string[] = [];
  const unschematized = new Set<string>();
  let n = 0;
  for (const unit of units.values()) {
    for (const doc of unit.documents) {
      if ((++n & 31) === 0) yield;
      checkRoles(doc, declaredRoles, scopeOf, issues);
      checkReads(doc, decl, issues, unschematized);
    }
  }
  if (!decl.document.subject) warnings.push('declarations have no schemas.subject: subject attribute paths are not checked');
  if (unschematized.size > 0) {
    const list = [...unschematized].sort();
    warnings.push(`resource type${list.length === 1 ? '' : 's'} without a schema in the declarations (attribute paths not checked): ${list.slice(0, 10).join(', ')}${list.length > 10 ? `, … (${list.length})` : ''}`);
  }
  return { issues, warnings, declarations: runtimeDeclarations(decl) };
}

function checkRoles(doc: UnitDocument, declared: ReadonlySet<string>, scopeOf: DeclarationsScope, issues: PolicyIssue[]): void {
  const own = doc.resource === '*' ? undefined : scopeOf(doc.resource);
  const wild = scopeOf('*');
  for (const ref of doc.references.roles) {
    if (declared.has(ref.name)) continue;
    const derived = own?.has(ref.name) || wild?.has(ref.name);
    if (ref.parent) {
      const near = didYouMean(ref.name, declared);
      const why = derived ? ' (it is a derived role; parentRoles must be static roles)' : '';
      issues.push({ ...ref.position, code: 'UNDECLARED_ROLE', message: `${ref.where}: parent role "${ref.name}" is not a declared role${why}${near}` });
      continue;
    }
    if (derived) continue;
    const known = [...declared, ...(own?.keys() ?? []), ...(wild?.keys() ?? [])];
    issues.push({
      ...ref.position,
      code: 'UNDECLARED_ROLE',
      message: `${ref.where}: role "${ref.name}" is neither declared (declarations: roles) nor a derived role for resource "${doc.resource}"${didYouMean(ref.name, known)}`,
    });
  }
}

type DeclarationsScope = (type: string) => ReadonlyMap<string, CompiledDerivedRole> | undefined;

/** How a schema answers a field name: its sub-schema, "open" (not checked further), or unknown with the names it knows. */
type Lookup = { kind: 'schema'; schemas: unknown[] } | { kind: 'open' } | { kind: 'unknown'; known: string[] };

function asObject(s: unknown): Record<string, unknown> | undefined {
  return s !== null && typeof s === 'object' && !Array.isArray(s) ? (s as Record<string, unknown>) : undefined;
}

/** One level of a schema, indexed once (schemas repeat the same lookups for every read). */
interface Level {
  /** Nothing below is checked. */
  readonly open: boolean;
  readonly props: ReadonlyMap<string, readonly unknown[]>;
  readonly patterns: readonly (readonly [RegExp, unknown])[];
  readonly extra: readonly unknown[];
  readonly known: readonly string[];
}

const levels = new WeakMap<object, Level>();
const OPEN: Level = { open: true, props: new Map(), patterns: [], extra: [], known: [] };

/**
 * A level is closed when it lists `properties` (or `patternProperties`) and does not allow others
 * (`additionalProperties` absent or false): then only the listed names exist. A schema without
 * properties, with `additionalProperties: true`, or with `$ref` is open: deeper names are not checked.
 */
function levelOf(schema: unknown): Level {
  const s = asObject(schema);
  if (!s || '$ref' in s) return OPEN;
  const hit = levels.get(s);
  if (hit) return hit;
  // Most levels have no combinator: no arrays made for them (a 1,000-type set has a level per type).
  const parts = s.allOf === undefined && s.anyOf === undefined && s.oneOf === undefined ? [s] : [s, ...(['allOf', 'anyOf', 'oneOf'] as const).flatMap((k) => (Array.isArray(s[k]) ? (s[k] as unknown[]).map(asObject).filter((x) => x !== undefined) : []))];
  const props = new Map<string, unknown[]>();
  const patterns: [RegExp, unknown][] = [];
  const extra: unknown[] = [];
  let closed = false;
  let open = false;
  for (const part of parts) {
    const p = asObject(part.properties);
    const pp = asObject(part.patternProperties);
    if (p) {
      closed = true;
      for (const name in p) {
        if (!Object.hasOwn(p, name)) continue;
        const prev = props.get(name);
        if (prev) prev.push(p[name]);
        else props.set(name, [p[name]]);
      }
    }
    if (pp) {
      closed = true;
      for (const [src, sub] of Object.entries(pp)) {
        try {
          patterns.push([new RegExp(src, 'u'), sub]);
        } catch {
          open = true;
        }
      }
    }
    if (part.additionalProperties === true) open = true;
    else if (asObject(part.additionalProperties)) extra.push(part.additionalProperties);
  }
  const level: Level = open || !closed ? OPEN : { open: false, props, patterns, extra, known: [...props.keys()] };
  levels.set(s, level);
  return level;
}

function lookup(schema: unknown, name: string): Lookup {
  const level = levelOf(schema);
  if (level.open) return { kind: 'open' };
  const found: unknown[] = [...(level.props.get(name) ?? [])];
  for (const [re, sub] of level.patterns) if (re.test(name)) found.push(sub);
  if (found.length === 0) found.push(...level.extra);
  if (found.length > 0) return { kind: 'schema', schemas: found };
  return { kind: 'unknown', known: level.known as string[] };
}

/** What the schemas say of one path: the first unknown name, or else its declared types (null: not known). */
interface PathAnswer {
  readonly bad: { index: number; known: string[] } | undefined;
  readonly types: ReadonlySet<JsonType> | null;
}

const UNCHECKED: PathAnswer = { bad: undefined, types: null };

/** The usual read, one name under one schema's level, without the general walk's copies; undefined: walk. */
function resolveInLevel(level: Level, name: string): PathAnswer | undefined {
  if (level.open) return UNCHECKED;
  if (level.patterns.length > 0) return undefined;
  const declared = level.props.get(name);
  if (declared) return { bad: undefined, types: typesOfAll(declared) ?? null };
  if (level.extra.length === 0) return { bad: { index: 0, known: [...level.known] }, types: null };
  return undefined;
}

/**
 * Walks `path` down `schemas` once. A path that reaches an open level (in any of the schemas) is not
 * checked further and has no known type; one where no schema declares a name is unknown there, with
 * the names known at that level; else its types are those every schema it ends at declares
 * (unknown when one of them does not say).
 */
function resolve(schemas: readonly unknown[], path: readonly string[]): PathAnswer {
  if (schemas.length === 1 && path.length === 1) {
    const quick = resolveInLevel(levelOf(schemas[0]), path[0]!);
    if (quick) return quick;
  }
  let current = schemas;
  for (let i = 0; i < path.length; i++) {
    const next: unknown[] = [];
    const known: string[] = [];
    for (const s of current) {
      const l = lookup(s, path[i]!);
      if (l.kind === 'open') return UNCHECKED;
      if (l.kind === 'schema') next.push(...l.schemas);
      else known.push(...l.known);
    }
    if (next.length === 0) return { bad: { index: i, known: [...new Set(known)] }, types: null };
    current = next;
  }
  return { bad: undefined, types: typesOfAll(current) ?? null };
}

/** The JSON types of the schemas a path ends at, or undefined when any of them does not say. */
function typesOfAll(leaves: readonly unknown[]): ReadonlySet<JsonType> | undefined {
  if (leaves.length === 1) return typesOf(leaves[0]);
  const all = new Set<JsonType>();
  for (const leaf of leaves) {
    const t = typesOf(leaf);
    if (!t) return undefined;
    for (const x of t) all.add(x);
  }
  return all;
}

/**
 * The answers of one schema (a mapping), by path: sets read the same few paths of a schema many
 * times (every policy reads the subject's; a thousand types read the same names of theirs), so each
 * is resolved once. Kept per shape by the reads memo below.
 */
function answersOf(schema: Record<string, unknown>): (path: readonly string[]) => PathAnswer {
  const cache = new Map<string, PathAnswer>();
  const level = levelOf(schema);
  return (path) => {
    const key = path.length === 1 ? path[0]! : path.join('\u0000');
    let hit = cache.get(key);
    if (!hit) cache.set(key, (hit = (path.length === 1 ? resolveInLevel(level, key) : undefined) ?? resolve([schema], path)));
    return hit;
  };
}

/**
 * What one declarations unit's checks remember, for as long as the unit lives (a reload that keeps
 * the declarations file keeps it): answers by schema shape, and the read lists (shared by every
 * expression with the same text) already found clean under a shape. Whether a read list is clean
 * depends only on it and on the answers of the subject's and resource's schemas, so a set that
 * repeats its conditions and templates its schemas checks each pair once, not once per type.
 */
interface ReadsMemo {
  readonly answersByShape: Map<string, (path: readonly string[]) => PathAnswer>;
  readonly cleanByShape: Map<string, WeakSet<readonly RawRead[]>>;
}

const memos = new WeakMap<CompiledDeclarationsUnit, ReadsMemo>();

function memoOf(decl: CompiledDeclarationsUnit): ReadsMemo {
  let memo = memos.get(decl);
  if (!memo) memos.set(decl, (memo = { answersByShape: new Map(), cleanByShape: new Map() }));
  return memo;
}

const NO_SCHEMA = '';

function checkReads(doc: UnitDocument, decl: CompiledDeclarationsUnit, issues: PolicyIssue[], unschematized: Set<string>): void {
  const memo = memoOf(decl);
  const resourceSchemas: unknown[] = [];
  // The shape key of the one resource schema (NO_SCHEMA: none); undefined: not memoised ("*").
  let shape: string | undefined;
  if (doc.resource === '*') {
    // A "*" policy reads attributes of every type: a path must be declared for at least one of them.
    for (const c of decl.document.resources.values()) resourceSchemas.push(c.schema);
  } else {
    const own = decl.document.resources.get(doc.resource);
    if (own) {
      resourceSchemas.push(own.schema);
      const one = asObject(own.schema);
      if (one) shape = schemaShape(one);
    } else {
      unschematized.add(doc.resource);
      shape = NO_SCHEMA;
    }
  }
  let clean: WeakSet<readonly RawRead[]> | undefined;
  if (shape !== undefined) {
    clean = memo.cleanByShape.get(shape);
    if (!clean) memo.cleanByShape.set(shape, (clean = new WeakSet()));
  }
  const subjectSchemas = decl.document.subject ? [decl.document.subject.schema] : [];
  /** One schema (a mapping, the usual case): its cached answers; several: resolved each time. */
  const answererOf = (schemas: readonly unknown[]): ((path: readonly string[]) => PathAnswer) | undefined => {
    if (schemas.length === 0) return undefined;
    const one = schemas.length === 1 ? asObject(schemas[0]) : undefined;
    if (!one) return (path) => resolve(schemas, path);
    const key = schemaShape(one);
    let answerer = memo.answersByShape.get(key);
    if (!answerer) memo.answersByShape.set(key, (answerer = answersOf(one)));
    return answerer;
  };
  let subjectAnswer: ((path: readonly string[]) => PathAnswer) | undefined;
  let resourceAnswer: ((path: readonly string[]) => PathAnswer) | undefined;
  let ready = false;
  const answerOf = (read: RawRead | AttributeRead): PathAnswer | undefined => (read.root === 'subject' ? subjectAnswer : resourceAnswer)?.(read.path);
  const typesAt = (read: AttributeRead) => answerOf(read)?.types ?? undefined;
  const schemaName = (read: AttributeRead) => (read.root === 'subject' ? 'schemas.subject' : doc.resource === '*' ? 'schemas.resources' : `schemas.resources.${doc.resource}`);
  for (const group of doc.references.readGroups) {
    const raw = group.raw;
    if (clean?.has(raw)) continue;
    if (!ready) {
      subjectAnswer = answererOf(subjectSchemas);
      resourceAnswer = answererOf(resourceSchemas);
      ready = true;
    }
    const before = issues.length;
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!;
      const answer = answerOf(r);
      if (!answer) continue;
      if (answer.bad) report(doc, group.where, group.read(i), answer.bad, issues);
      // Nothing to check without uses, or when the path's type is not known; the read (positions,
      // messages) is made only when one of its uses does not fit.
      else if (r.uses.length > 0 && answer.types && someUseUnsupported(r.uses, answer.types, (j) => answerOf(raw[j]!)?.types ?? undefined)) {
        checkReadTypes(group.where, group.read(i), typesAt, schemaName, issues);
      }
    }
    if (issues.length === before) clean?.add(raw);
  }
}

function report(doc: UnitDocument, where: string, read: AttributeRead, bad: { index: number; known: string[] }, issues: PolicyIssue[]): void {
  const name = read.path[bad.index]!;
  const path = `${read.root}.attributes.${read.path.slice(0, bad.index + 1).join('.')}`;
  const schema = read.root === 'subject' ? 'schemas.subject' : doc.resource === '*' ? 'any schemas.resources entry' : `schemas.resources.${doc.resource}`;
  issues.push({
    ...read.positions[bad.index]!,
    code: 'UNKNOWN_ATTRIBUTE',
    message: `${where}: ${path} is not declared in ${schema}${didYouMean(name, bad.known)}`,
  });
}

/** The request check the engine runs before deciding (off: never called). */
function runtimeDeclarations(decl: CompiledDeclarationsUnit): CompiledDeclarations {
  const subject: CompiledSchema | undefined = decl.subject;
  const resources = decl.resources;
  return {
    mode: decl.document.mode,
    warm: decl.warm,
    checkRequest(request: CheckRequest): string[] {
      const out: string[] = [];
      subject?.check(request.subject.attributes, 'subject.attributes', out);
      resources.get(request.resource.type)?.check(request.resource.attributes, 'resource.attributes', out);
      return out;
    },
  };
}
