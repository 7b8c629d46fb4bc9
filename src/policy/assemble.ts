import type { CompiledDerivedRole, CompiledPolicySet, CompiledRule, PolicySetSummary, ResourceTypeIndex } from '../engine/model.js';
import { buildResourceTypeIndex } from './action-index.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import type { Work } from './slices.js';
import type { FileUnit, UnitDocument } from './unit.js';

export const WILDCARD_RESOURCE = '*';

/** A rule ready for an index, with the order key of its document. */
interface OrderedRule {
  readonly key: string;
  readonly rule: CompiledRule;
}

/** Everything built for one resource type from the documents that govern it. */
export interface TypeBuild {
  /** Problems between documents of this type (duplicate names). */
  readonly issues: readonly PolicyIssue[];
  readonly scope: ReadonlyMap<string, CompiledDerivedRole>;
  readonly rules: readonly OrderedRule[];
  /** The type's index; for "*", the fallback index of types without a policy. */
  readonly index: ResourceTypeIndex;
}

/**
 * The set as built from its file units, kept between reloads: a change rebuilds only the types whose
 * documents changed (all of them when a "*" document changed, since "*" rules and derived roles reach
 * every type), and never recompiles an unchanged file.
 */
export interface SetState {
  readonly units: ReadonlyMap<string, FileUnit>;
  /** Files per resource type (including "*"), each list in path order. */
  readonly filesByType: ReadonlyMap<string, readonly string[]>;
  /** One build per resource type, and one for "*". */
  readonly builds: ReadonlyMap<string, TypeBuild>;
}

export const EMPTY_STATE: SetState = { units: new Map(), filesByType: new Map(), builds: new Map() };

/**
 * Rules of a large set repeat the same role and action lists (a template per type): each distinct
 * list is kept once and shared (they are never modified), which keeps thousands of rules small.
 * Bounded: past the limit the table starts afresh (sharing is only an optimisation).
 */
const MAX_SHARED = 4096;
const sharedRoleSets = new Map<string, ReadonlySet<string>>();
const sharedActionLists = new Map<string, readonly string[]>();

