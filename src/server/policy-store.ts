import type { LivePolicy, LivePolicySet, PolicyLoadFailure } from '../service/live-policy.js';
import type { PolicyChange, PolicyChangeHooks, PolicyFileDigest, PolicySnapshot, PolicySource, PolicyTrigger } from '../service/policy-source.js';
import { DirectorySource } from '../policy/directory-source.js';
import { PolicyCompiler, PolicyLoadError, type CompiledCandidate, type CompileOptions } from '../policy/index.js';

export interface PolicyStoreOptions {
  /** Compile work runs in slices of about this many ms between which checks are answered. */
  readonly sliceMs: number;
  readonly hooks?: PolicyChangeHooks;
  /** The request and cost limits each condition's worst case is checked against (config `limits`). */
  readonly compile?: CompileOptions;
}

/** A compiled snapshot waiting to be committed (cluster workers prepare, then commit on the primary's word). */
export interface PreparedChange {
  readonly change: PolicyChange;
  readonly candidate: CompiledCandidate;
  /** Milliseconds spent compiling. */
  readonly compileMs: number;
}

interface Job {
  snapshot?: PolicySnapshot;
  unreadable?: { trigger: PolicyTrigger; error: Error };
  waiters: ((change: PolicyChange) => void)[];
}

/**
 * Holds the live policy set and swaps it atomically. Each snapshot is compiled incrementally (only
 * files that changed), in slices so checks keep being answered, and completely before the swap:
 * checks in flight finish on the set they started with, and a set that does not load never replaces
 * a good one (it is kept as the last failure). Snapshots are applied one at a time, in order; ones
 * that arrive during a compile are coalesced into the latest.
 */
export class PolicyStore implements LivePolicy {
  private live: LivePolicySet | undefined;
  private failure: PolicyLoadFailure | undefined;
  private readonly compiler: PolicyCompiler;
  private next: Job | undefined;
  private running = false;
  private closed = false;

  constructor(
    readonly sourceName: string,
    private readonly source: PolicySource | undefined,
    private readonly options: PolicyStoreOptions,
  ) {
    this.compiler = new PolicyCompiler(options.compile);
  }

  /** A store over a directory that is not watched (tools and tests): `start()` loads it, `reload()` again. */
  static forDirectory(dir: string): PolicyStore {
    return new PolicyStore(dir, new DirectorySource(dir, { watch: false, debounceMs: 0, settleMs: 0, pollIntervalMs: 0 }), { sliceMs: 5 });
  }

  current(): LivePolicySet | undefined {
    return this.live;
  }

  lastFailure(): PolicyLoadFailure | undefined {
    return this.failure;
  }

  /** The first load, read from the source as it is, compiled without pausing (nothing is served yet). */
  async start(): Promise<PolicyChange> {
    if (!this.source) throw new Error('this policy store has no source; it is fed snapshots');
    let snapshot: PolicySnapshot;
    try {
      snapshot = await this.source.read({ kind: 'startup' });
    } catch (err) {
      return this.finish(this.unreadableChange({ kind: 'startup' }, err as Error));
    }
    return this.commit(await this.prepare(snapshot, true));
  }

  /** Watches the source; every complete snapshot it delivers is applied. */
  watch(): void {
    this.source?.subscribe((event) => {
      if (event.kind === 'snapshot') void this.apply(event.snapshot);
      else void this.enqueue({ unreadable: { trigger: event.trigger, error: event.error }, waiters: [] });
    });
  }

  /** Reads the source now and applies it (SIGHUP). */
  async reload(trigger: PolicyTrigger): Promise<PolicyChange> {
    if (!this.source) throw new Error('this policy store has no source; it is fed snapshots');
    try {
      return await this.apply(await this.source.read(trigger));
    } catch (err) {
      return this.enqueue({ unreadable: { trigger, error: err as Error }, waiters: [] });
    }
  }

  /** Applies a snapshot after those already queued; a newer snapshot queued meanwhile supersedes it. */
  apply(snapshot: PolicySnapshot): Promise<PolicyChange> {
    return this.enqueue({ snapshot, waiters: [] });
  }

  private enqueue(job: Job): Promise<PolicyChange> {
    return new Promise((resolve) => {
      const waiters = [...(this.next?.waiters ?? []), resolve];
      this.next = { ...job, waiters };
      if (!this.running) this.startDrain();
    });
  }

