/**
 * Policies in a cluster. The primary owns the source (reads, watches and settles the directory) but
 * compiles nothing: it sends each worker only the files that changed, and a change goes live in two
 * phases. Workers compile it one after another (the first one is the canary: if it rejects the
 * change, no other worker compiles it), each in slices while it keeps answering; once every worker
 * has it compiled, the primary tells them all to swap, so all serve one revision again within a few
 * milliseconds and never all compile at the same time.
 */
import type { PolicyChange, PolicyFile, PolicyIssueInfo, PolicySnapshot, PolicySource, PolicyTrigger } from '../service/policy-source.js';
import type { PolicyLoadFailure } from '../service/live-policy.js';
import { policyRevision } from '../policy/index.js';
import { PatchedMap } from '../policy/patched-map.js';
import type { Logger } from './logger.js';
import { logPolicyChange } from './app.js';
import type { PolicyStore, PreparedChange } from './policy-store.js';

interface WireFailure {
  readonly at: string;
  readonly message: string;
  readonly issues: readonly PolicyIssueInfo[];
}

export type PolicyToWorker =
  /** The live set, whole: a starting worker compiles and serves it. */
  | { type: 'policy-load'; files: PolicyFile[]; revision: string; loadedAt: string }
  /** Compile this change (the files that differ from the worker's set, or all of them when `full`) and answer. */
  | { type: 'policy-prepare'; id: number; full: boolean; upserts: PolicyFile[]; removed: string[]; trigger: PolicyTrigger }
  | { type: 'policy-commit'; id: number; loadedAt: string }
  | { type: 'policy-abort'; id: number }
  /**
   * The primary's standing rejected change; null: it no longer stands. `change`: the record of a
   * change just rejected (times as ISO strings), for the worker's change hooks.
   */
  | { type: 'policy-failure'; failure: WireFailure | null; change?: WireChange };

export type PolicyToPrimary =
  | {
      type: 'policy-prepared';
      id: number;
      revision: string;
      status: 'applied' | 'unchanged' | 'rejected';
      message?: string;
      issues?: readonly PolicyIssueInfo[];
      compileMs: number;
      policies: number;
      rules: number;
    }
  | { type: 'policy-committed'; id: number; revision: string };

type WireChange = Omit<PolicyChange, 'at' | 'files'> & { at: string };

const toWire = (f: PolicyLoadFailure): WireFailure => ({ at: f.at.toISOString(), message: f.message, issues: f.issues });

interface LiveFiles {
  readonly files: ReadonlyMap<string, PolicyFile>;
  readonly revision: string;
  readonly loadedAt: Date;
}

/** The primary's side: one source, changes distributed to the workers in order. */
export class PolicyDistributor {
  private live: LiveFiles | undefined;
  private failure: PolicyLoadFailure | undefined;
  private readonly workerRevision = new Map<number, string>();
  private readonly pending = new Map<number, { index: number; resolve: (m: PolicyToPrimary | undefined) => void }>();
  private nextId = 1;
  private queued: PolicySnapshot | undefined;
  private running = false;
  private closed = false;

  constructor(
    private readonly source: PolicySource,
    private readonly logger: Logger,
    private readonly send: (index: number, message: PolicyToWorker) => boolean,
    private readonly readyWorkers: () => number[],
    /** Each change's result, once decided (metrics count them). */
    private readonly onResult: (status: PolicyChange['result']['status']) => void = () => undefined,
  ) {}

  /** Reads the set to start with (workers validate it as they load it). */
  async start(): Promise<void> {
    const snapshot = await this.source.read({ kind: 'startup' });
    this.live = { files: new Map(snapshot.files.map((f) => [f.path, f])), revision: policyRevision(snapshot.files), loadedAt: new Date() };
  }

  revision(): string | undefined {
    return this.live?.revision;
  }

  lastFailure(): PolicyLoadFailure | undefined {
    return this.failure;
  }

  /** When the live revision went live (for the fleet view). */
  loadedAt(): Date | undefined {
    return this.live?.loadedAt;
  }

