import type { CompiledDerivedRole, CompiledPolicySet, CompiledRule, PolicySetSummary, ResourceTypeIndex } from '../engine/model.js';
import { buildResourceTypeIndex } from './action-index.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import { LayeredMap } from './layered-map.js';
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
  readonly units: LayeredMap<string, FileUnit>;
  /** Files per resource type (including "*"), each list in path order. */
  readonly filesByType: LayeredMap<string, readonly string[]>;
  /** One build per resource type, and one for "*". */
  readonly builds: LayeredMap<string, TypeBuild>;
  /** Each build's index, by type: what a check looks up, one object nearer than through its build. */
  readonly indexes: LayeredMap<string, ResourceTypeIndex>;
  /** Types whose build has issues (kept so that a change does not look at every type). */
  readonly typesWithIssues: ReadonlySet<string>;
  /** Rules of every build ("*" included), kept up to date per change. */
  readonly ruleCount: number;
}

export const EMPTY_STATE: SetState = { units: LayeredMap.of(), filesByType: LayeredMap.of(), builds: LayeredMap.of(), indexes: LayeredMap.of(), typesWithIssues: new Set(), ruleCount: 0 };

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

/** Most rules have no derived role: they share this list rather than each holding an empty one. */
const NO_DERIVED_ROLES: readonly CompiledDerivedRole[] = [];

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
          derivedRoles: derivedRoles.length > 0 ? derivedRoles : NO_DERIVED_ROLES,
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
  readonly units: LayeredMap<string, FileUnit>;
  /** Paths whose unit is new, changed or gone since `previous`. */
  readonly touched: ReadonlySet<string>;
}

/** Rebuilds what the touched files affect; returns the new state and every set-level issue. */
export function* assemble(input: AssembleInput): Work<{ state: SetState; issues: PolicyIssue[]; typesChanged: boolean }> {
  const { previous, units, touched } = input;
  const affected = new Set<string>();
  const byType = previous.filesByType.edit();
  for (const path of touched) {
    const before = previous.units.get(path);
    const after = units.get(path);
    for (const type of before?.resources ?? []) {
      affected.add(type);
      const list = byType.get(type)!.filter((p) => p !== path);
      if (list.length > 0) byType.set(type, list);
      else byType.delete(type);
    }
    for (const type of after?.resources ?? []) {
      affected.add(type);
      byType.set(type, [...(byType.get(type) ?? []).filter((p) => p !== path), path]);
    }
  }
  for (const type of affected) {
    const list = byType.get(type);
    if (list) byType.set(type, [...list].sort(byPathOrder));
  }
  const filesByType = byType.done();
  yield;
  const builds = previous.builds.edit();
  const indexes = previous.indexes.edit();
  let ruleCount = previous.ruleCount;
  let typesWithIssues = previous.typesWithIssues;
  const put = (type: string, build: TypeBuild | undefined): void => {
    const before = builds.get(type);
    ruleCount += (build?.rules.length ?? 0) - (before?.rules.length ?? 0);
    if (build) {
      builds.set(type, build);
      indexes.set(type, build.index);
    } else {
      builds.delete(type);
      indexes.delete(type);
    }
    const had = typesWithIssues.has(type);
    const has = build !== undefined && build.issues.length > 0;
    if (had !== has) {
      const next = new Set(typesWithIssues);
      if (has) next.add(type);
      else next.delete(type);
      typesWithIssues = next;
    }
  };
  let typesChanged = false;
  yield;
  const rebuildAll = affected.has(WILDCARD_RESOURCE) || !builds.has(WILDCARD_RESOURCE);
  let wildcard = builds.get(WILDCARD_RESOURCE);
  if (rebuildAll) {
    wildcard = buildType(WILDCARD_RESOURCE, documentsOf(WILDCARD_RESOURCE, filesByType.get(WILDCARD_RESOURCE) ?? [], units), undefined);
    put(WILDCARD_RESOURCE, wildcard);
  }
  const types = rebuildAll ? new Set([...filesByType.keys(), ...affected]) : affected;
  for (const type of types) {
    if (type === WILDCARD_RESOURCE) continue;
    yield;
    const files = filesByType.get(type);
    if (!files !== !previous.builds.has(type)) typesChanged = true;
    put(type, files ? buildType(type, documentsOf(type, files, units), wildcard) : undefined);
  }
  yield;
  const issues: PolicyIssue[] = [];
  for (const type of typesWithIssues) issues.push(...builds.get(type)!.issues);
  return { state: { units, filesByType, builds: builds.done(), indexes: indexes.done(), typesWithIssues, ruleCount }, issues, typesChanged };
}

function byPathOrder(a: string, b: string): number {
  const ka = a.replaceAll('/', '\u0000');
  const kb = b.replaceAll('/', '\u0000');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The sorted type names of a set, computed when first asked and shared while no type comes or goes. */
export interface TypeListMemo {
  value?: readonly string[];
}

/**
 * The engine's view of a state that has no issues. Nothing here walks the whole set: a check looks
 * its type up in the builds, and the lists only GetPolicySet and logs need (the documents, the type
 * names) are made when first asked for.
 */
export function policySetOf(
  state: SetState,
  revision: string,
  orderedPaths: readonly string[],
  typeList: TypeListMemo = {},
  // Set-wide parts, given here rather than spread onto the result afterwards: a spread would run the lazy getters below.
  extras: Pick<CompiledPolicySet, 'usage' | 'declarations'> = {},
): CompiledPolicySet {
  const builds = state.builds;
  const indexes = state.indexes;
  const fallback = indexes.get(WILDCARD_RESOURCE)!;
  let policies: PolicySetSummary[] | undefined;
  return {
    revision,
    ...(extras.usage ? { usage: extras.usage } : {}),
    ...(extras.declarations ? { declarations: extras.declarations } : {}),
    get policies(): readonly PolicySetSummary[] {
      if (!policies) {
        policies = [];
        for (const path of orderedPaths) for (const d of state.units.get(path)!.documents) policies.push(d.summary);
      }
      return policies;
    },
    get resourceTypes(): readonly string[] {
      return (typeList.value ??= [...builds.keys()].filter((t) => t !== WILDCARD_RESOURCE).sort());
    },
    ruleCount: state.ruleCount,
    // The "*" build's own index is the fallback, so a request for type "*" gets it either way.
    indexFor: (type) => indexes.get(type) ?? fallback,
  };
}