  private startDrain(): void {
    this.running = true;
    // Reset on a later turn even when drain() had nothing to await, so `running` never sticks.
    void this.drain().finally(() => {
      this.running = false;
      if (this.next) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const job = this.next;
      this.next = undefined;
      let change: PolicyChange;
      if (this.closed) change = this.unreadableChange(job.snapshot?.trigger ?? { kind: 'file-change' }, new Error('the policy store is closed'));
      else if (job.snapshot) change = await this.commit(await this.prepare(job.snapshot));
      else change = this.finish(this.unreadableChange(job.unreadable!.trigger, job.unreadable!.error));
      for (const w of job.waiters) w(change);
    }
  }

  /**
   * Compiles a snapshot against the live set. The result says what would change; nothing changes
   * until `commit`. One prepared change at a time.
   */
  async prepare(snapshot: PolicySnapshot, now = false): Promise<PreparedChange> {
    const started = performance.now();
    const candidate = now || !this.live ? this.compiler.compileNow(snapshot.files) : await this.compiler.compile(snapshot.files, this.options.sliceMs);
    const compileMs = performance.now() - started;
    const base = {
      trigger: snapshot.trigger,
      at: new Date(),
      previousRevision: this.live?.set.revision ?? null,
      revision: candidate.revision,
      added: candidate.added,
      changed: candidate.changed,
      removed: candidate.removed,
      files: snapshot.files,
    };
    if (!candidate.set) {
      const message = new PolicyLoadError(candidate.issues).message;
      return { change: { ...base, result: { status: 'rejected', message, issues: candidate.issues } }, candidate, compileMs };
    }
    const status = candidate.revision === base.previousRevision ? 'unchanged' : 'applied';
    return { change: { ...base, result: { status } }, candidate, compileMs };
  }

  /**
   * Makes a prepared change final: a loaded set goes live (after `beforeSwap`), a rejected one is
   * kept as the last failure. Returns the change as it ended.
   */
  async commit(prepared: PreparedChange, loadedAt?: Date): Promise<PolicyChange> {
    const { candidate } = prepared;
    let change = prepared.change;
    if (change.result.status === 'applied') {
      try {
        await this.options.hooks?.beforeSwap?.(change);
      } catch (err) {
        change = { ...change, result: { status: 'rejected', message: `not applied: ${(err as Error).message}`, issues: [] } };
      }
    }
    if (change.result.status === 'rejected') this.compiler.discard(candidate);
    else {
      this.compiler.commit(candidate);
      if (change.result.status === 'applied') {
        this.options.hooks?.atSwap?.(change);
        this.live = liveSet(candidate, loadedAt ?? new Date());
      }
    }
    return this.finish(change);
  }

  /** Drops a prepared change that will not be committed (another worker refused it). */
  abort(prepared: PreparedChange): void {
    this.compiler.discard(prepared.candidate);
  }

  /**
   * A change another component rejected (the cluster primary, for every worker): kept as the
   * standing failure and passed to the change hooks like a rejection decided here.
   */
  recordRejected(change: PolicyChange): void {
    if (change.result.status !== 'rejected') throw new Error('only a rejected change can be recorded as one');
    this.finish(change);
  }

  /** Records a failure decided elsewhere (the cluster primary) as this store's standing failure; undefined clears it. */
  recordFailure(failure: PolicyLoadFailure | undefined): void {
    this.failure = failure;
  }

  private unreadableChange(trigger: PolicyTrigger, error: Error): PolicyChange {
    const issues = error instanceof PolicyLoadError ? error.issues : [];
    return {
      trigger,
      at: new Date(),
      previousRevision: this.live?.set.revision ?? null,
      revision: this.live?.set.revision ?? '',
      added: [],
      changed: [],
      removed: [],
      result: { status: 'rejected', message: error.message, issues },
    };
  }

  private finish(change: PolicyChange): PolicyChange {
    const r = change.result;
    if (r.status === 'rejected') this.failure = { at: change.at, message: r.message, issues: r.issues };
    else {
      this.failure = undefined; // applied, or back to the live content: no failure stands
      this.source?.live?.(change.revision);
    }
    this.options.hooks?.afterChange?.(change);
    return change;
  }

  close(): void {
    this.closed = true;
    this.source?.close();
  }
}

/** The live set; its file list (in path order) is made when first asked for, so a change does not walk every file. */
function liveSet(candidate: CompiledCandidate, loadedAt: Date): LivePolicySet {
  const { digests, orderedPaths } = candidate.state;
  let files: PolicyFileDigest[] | undefined;
  return {
    set: candidate.set!,
    loadedAt,
    get files(): readonly PolicyFileDigest[] {
      return (files ??= orderedPaths.map((path) => ({ path, sha256: digests.get(path)! })));
    },
  };
}