function shared<T>(table: Map<string, T>, key: string, make: () => T): T {
  let v = table.get(key);
  if (v === undefined) {
    if (table.size >= MAX_SHARED) table.clear();
    table.set(key, (v = make()));
  }
  return v;
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byOrderKey = (a: UnitDocument, b: UnitDocument) => (a.orderKey < b.orderKey ? -1 : a.orderKey > b.orderKey ? 1 : 0);

function documentsOf(type: string, files: readonly string[], units: ReadonlyMap<string, FileUnit>): UnitDocument[] {
  const docs: UnitDocument[] = [];
  for (const path of files) for (const d of units.get(path)!.documents) if (d.resource === type) docs.push(d);
  return docs.sort(byOrderKey);
}

function where(prev: SourcePosition, at: SourcePosition): string {
  return prev.file === at.file ? `line ${prev.line}` : `${prev.file}:${prev.line}`;
}

/** Builds one type (or "*", with `wildcard` undefined) from its documents. */
function buildType(type: string, docs: readonly UnitDocument[], wildcard: TypeBuild | undefined): TypeBuild {
  const issues: PolicyIssue[] = [];
  const scope = new Map<string, CompiledDerivedRole>();
  const defined = new Map<string, { doc: string; position: SourcePosition }>();
  for (const doc of docs) {
    for (const d of doc.derivedRoles) {
      const prev = defined.get(d.name);
      if (prev) {
        // Twice in one document is reported by the parser; across documents (even of one file), here.
        if (prev.doc !== doc.id) issues.push({ ...d.position, code: 'DUPLICATE_NAME', message: `derived role "${d.name}" for resource "${type}" is already defined at ${where(prev.position, d.position)}` });
        continue;
      }
      defined.set(d.name, { doc: doc.id, position: d.position });
      if (d.role) scope.set(d.name, d.role);
    }
  }
  const wildScope = wildcard?.scope;
  const ruleNames = new Map<string, SourcePosition>();
  const own: OrderedRule[] = [];
  for (const doc of docs) {
    for (const r of doc.rules) {
      const prev = ruleNames.get(r.name);
      if (prev) {
        issues.push({ ...r.position, code: 'DUPLICATE_NAME', message: `rule "${r.name}" for resource "${type}" is already defined at ${where(prev, r.position)}` });
        continue;
      }
      ruleNames.set(r.name, r.position);
      if (r.broken) continue;
      const roles = r.roles ?? [];
      const derivedRoles: CompiledDerivedRole[] = [];
      const staticNames: string[] = [];
      for (const role of roles) {
        const derived = scope.get(role) ?? wildScope?.get(role);
        if (derived) derivedRoles.push(derived);
        else staticNames.push(role);
      }
      const staticRoles = shared(sharedRoleSets, staticNames.join('\0'), () => new Set(staticNames));
      own.push({
        key: doc.orderKey,
        rule: {
          policy: doc.policy,
          name: r.name,
          effect: r.effect,
          actions: shared(sharedActionLists, r.actions.join('\0'), () => r.actions),
          anyRole: roles.length === 0 || roles.includes('*'),
          staticRoles,
          derivedRoles,
          condition: r.condition,
          conditionSource: r.conditionSource,
        },
      });
    }
  }
  if (!wildcard) return { issues, scope, rules: own, index: buildResourceTypeIndex(own.map((o) => o.rule), false) };
  // The type's rules and the "*" rules, in the order of their documents in the set.
  const merged = own.length === 0 ? wildcard.rules : wildcard.rules.length === 0 ? own : [...own, ...wildcard.rules].sort(byKey);
  return { issues, scope, rules: own, index: buildResourceTypeIndex(merged.map((o) => o.rule), true) };
}

export interface AssembleInput {
  readonly previous: SetState;
  readonly units: ReadonlyMap<string, FileUnit>;
  /** Paths whose unit is new, changed or gone since `previous`. */
  readonly touched: ReadonlySet<string>;
}

/** Rebuilds what the touched files affect; returns the new state and every set-level issue. */
export function* assemble(input: AssembleInput): Work<{ state: SetState; issues: PolicyIssue[]; typesChanged: boolean }> {
  const { previous, units, touched } = input;
  const affected = new Set<string>();
  const filesByType = new Map(previous.filesByType);
  for (const path of touched) {
    const before = previous.units.get(path);
    const after = units.get(path);
    for (const type of before?.resources ?? []) {
      affected.add(type);
      const list = filesByType.get(type)!.filter((p) => p !== path);
      if (list.length > 0) filesByType.set(type, list);
      else filesByType.delete(type);
    }
    for (const type of after?.resources ?? []) {
      affected.add(type);
      filesByType.set(type, [...(filesByType.get(type) ?? []).filter((p) => p !== path), path]);
    }
  }
  for (const type of affected) {
    const list = filesByType.get(type);
    if (list) filesByType.set(type, [...list].sort(byPathOrder));
  }
  yield;
  const builds = new Map(previous.builds);
  let typesChanged = false;
  yield;
  const rebuildAll = affected.has(WILDCARD_RESOURCE) || !builds.has(WILDCARD_RESOURCE);
  let wildcard = builds.get(WILDCARD_RESOURCE);
  if (rebuildAll) {
    wildcard = buildType(WILDCARD_RESOURCE, documentsOf(WILDCARD_RESOURCE, filesByType.get(WILDCARD_RESOURCE) ?? [], units), undefined);
    builds.set(WILDCARD_RESOURCE, wildcard);
  }
  const types = rebuildAll ? new Set([...filesByType.keys(), ...affected]) : affected;
  for (const type of types) {
    if (type === WILDCARD_RESOURCE) continue;
    yield;
    const files = filesByType.get(type);
    if (!files !== !previous.builds.has(type)) typesChanged = true;
    if (files) builds.set(type, buildType(type, documentsOf(type, files, units), wildcard));
    else builds.delete(type);
  }
  yield;
  const issues: PolicyIssue[] = [];
  for (const b of builds.values()) if (b.issues.length > 0) issues.push(...b.issues);
  return { state: { units, filesByType, builds }, issues, typesChanged };
}

function byPathOrder(a: string, b: string): number {
  const ka = a.replaceAll('/', '\u0000');
  const kb = b.replaceAll('/', '\u0000');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The engine's view of a state that has no issues. */
export function policySetOf(state: SetState, revision: string, orderedPaths: readonly string[], resourceTypes?: readonly string[]): CompiledPolicySet {
  const indexes = new Map<string, ResourceTypeIndex>();
  let ruleCount = 0;
  for (const [type, build] of state.builds) {
    ruleCount += build.rules.length;
    if (type !== WILDCARD_RESOURCE) indexes.set(type, build.index);
  }
  const fallback = state.builds.get(WILDCARD_RESOURCE)!.index;
  const policies: PolicySetSummary[] = [];
  for (const path of orderedPaths) for (const d of state.units.get(path)!.documents) policies.push(d.summary);
  return {
    revision,
    policies,
    resourceTypes: resourceTypes ?? [...indexes.keys()].sort(),
    ruleCount,
    indexFor: (type) => indexes.get(type) ?? fallback,
  };
}
