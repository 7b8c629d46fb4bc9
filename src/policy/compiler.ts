import type { CompiledPolicySet } from '../engine/model.js';
import type { PolicyFile, PolicyFileChange } from '../service/policy-source.js';
import { assemble, EMPTY_STATE, policySetOf, type SetState, type TypeListMemo } from './assemble.js';
import type { PolicyIssue } from './issues.js';
import { comparePolicyPaths, indexInPathOrder, pathOrderKey, patchRevisionChunks, revisionChunks, revisionOfChunksWork } from './revision.js';
import { LayeredMap } from './layered-map.js';
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
  readonly digests: LayeredMap<string, string>;
  readonly orderedPaths: readonly string[];
  /** What the revision hashes, in chunks of `orderedPaths` (revision.ts). */
  readonly revisionChunks: readonly string[];
  /** The set's sorted type names, shared while no type comes or goes. */
  readonly typeList: TypeListMemo;
  /** Paths whose unit has issues of its own. */
  readonly unitsWithIssues: ReadonlySet<string>;
  /** Paths whose unit declares usage limits (so a change need not walk every document for them). */
  readonly unitsWithLimits: ReadonlySet<string>;
  /** Files holding declarations (kind: Declarations): where the declarations check starts. */
  readonly unitsWithDeclarations: ReadonlySet<string>;
  /** Expressions compiled for the units of the set. */
  readonly expressions: number;
  /** Paths whose unit is new, changed or gone against the base this state was compiled from. */
  readonly touched: ReadonlySet<string>;
}

