import type { CompiledDerivedRole, CompiledPolicySet, CompiledRule, PolicySetSummary, ResourceTypeIndex } from '../engine/model.js';
import { buildResourceTypeIndex } from './action-index.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import { LayeredMap } from './layered-map.js';
import { SharedValues } from './shared-values.js';
import type { Work } from './slices.js';
import type { FileUnit, UnitDocument } from './unit.js';

export const WILDCARD_RESOURCE = '*';

/**
 * Everything built for one resource type from the documents that govern it. A type's index (its
 * rules merged with the "*" rules, in document order) is kept beside the build with the "*" build it
 * merged (`indexOf`): assemble makes it with the build, and after a "*" change the type's first
 * check makes it again, so a "*" change rebuilds one build, not one per type.
 */
export class TypeBuild {
  /** The index last made by `indexOf`, and the "*" build it merged; the one before, for a set still answering a batch. */
  private index: ResourceTypeIndex | undefined;
  private indexWildcard: TypeBuild | undefined;
  private previousIndex: ResourceTypeIndex | undefined;
  private previousWildcard: TypeBuild | undefined;

  constructor(
    /** Problems between documents of this type (duplicate names). */
    readonly issues: readonly PolicyIssue[],
    readonly scope: ReadonlyMap<string, CompiledDerivedRole>,
    /** Rules ready for an index, in document order. */
    readonly rules: readonly CompiledRule[],
    /** The order key of each rule's document (rules[i]'s is keys[i]), to merge with the "*" rules. */
    readonly keys: readonly string[],
    /** Role names in the rules that the type's own derived roles do not define: "*" derived roles, or static roles. */
    readonly outerRoles: ReadonlySet<string>,
    /** For the "*" build only: the index of types that have no policy of their own. */
    readonly fallback: ResourceTypeIndex | undefined,
  ) {}

  /** This type's index with the rules of `wildcard` (the "*" build of the set asking). */
  indexOf(wildcard: TypeBuild): ResourceTypeIndex {
    if (this.indexWildcard === wildcard) return this.index!;
    if (this.previousWildcard === wildcard) return this.previousIndex!;
    const merged = this.rules.length === 0 ? wildcard.rules : wildcard.rules.length === 0 ? this.rules : mergeByKey(this, wildcard);
    this.previousIndex = this.index;
    this.previousWildcard = this.indexWildcard;
    this.indexWildcard = wildcard;
    return (this.index = buildResourceTypeIndex(merged, true));
  }
}

/** Two builds' rules in document order (each is in order already; a document is in one build only). */
function mergeByKey(a: TypeBuild, b: TypeBuild): CompiledRule[] {
  const out: CompiledRule[] = [];
  let i = 0;
  let j = 0;
  while (i < a.rules.length && j < b.rules.length) out.push(a.keys[i]! <= b.keys[j]! ? a.rules[i++]! : b.rules[j++]!);
  while (i < a.rules.length) out.push(a.rules[i++]!);
  while (j < b.rules.length) out.push(b.rules[j++]!);
  return out;
}

/**
 * The set as built from its file units, kept between reloads: a change rebuilds only the types whose
 * documents changed, and never recompiles an unchanged file. A "*" change rebuilds the "*" build and
 * the types whose rules name a "*" derived role that changed, came or went (their rules hold the
 * derived role itself); every other type keeps its build and merges the new "*" rules on its next check.
 */
export interface SetState {
  readonly units: LayeredMap<string, FileUnit>;
  /** Files per resource type (including "*"), each list in path order. */
  readonly filesByType: LayeredMap<string, readonly string[]>;
  /** One build per resource type, and one for "*". */
  readonly builds: LayeredMap<string, TypeBuild>;
  /** Types whose build has issues (kept so that a change does not look at every type). */
  readonly typesWithIssues: ReadonlySet<string>;
  /** Rules of every build ("*" included), kept up to date per change. */
  readonly ruleCount: number;
  /** Documents (policies) of every unit, kept up to date per change (logs report it on every change). */
  readonly policyCount: number;
}

export const EMPTY_STATE: SetState = { units: LayeredMap.of(), filesByType: LayeredMap.of(), builds: LayeredMap.of(), typesWithIssues: new Set(), ruleCount: 0, policyCount: 0 };

