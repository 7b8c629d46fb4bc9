import type { CompiledPolicySet } from '../engine/model.js';
import type { PolicyFile, PolicyFileChange } from '../service/policy-source.js';
import { assemble, EMPTY_STATE, policySetOf, type SetState } from './assemble.js';
import type { PolicyIssue } from './issues.js';
import { pathOrderKey, revisionOfOrdered } from './revision.js';
import { runInSlices, runToEnd, type Work } from './slices.js';
import type { CostEstimateLimits } from './cost.js';
import { usageOfSet } from './usage-set.js';
import { compileFileUnit, EnvironmentPool, type FileUnit } from './unit.js';
import { checkDeclarations } from './declared-check.js';
import type { CoverageHooks } from './coverage-hooks.js';

export interface CompileOptions {
  /** Request and cost limits each condition's worst case is checked against (CEL_COST); default: the defaults of `limits`. */
  readonly limits?: CostEstimateLimits;
  /** `verdict test --coverage` only: files are read precisely and every condition is wrapped to record what it did. */
  readonly coverage?: CoverageHooks;
}

/** What compiling one snapshot gave: the set (when it loads) or every issue, and what changed. */
export interface CompiledCandidate {
  readonly revision: string;
  /** Empty when the set loads. Sorted by file, line, column. */
  readonly issues: readonly PolicyIssue[];
  /** Defined when there are no issues. */
  readonly set: CompiledPolicySet | undefined;
  /** One line each: checks the set does not get (e.g. it has no declarations); never stop a load. */
  readonly warnings: readonly string[];
  /** Against the set last committed (the live one). */
  readonly added: readonly PolicyFileChange[];
  readonly changed: readonly PolicyFileChange[];
  readonly removed: readonly PolicyFileChange[];
  /** Internal: what `commit` makes the base of the next compile. */
  readonly state: CompilerState;
}

interface CompilerState {
  readonly set: SetState;
  readonly digests: ReadonlyMap<string, string>;
  readonly orderedPaths: readonly string[];
  /** The set's sorted type names, kept while no type comes or goes. */
  readonly resourceTypes: readonly string[] | undefined;
}

const INITIAL: CompilerState = { set: EMPTY_STATE, digests: new Map(), orderedPaths: [], resourceTypes: undefined };
/** Units kept besides the live ones (a rejected change, files deleted and restored), most recent last. */
const SPARE_UNITS = 64;

/**
 * Compiles policy snapshots incrementally. Each file is compiled on its own and cached by path and
 * content hash; a new snapshot compiles only files that are new or changed, and rebuilds only the
 * resource types they touch (every type when a "*" document changed). The result is checked as a
 * whole: a set with any issue is refused, and the base stays what was last committed. Not safe for
 * two compiles at once: callers serialise them (the store does).
 */
export class PolicyCompiler {
  private base: CompilerState = INITIAL;
  private readonly pool = new EnvironmentPool();
  private readonly spare = new Map<string, FileUnit>();

  constructor(private readonly options: CompileOptions = {}) {}

  /** Compiles on the calling turn (CLI, tests, a first load with nothing else to serve). */
  compileNow(files: readonly PolicyFile[]): CompiledCandidate {
    return runToEnd(this.work(files));
  }

  /** Compiles in slices of at most about `sliceMs` of CPU, giving the event loop back between them. */
  compile(files: readonly PolicyFile[], sliceMs: number): Promise<CompiledCandidate> {
    return runInSlices(this.work(files), sliceMs);
  }

  /** Makes a loaded candidate the base of the next compile (call when it goes live). */
  commit(candidate: CompiledCandidate): void {
    if (!candidate.set) throw new Error('a policy set with issues cannot be committed');
    const live = candidate.state.set.units;
    for (const [path, unit] of this.base.set.units) if (live.get(path) !== unit) this.keepSpare(unit);
    this.base = candidate.state;
    let expressions = 0;
    for (const unit of live.values()) expressions += unit.expressions;
    this.pool.renewIfGrown(expressions);
  }

  /** Forgets a candidate that will not go live, keeping its new files' units for a later attempt. */
  discard(candidate: CompiledCandidate): void {
    for (const [path, unit] of candidate.state.set.units) if (this.base.set.units.get(path) !== unit) this.keepSpare(unit);
  }

  private keepSpare(unit: FileUnit): void {
    const key = `${unit.path}\0${unit.sha256}`;
    this.spare.delete(key);
    this.spare.set(key, unit);
    if (this.spare.size > SPARE_UNITS) this.spare.delete(this.spare.keys().next().value!);
  }