const INITIAL: CompilerState = { set: EMPTY_STATE, digests: LayeredMap.of(), orderedPaths: [], revisionChunks: [], typeList: {}, unitsWithIssues: new Set(), unitsWithLimits: new Set(), unitsWithDeclarations: new Set(), expressions: 0, touched: new Set() };
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
    // Only touched paths can differ from the base (the state was compiled from it).
    for (const path of candidate.state.touched) {
      const unit = this.base.set.units.get(path);
      if (unit && live.get(path) !== unit) this.keepSpare(unit);
    }
    this.base = candidate.state;
    this.pool.renewIfGrown(candidate.state.expressions);
  }

  /** Forgets a candidate that will not go live, keeping its new files' units for a later attempt. */
  discard(candidate: CompiledCandidate): void {
    for (const path of candidate.state.touched) {
      const unit = candidate.state.set.units.get(path);
      if (unit && this.base.set.units.get(path) !== unit) this.keepSpare(unit);
    }
  }

  /**
   * Problems between files name positions in both: files read the fast way (no positions) are read
   * again precisely. Returns the units with those files replaced; marks them touched.
   */
  private *readAgainPrecisely(units: SetState['units'], paths: Iterable<string>, files: readonly PolicyFile[], touched: Set<string>): Work<SetState['units']> {
    const precise = units.edit();
    for (const path of paths) {
      yield;
      precise.set(path, yield* compileFileUnit(files.find((f) => f.path === path)!, this.pool, this.options.limits, true));
      touched.add(path);
    }
    return precise.done();
  }

  private keepSpare(unit: FileUnit): void {
    const key = `${unit.path}\0${unit.sha256}`;
    this.spare.delete(key);
    this.spare.set(key, unit);
    if (this.spare.size > SPARE_UNITS) this.spare.delete(this.spare.keys().next().value!);
  }

  /**
   * What a change costs: one hash comparison per file of the snapshot (the source hands over whole
   * sets), then work in proportion to what changed: the changed files are compiled, their types'
   * indexes rebuilt (every type's after a "*" change), and the bookkeeping (maps of units, digests,
   * issues, rule count) is copied and patched, not recomputed. The revision is hashed over every
   * path in one pass (a few ms at 10,000 files).
   */
  private *work(files: readonly PolicyFile[]): Work<CompiledCandidate> {
    const base = this.base;
    const added: PolicyFileChange[] = [];
    const changed: PolicyFileChange[] = [];
    const fresh: PolicyFile[] = [];
    let present = 0;
    for (let i = 0; i < files.length; i++) {
      // One lookup per file of the snapshot: ~2 ms at 10,000 files, so in slices too.
      if ((i & 1023) === 1023) yield;
      const file = files[i]!;
      const before = base.digests.get(file.path);
      if (before !== undefined) present++;
      if (before === file.sha256) continue;
      if (before === undefined) added.push({ path: file.path, sha256: file.sha256 });
      else changed.push({ path: file.path, sha256: file.sha256, previousSha256: before });
      fresh.push(file);
    }
    const removed: PolicyFileChange[] = [];
    if (present < base.digests.size) {
      const paths = new Set(files.map((f) => f.path));
      for (const [path, sha256] of base.digests) if (!paths.has(path)) removed.push({ path, sha256 });
    }
    const touched = new Set<string>();
    let digests = base.digests;
    let units = base.set.units;
    let unitsWithIssues = base.unitsWithIssues;
    let unitsWithLimits = base.unitsWithLimits;
    let unitsWithDeclarations = base.unitsWithDeclarations;
    let expressions = base.expressions;
    if (fresh.length > 0 || removed.length > 0) {
      const d = base.digests.edit();
      const u = base.set.units.edit();
      const withIssues = new Set(base.unitsWithIssues);
      const withLimits = new Set(base.unitsWithLimits);
      const withDeclarations = new Set(base.unitsWithDeclarations);
      for (const file of fresh) {
        yield;
        d.set(file.path, file.sha256);
        touched.add(file.path);
        const key = `${file.path}\0${file.sha256}`;
        const unit = this.spare.get(key) ?? (yield* compileFileUnit(file, this.pool, this.options.limits, this.options.coverage !== undefined, this.options.coverage));
        this.spare.delete(key);
        expressions += unit.expressions - (u.get(file.path)?.expressions ?? 0);
        u.set(file.path, unit);
        if (unit.issues.length > 0) withIssues.add(file.path);
        else withIssues.delete(file.path);
        if (unit.documents.some((d) => d.limits)) withLimits.add(file.path);
        else withLimits.delete(file.path);
        if (unit.declarations.length > 0) withDeclarations.add(file.path);
        else withDeclarations.delete(file.path);
      }
      for (const { path } of removed) {
        d.delete(path);
        touched.add(path);
        expressions -= u.get(path)?.expressions ?? 0;
        u.delete(path);
        withIssues.delete(path);
        withLimits.delete(path);
        withDeclarations.delete(path);
      }
      digests = d.done();
      units = u.done();
      unitsWithIssues = withIssues;
      unitsWithLimits = withLimits;
      unitsWithDeclarations = withDeclarations;
    }
    yield;
    const orderedPaths = added.length === 0 && removed.length === 0 ? base.orderedPaths : reorder(base.orderedPaths, added, removed);
    yield;
    let built = yield* assemble({ previous: base.set, units, touched });
    if (built.issues.length > 0) {
      // Problems between files name positions in both: files read the fast way (no positions) are
      // read again precisely, and the types they govern are rebuilt.
      const types = new Set(built.issues.map((i) => units.get(i.file)?.documents.map((d) => d.resource) ?? []).flat());
      const again = new Set<string>();
      for (const [path, unit] of units) if (!unit.precise && unit.documents.some((d) => types.has(d.resource))) again.add(path);
      if (again.size > 0) {
        units = yield* this.readAgainPrecisely(units, again, files, touched);
        built = yield* assemble({ previous: built.state, units, touched: again });
      }
    }
    yield;
    // Declarations (kind: Declarations): names checked against the set's declared roles and schemas.
    // A change to any file re-runs these lookups over the whole set (no CEL is compiled again), in slices.
    const scopeOf = (type: string) => built.state.builds.get(type)?.scope;
    let declared = yield* checkDeclarations(units, unitsWithDeclarations, scopeOf);
    if (declared.issues.length > 0) {
      const again = new Set(declared.issues.map((i) => i.file).filter((path) => units.get(path)?.precise === false));
      if (again.size > 0) {
        units = yield* this.readAgainPrecisely(units, again, files, touched);
        built = yield* assemble({ previous: built.state, units, touched: again });
        declared = yield* checkDeclarations(units, unitsWithDeclarations, scopeOf);
      }
    }
    yield;
    const issues: PolicyIssue[] = [];
    for (const path of unitsWithIssues) issues.push(...units.get(path)!.issues);
    issues.push(...built.issues, ...declared.issues);
    // Only files that declare limits can contribute any (usageOfSet of the others gives nothing).
    const limitPaths = unitsWithLimits.size === 0 ? [] : orderedPaths.length <= 8 * unitsWithLimits.size ? orderedPaths : [...unitsWithLimits].sort(comparePolicyPaths);
    let usage = usageOfSet(units, limitPaths);
    if (usage.issues.length > 0) {
      // Duplicate limit names across files: read fast-read files again for their positions.
      const again: string[] = [];
      for (const [path, unit] of units) if (!unit.precise && unit.documents.some((d) => d.limits)) again.push(path);
      if (again.length > 0) {
        units = yield* this.readAgainPrecisely(units, again, files, touched);
        built = { ...built, state: { ...built.state, units } };
        usage = usageOfSet(units, limitPaths);
      }
    }
    issues.push(...usage.issues);
    if (files.length === 0) {
      issues.push({ file: '.', line: 1, column: 1, code: 'NO_POLICIES', message: 'no policy files found (*.yaml or *.yml, excluding *_test.yaml)' });
    }
    issues.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
    yield;
    const chunks =
      orderedPaths === base.orderedPaths ? patchRevisionChunks(base.revisionChunks, orderedPaths, digests, changed.map((c) => c.path)) : yield* revisionChunks(orderedPaths, digests);
    const revision = yield* revisionOfChunksWork(chunks);
    yield;
    const typeList = built.typesChanged ? {} : base.typeList;
    const state: CompilerState = { set: built.state, digests, orderedPaths, revisionChunks: chunks, typeList, unitsWithIssues, unitsWithLimits, unitsWithDeclarations, expressions, touched };
    const set = issues.length === 0 ? policySetOf(built.state, revision, orderedPaths, typeList, { usage: usage.usage, declarations: declared.declarations }) : undefined;
    return { revision, issues, warnings: declared.warnings, set, added: sortChanges(added), changed: sortChanges(changed), removed: sortChanges(removed), state };
  }
}

/** The path order after adding and removing paths: the previous order patched, not sorted again (unless most of it changed). */
function reorder(previous: readonly string[], added: readonly PolicyFileChange[], removed: readonly PolicyFileChange[]): string[] {
  if (added.length + removed.length > previous.length / 8) {
    const gone = new Set(removed.map((r) => r.path));
    return orderPaths([...previous.filter((p) => !gone.has(p)), ...added.map((a) => a.path)]);
  }
  const out = previous.slice();
  for (const { path } of removed) {
    const at = indexInPathOrder(out, path);
    if (out[at] === path) out.splice(at, 1);
  }
  for (const { path } of added) out.splice(indexInPathOrder(out, path), 0, path);
  return out;
}

function orderPaths(paths: Iterable<string>): string[] {
  return [...paths].map((p) => ({ p, k: pathOrderKey(p) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((e) => e.p);
}

function sortChanges(list: PolicyFileChange[]): PolicyFileChange[] {
  return list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