  /** What a starting worker gets: the live set, and the standing failure if there is one. */
  messagesForNewWorker(): PolicyToWorker[] {
    const live = this.live!;
    const out: PolicyToWorker[] = [{ type: 'policy-load', files: [...live.files.values()], revision: live.revision, loadedAt: live.loadedAt.toISOString() }];
    if (this.failure) out.push({ type: 'policy-failure', failure: toWire(this.failure) });
    return out;
  }

  /** A worker serves now, with the revision it was sent; one that missed a change meanwhile catches up. */
  workerReady(index: number, revision: string): void {
    this.workerRevision.set(index, revision);
    if (revision === this.live?.revision) this.source.live?.(revision);
    this.kick();
  }

  workerGone(index: number): void {
    this.workerRevision.delete(index);
    for (const [id, p] of this.pending) {
      if (p.index === index) {
        this.pending.delete(id);
        p.resolve(undefined);
      }
    }
  }

  onMessage(index: number, message: PolicyToPrimary): void {
    const p = this.pending.get(message.id);
    if (p && p.index === index) {
      this.pending.delete(message.id);
      p.resolve(message);
    }
  }

  watch(): void {
    this.source.subscribe((event) => {
      if (event.kind === 'snapshot') this.queueSnapshot(event.snapshot);
      else this.reject(event.trigger, event.error.message, 'issues' in event.error ? ((event.error as { issues: PolicyIssueInfo[] }).issues ?? []) : []);
    });
  }

  /** SIGHUP: read the directory now and distribute it. */
  reload(trigger: PolicyTrigger): void {
    this.source.read(trigger).then(
      (snapshot) => this.queueSnapshot(snapshot),
      (err: Error) => this.reject(trigger, err.message, (err as { issues?: PolicyIssueInfo[] }).issues ?? []),
    );
  }

  close(): void {
    this.closed = true;
    this.source.close();
    for (const p of this.pending.values()) p.resolve(undefined);
    this.pending.clear();
  }

  private queueSnapshot(snapshot: PolicySnapshot): void {
    this.queued = snapshot;
    this.kick();
  }