/** Static role sets of rules, shared: see shared-values.ts. */
const sharedRoleSets = new SharedValues<ReadonlySet<string>>();

/** Most rules have no derived role: they share this list rather than each holding an empty one. */
const NO_DERIVED_ROLES: readonly CompiledDerivedRole[] = [];

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
  const outerRoles = new Set<string>();
  const ruleNames = new Map<string, SourcePosition>();
  const own: CompiledRule[] = [];
  const keys: string[] = [];
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
        if (!scope.has(role)) outerRoles.add(role);
        const derived = scope.get(role) ?? wildScope?.get(role);
        if (derived) derivedRoles.push(derived);
        else staticNames.push(role);
      }
      const staticRoles = sharedRoleSets.get(staticNames.join('\0'), () => new Set(staticNames));
      keys.push(doc.orderKey);
      own.push({
        policy: doc.policy,
        name: r.name,
        effect: r.effect,
        actions: r.actions, // shared already (unit.ts)
        anyRole: roles.length === 0 || roles.includes('*'),
        staticRoles,
        derivedRoles: derivedRoles.length > 0 ? derivedRoles : NO_DERIVED_ROLES,
        condition: r.condition,
        conditionSource: r.conditionSource,
      });
    }
  }
  return new TypeBuild(issues, scope, own, keys, outerRoles, wildcard ? undefined : buildResourceTypeIndex(own, false));
}

/** Names whose "*" derived role differs between two scopes (changed, added or removed). */
function changedRoles(before: ReadonlyMap<string, CompiledDerivedRole> | undefined, after: ReadonlyMap<string, CompiledDerivedRole>): Set<string> {
  const names = new Set<string>();
  for (const [name, role] of after) if (before?.get(name) !== role) names.add(name);
  for (const name of before?.keys() ?? []) if (!after.has(name)) names.add(name);
  return names;
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
  let policyCount = previous.policyCount;
  for (const path of touched) {
    const before = previous.units.get(path);
    const after = units.get(path);
    policyCount += (after?.documents.length ?? 0) - (before?.documents.length ?? 0);
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
  let ruleCount = previous.ruleCount;
  let typesWithIssues = previous.typesWithIssues;
  const put = (type: string, build: TypeBuild | undefined): void => {
    const before = builds.get(type);
    ruleCount += (build?.rules.length ?? 0) - (before?.rules.length ?? 0);
    if (build) builds.set(type, build);
    else builds.delete(type);
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
  let wildcard = builds.get(WILDCARD_RESOURCE);
  const types = new Set(affected);
  if (affected.has(WILDCARD_RESOURCE) || !wildcard) {
    const before = wildcard?.scope;
    wildcard = buildType(WILDCARD_RESOURCE, documentsOf(WILDCARD_RESOURCE, filesByType.get(WILDCARD_RESOURCE) ?? [], units), undefined);
    put(WILDCARD_RESOURCE, wildcard);
    const roles = changedRoles(before, wildcard.scope);
    if (roles.size > 0) {
      let n = 0;
      for (const [type, build] of previous.builds) {
        if ((++n & 255) === 0) yield;
        if (!types.has(type)) for (const role of build.outerRoles) if (roles.has(role)) types.add(type);
      }
    }
  }
  for (const type of types) {
    if (type === WILDCARD_RESOURCE) continue;
    yield;
    const files = filesByType.get(type);
    if (!files !== !previous.builds.has(type)) typesChanged = true;
    const build = files ? buildType(type, documentsOf(type, files, units), wildcard) : undefined;
    // Its index now, beside its build in memory (made on a first check, the indexes of a large set
    // ended up scattered among the requests' garbage; a check then touched more cache lines).
    build?.indexOf(wildcard);
    put(type, build);
  }
  yield;
  const issues: PolicyIssue[] = [];
  for (const type of typesWithIssues) issues.push(...builds.get(type)!.issues);
  return { state: { units, filesByType, builds: builds.done(), typesWithIssues, ruleCount, policyCount }, issues, typesChanged };
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
  const wildcard = builds.get(WILDCARD_RESOURCE)!;
  const fallback = wildcard.fallback!;
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
    policyCount: state.policyCount,
    // A request for type "*" gets the fallback, like a type without a policy.
    indexFor: (type) => {
      const build = builds.get(type);
      return build === undefined || build === wildcard ? fallback : build.indexOf(wildcard);
    },
  };
}
