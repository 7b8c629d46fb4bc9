import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { CompiledPolicySet } from '../engine/model.js';
import { compilePolicySet, listFiles, PolicyLoadError, readPolicySources, type CompileOptions, type PolicyIssue, type PolicySourceFile } from '../policy/index.js';
import { validateInChild } from './policy-validation.js';

export interface LoadedPolicySet {
  readonly set: CompiledPolicySet;
  readonly loadedAt: Date;
  /** The exact files the set was compiled from (sent to cluster workers so all load the same bytes). */
  readonly sources: readonly PolicySourceFile[];
}

export interface LoadFailure {
  readonly at: Date;
  readonly message: string;
  readonly issues: readonly PolicyIssue[];
}

export type ReloadResult =
  | { readonly status: 'loaded'; readonly revision: string; readonly previous: string | undefined }
  | { readonly status: 'unchanged'; readonly revision: string }
  | { readonly status: 'rejected'; readonly failure: LoadFailure };

export interface PolicyStoreEvents {
  onReload?(result: ReloadResult): void;
}

/**
 * Holds the live policy set and swaps it atomically. A reload compiles the new set completely
 * before the swap, so in-flight checks finish on the set they started with, and a broken change
 * never replaces a good set: it is recorded as the last failure and the old set keeps serving.
 */
export class PolicyStore {
  private live: LoadedPolicySet | undefined;
  private failure: LoadFailure | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private pending = false;
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private fingerprint = '';

  /**
   * @param validateOnly compile on a short-lived thread and keep only the set's summary: a cluster
   *   primary validates and forwards files but never decides, and a large set's rules cost hundreds of MB.
   */
  constructor(
    readonly directory: string,
    private readonly events: PolicyStoreEvents = {},
    private readonly validateOnly = false,
    /** The request and cost limits each condition's worst case is checked against (config `limits`). */
    private readonly compileOptions: CompileOptions = {},
  ) {}

  current(): LoadedPolicySet | undefined {
    return this.live;
  }

  lastFailure(): LoadFailure | undefined {
    return this.failure;
  }

  /** Loads (or re-loads) the directory; concurrent calls coalesce into one extra reload. */
  reload(): Promise<ReloadResult> {
    if (this.reloading) {
      this.pending = true;
      return this.reloading;
    }
    this.reloading = this.doReload().finally(() => {
      this.reloading = undefined;
      if (this.pending) {
        this.pending = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  private async doReload(): Promise<ReloadResult> {
    let result: ReloadResult;
    try {
      this.fingerprint = await this.computeFingerprint();
      const sources = await readPolicySources(this.directory);
      const set = this.validateOnly ? await validateInChild(sources, this.compileOptions) : compilePolicySet(sources, this.compileOptions);
      result = this.install(sources, set, new Date());
    } catch (err) {
      result = this.reject(err);
    }
    this.events.onReload?.(result);
    return result;
  }

  /** A set that did not load: recorded as the last failure; the live set keeps serving. */
  private reject(err: unknown): ReloadResult {
    const issues = err instanceof PolicyLoadError ? err.issues : [];
    this.failure = { at: new Date(), message: (err as Error).message, issues };
    return { status: 'rejected', failure: this.failure };
  }

  private install(sources: readonly PolicySourceFile[], set: CompiledPolicySet, loadedAt: Date): ReloadResult {
    const previous = this.live?.set.revision;
    if (previous === set.revision) {
      // The files are back to the live content: an earlier rejected change no longer stands.
      this.failure = undefined;
      return { status: 'unchanged', revision: set.revision };
    }
    this.live = { set, loadedAt, sources };
    this.failure = undefined;
    return { status: 'loaded', revision: set.revision, previous };
  }

  /**
   * Installs a set from files handed over by a supervisor (cluster workers): the primary has read
   * and validated them, so every worker compiles the same bytes and serves the same revision.
   */
  loadSources(sources: readonly PolicySourceFile[], loadedAt: Date): ReloadResult {
    let result: ReloadResult;
    try {
      result = this.install(sources, compilePolicySet(sources, this.compileOptions), loadedAt);
    } catch (err) {
      result = this.reject(err);
    }
    this.events.onReload?.(result);
    return result;
  }

  /** Records a reload the supervisor rejected, so GetPolicySet reports it here too (undefined: it no longer stands). */
  recordFailure(failure: LoadFailure | undefined): void {
    this.failure = failure;
  }

  /** Cheap summary of the directory (paths, sizes, mtimes) so polling does not recompile needlessly. */
  private async computeFingerprint(): Promise<string> {
    try {
      const files = await listFiles(this.directory, (n) => /\.ya?ml$/.test(n));
      const parts = await Promise.all(
        files.map(async (f) => {
          const s = await stat(f);
          return `${f}:${s.size}:${s.mtimeMs}`;
        }),
      );
      return parts.join('|');
    } catch {
      return 'unreadable';
    }
  }

  /**
   * Watches the directory for changes (fs.watch, recursive) and also polls a fingerprint, because
   * watch events are lost on some file systems and on Kubernetes ConfigMap symlink swaps.
   */
  watch(debounceMs: number, pollIntervalMs: number): void {
    const schedule = () => {
      if (this.debounceTimer) clearTimeout(this.debounceTimer);
      this.debounceTimer = setTimeout(() => void this.reload(), debounceMs);
      this.debounceTimer.unref();
    };
    try {
      this.watcher = watch(this.directory, { recursive: true, persistent: false }, schedule);
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = undefined; // polling still covers us
    }
    if (pollIntervalMs > 0) {
      this.pollTimer = setInterval(() => {
        void this.computeFingerprint().then((fp) => {
          if (fp !== this.fingerprint && !this.reloading) schedule();
        });
      }, pollIntervalMs);
      this.pollTimer.unref();
    }
  }

  close(): void {
    this.watcher?.close();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }
}