  private *work(files: readonly PolicyFile[]): Work<CompiledCandidate> {
    const base = this.base;
    const digests = new Map<string, string>();
    const added: PolicyFileChange[] = [];
    const changed: PolicyFileChange[] = [];
    const units = new Map(base.set.units);
    const touched = new Set<string>();
    for (const file of files) {
      digests.set(file.path, file.sha256);
      const before = base.digests.get(file.path);
      if (before === file.sha256) continue;
      if (before === undefined) added.push({ path: file.path, sha256: file.sha256 });
      else changed.push({ path: file.path, sha256: file.sha256, previousSha256: before });
      touched.add(file.path);
      yield;
      const key = `${file.path}\0${file.sha256}`;
      const unit = this.spare.get(key) ?? (yield* compileFileUnit(file, this.pool, this.options.limits, this.options.coverage !== undefined, this.options.coverage));
      this.spare.delete(key);
      units.set(file.path, unit);
    }
    const removed: PolicyFileChange[] = [];
    for (const [path, sha256] of base.digests) {
      if (digests.has(path)) continue;
      removed.push({ path, sha256 });
      touched.add(path);
      units.delete(path);
    }
    yield;
    const orderedPaths = added.length === 0 && removed.length === 0 ? base.orderedPaths : orderPaths(digests.keys());
    yield;
    let built = yield* assemble({ previous: base.set, units, touched });
    if (built.issues.length > 0) {
      // Problems between files name positions in both: files read the fast way (no positions) are
      // read again precisely, and the types they govern are rebuilt.
      const types = new Set(built.issues.map((i) => units.get(i.file)?.documents.map((d) => d.resource) ?? []).flat());
      const again = new Set<string>();
      for (const [path, unit] of units) if (!unit.precise && unit.documents.some((d) => types.has(d.resource))) again.add(path);
      for (const path of again) {
        yield;
        const file = files.find((f) => f.path === path)!;
        units.set(path, yield* compileFileUnit(file, this.pool, this.options.limits, true));
      }
      if (again.size > 0) built = yield* assemble({ previous: built.state, units, touched: again });
    }
    yield;
    // Declarations (kind: Declarations): names checked against the set's declared roles and schemas.
    // A change to any file re-runs these lookups over the whole set (no CEL is compiled again).
    const scopeOf = (type: string) => built.state.builds.get(type)?.scope;
    let declared = checkDeclarations(units, scopeOf);
    if (declared.issues.length > 0) {
      const again = new Set(declared.issues.map((i) => i.file).filter((path) => units.get(path)?.precise === false));
      for (const path of again) {
        yield;
        const file = files.find((f) => f.path === path)!;
        units.set(path, yield* compileFileUnit(file, this.pool, this.options.limits, true));
      }
      if (again.size > 0) {
        built = yield* assemble({ previous: built.state, units, touched: again });
        declared = checkDeclarations(units, scopeOf);
      }
    }
    yield;
    const issues: PolicyIssue[] = [];
    for (const unit of units.values()) if (unit.issues.length > 0) issues.push(...unit.issues);
    issues.push(...built.issues, ...declared.issues);
    let usage = usageOfSet(units, orderedPaths);
    if (usage.issues.length > 0) {
      // Duplicate limit names across files: read fast-read files again for their positions.
      let again = false;
      for (const [path, unit] of units) {
        if (unit.precise || !unit.documents.some((d) => d.limits)) continue;
        units.set(path, yield* compileFileUnit(files.find((f) => f.path === path)!, this.pool, this.options.limits, true));
        again = true;
      }
      if (again) usage = usageOfSet(units, orderedPaths);
    }
    issues.push(...usage.issues);
    if (files.length === 0) {
      issues.push({ file: '.', line: 1, column: 1, code: 'NO_POLICIES', message: 'no policy files found (*.yaml or *.yml, excluding *_test.yaml)' });
    }
    issues.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
    yield;
    const revision = revisionOfOrdered(orderedPaths.map((path) => ({ path, sha256: digests.get(path)! })));
    yield;
    const state: CompilerState = { set: built.state, digests, orderedPaths, resourceTypes: built.typesChanged ? undefined : base.resourceTypes };
    const plain = issues.length === 0 ? usage.attach(policySetOf(built.state, revision, orderedPaths, state.resourceTypes)) : undefined;
    const set = plain && declared.declarations ? { ...plain, declarations: declared.declarations } : plain;
    if (set) (state as { resourceTypes?: readonly string[] }).resourceTypes = set.resourceTypes;
    return { revision, issues, warnings: declared.warnings, set, added: sortChanges(added), changed: sortChanges(changed), removed: sortChanges(removed), state };
  }
}

function orderPaths(paths: Iterable<string>): string[] {
  return [...paths].map((p) => ({ p, k: pathOrderKey(p) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((e) => e.p);
}

function sortChanges(list: PolicyFileChange[]): PolicyFileChange[] {
  return list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