  /** Distributes queued snapshots one at a time; then brings workers that started meanwhile up to date (once). */
  private kick(): void {
    if (this.running) return;
    this.running = true;
    // `finally` runs on a later turn even when the loop had nothing to do, so `running` never sticks.
    void this.loop().finally(() => {
      this.running = false;
      if (this.queued && !this.closed && this.readyWorkers().length > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    let caughtUp = false;
    for (;;) {
      const live = this.live;
      if (!this.queued && !caughtUp && live && this.readyWorkers().some((i) => this.workerRevision.get(i) !== live.revision)) {
        caughtUp = true;
        this.queued = { files: [...live.files.values()], trigger: { kind: 'file-change', detail: 'a worker catching up' } };
      }
      if (!this.queued || this.closed || this.readyWorkers().length === 0) return;
      const snapshot = this.queued;
      this.queued = undefined;
      if (!(await this.distribute(snapshot))) return; // no worker took it: tried again when one is ready
    }
  }

  private request(index: number, message: PolicyToWorker & { id: number }): Promise<PolicyToPrimary | undefined> {
    return new Promise((resolve) => {
      this.pending.set(message.id, { index, resolve });
      if (!this.send(index, message)) {
        this.pending.delete(message.id);
        resolve(undefined);
      }
    });
  }

  private reject(trigger: PolicyTrigger, message: string, issues: readonly PolicyIssueInfo[], change?: Partial<PolicyChange>): void {
    const at = new Date();
    this.failure = { at, message, issues };
    const record: PolicyChange = {
      trigger,
      at,
      previousRevision: this.live?.revision ?? null,
      revision: this.live?.revision ?? '',
      added: [],
      changed: [],
      removed: [],
      ...change,
      result: { status: 'rejected', message, issues },
    };
    logPolicyChange(this.logger, record, undefined);
    this.onResult('rejected');
    const { files: _files, ...rest } = record;
    const wire: WireChange = { ...rest, at: at.toISOString() };
    for (const index of this.readyWorkers()) this.send(index, { type: 'policy-failure', failure: toWire(this.failure), change: wire });
  }

  /**
   * False when no worker could take the snapshot (it stays queued). What the primary does per change
   * is in proportion to what changed plus one digest comparison per file: the revision (a hash over
   * every path) is the one the workers compute as they compile, not hashed again here.
   */
  private async distribute(snapshot: PolicySnapshot): Promise<boolean> {
    const live = this.live!;
    const upserts = snapshot.files.filter((f) => live.files.get(f.path)?.sha256 !== f.sha256);
    const addedFiles = upserts.filter((f) => !live.files.has(f.path));
    // Paths are unique in a snapshot: when it holds as many files as the live set plus the added
    // ones, no live path is missing from it.
    let removed: string[] = [];
    if (snapshot.files.length !== live.files.size + addedFiles.length) {
      const paths = new Set(snapshot.files.map((f) => f.path));
      removed = [...live.files.keys()].filter((p) => !paths.has(p));
    }
    const diff = {
      added: addedFiles.map((f) => ({ path: f.path, sha256: f.sha256 })),
      changed: upserts.filter((f) => live.files.has(f.path)).map((f) => ({ path: f.path, sha256: f.sha256, previousSha256: live.files.get(f.path)!.sha256 })),
      removed: removed.map((p) => ({ path: p, sha256: live.files.get(p)!.sha256 })),
    };
    // The same paths and digests are the same revision; otherwise the workers say which it is.
    const sameFiles = upserts.length === 0 && removed.length === 0;
    let revision = sameFiles ? live.revision : '';
    const baseOf = () => ({ trigger: snapshot.trigger, previousRevision: live.revision, revision, ...diff });
    const behind = this.readyWorkers().filter((i) => this.workerRevision.get(i) !== live.revision);
    if (sameFiles && behind.length === 0) {
      this.source.live?.(revision);
      if (this.failure) {
        this.failure = undefined;
        for (const index of this.readyWorkers()) this.send(index, { type: 'policy-failure', failure: null });
      }
      logPolicyChange(this.logger, { ...baseOf(), at: new Date(), result: { status: 'unchanged' } }, undefined);
      this.onResult('unchanged');
      return true;
    }
    // Phase one, one worker after another: the first to answer is the canary.
    const started = performance.now();
    const prepared: { index: number; id: number; reply: Extract<PolicyToPrimary, { type: 'policy-prepared' }> }[] = [];
    // A catch-up (same revision) goes only to the workers that are behind.
    const targets = sameFiles ? behind : this.readyWorkers();
    for (const index of targets.sort((a, b) => a - b)) {
      const full = this.workerRevision.get(index) !== live.revision;
      const id = this.nextId++;
      const reply = await this.request(index, { type: 'policy-prepare', id, full, upserts: full ? snapshot.files.slice() : upserts, removed: full ? [] : removed, trigger: snapshot.trigger });
      if (!reply || reply.type !== 'policy-prepared') continue; // the worker left; its replacement loads the live set
      revision ||= reply.revision;
      const disagrees = reply.revision !== revision;
      if (reply.status === 'rejected' || disagrees) {
        for (const p of prepared) this.send(p.index, { type: 'policy-abort', id: p.id });
        this.send(index, { type: 'policy-abort', id });
        // Workers given the same files compute the same revision; one that does not is refused, not mixed in.
        if (disagrees) this.reject(snapshot.trigger, `worker ${index} compiled revision ${reply.revision}, not ${revision}`, [], baseOf());
        else this.reject(snapshot.trigger, reply.message ?? 'policy set rejected', reply.issues ?? [], baseOf());
        return true;
      }
      prepared.push({ index, id, reply });
    }
    if (prepared.length === 0) {
      this.queued ??= snapshot;
      return false;
    }
    const compiledMs = performance.now() - started;
    // Phase two: every worker swaps.
    const loadedAt = new Date();
    await Promise.all(prepared.map((p) => this.request(p.index, { type: 'policy-commit', id: p.id, loadedAt: loadedAt.toISOString() })));
    for (const p of prepared) this.workerRevision.set(p.index, revision);
    if (revision === live.revision) return true; // only workers catching up: a standing failure still stands
    this.failure = undefined;
    this.live = { files: PatchedMap.patched(live.files, new Map(upserts.map((f) => [f.path, f])), removed), revision, loadedAt };
    this.source.live?.(revision);
    const first = prepared[0]!.reply;
    this.onResult('applied');
    logPolicyChange(this.logger, { ...baseOf(), at: loadedAt, result: { status: 'applied' } }, { policyCount: first.policies, ruleCount: first.rules }, {
      workers: prepared.length,
      compileMs: prepared.map((p) => Math.round(p.reply.compileMs * 10) / 10),
      liveAfterMs: Math.round(performance.now() - started),
      preparedAfterMs: Math.round(compiledMs),
    });
    return true;
  }
}

/** A worker's side: files kept to apply deltas to, one prepared change at a time. */
export class WorkerPolicies {
  private files: ReadonlyMap<string, PolicyFile> = new Map();
  private prepared: { id: number; change: PreparedChange; files: ReadonlyMap<string, PolicyFile> } | undefined;

  constructor(
    private readonly store: PolicyStore,
    private readonly reply: (message: PolicyToPrimary) => void,
    private readonly logger: Logger,
  ) {}

  /** The whole set at start; resolves with the change (rejected when the set does not load). */
  async load(message: Extract<PolicyToWorker, { type: 'policy-load' }>): Promise<PolicyChange> {
    this.files = new Map(message.files.map((f) => [f.path, f]));
    const prepared = await this.store.prepare({ files: message.files, trigger: { kind: 'startup' } }, true);
    return this.store.commit(prepared, new Date(message.loadedAt));
  }

  async handle(message: PolicyToWorker): Promise<void> {
    switch (message.type) {
      case 'policy-prepare': {
        if (this.prepared) this.store.abort(this.prepared.change);
        const upserts = new Map(message.upserts.map((f) => [f.path, f]));
        const files = message.full ? upserts : PatchedMap.patched(this.files, upserts, message.removed);
        const startedAt = Date.now();
        const change = await this.store.prepare({ files: files instanceof PatchedMap ? files.valueList() : [...files.values()], trigger: message.trigger });
        this.logger.debug({ revision: change.change.revision, status: change.change.result.status, startedAt, endedAt: Date.now(), compileMs: Math.round(change.compileMs * 10) / 10 }, 'policy change compiled');
        this.prepared = { id: message.id, change, files };
        const r = change.change.result;
        const set = change.candidate.set;
        this.reply({
          type: 'policy-prepared',
          id: message.id,
          revision: change.change.revision,
          status: r.status,
          message: r.status === 'rejected' ? r.message : undefined,
          issues: r.status === 'rejected' ? r.issues : undefined,
          compileMs: change.compileMs,
          policies: set?.policyCount ?? 0,
          rules: set?.ruleCount ?? 0,
        });
        return;
      }
      case 'policy-commit': {
        const p = this.prepared;
        if (!p || p.id !== message.id) return;
        this.prepared = undefined;
        const change = await this.store.commit(p.change, new Date(message.loadedAt));
        if (change.result.status !== 'rejected') this.files = p.files;
        this.reply({ type: 'policy-committed', id: message.id, revision: this.store.current()?.set.revision ?? '' });
        return;
      }
      case 'policy-abort': {
        if (this.prepared?.id === message.id) {
          this.store.abort(this.prepared.change);
          this.prepared = undefined;
        }
        return;
      }
      case 'policy-failure': {
        const f = message.failure;
        if (message.change) this.store.recordRejected({ ...message.change, at: new Date(message.change.at) });
        else this.store.recordFailure(f ? { at: new Date(f.at), message: f.message, issues: f.issues } : undefined);
        return;
      }
      case 'policy-load':
        return; // handled by the worker's start-up
    }
  }
}
