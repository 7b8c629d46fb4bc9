/**
 * Policies from a bundle label in NATS (`policySource.url: nats://HOST:PORT/LABEL`). At start the
 * label's bundle is fetched and checked; without NATS (or when that bundle does not verify or load)
 * the last good bundle kept on disk is served. Then the label's KV key is watched (re-watched after
 * every reconnect, and read every pollIntervalMs as well): each new revision is fetched, checked
 * (object digest, every file's hash, the revision) and delivered as one complete snapshot. A bundle
 * that does not verify is delivered as unreadable, so the store keeps the good set and reports it.
 */
import type { ConnectionOptions, KvEntry, NatsConnection, QueuedIterator } from 'nats';
import type { Logger } from '../server/logger.js';
import type { PolicySnapshot, PolicySource, PolicySourceEvent, PolicyTrigger } from '../service/policy-source.js';
import { compilePolicySet, PolicyLoadError } from '../policy/index.js';
import { BundleCache } from './cache.js';
import { BackgroundNats } from './connection.js';
import { BundleError, bundleFiles, type Bundle, type BundleLimits } from './format.js';
import type { BundleSourceUrl } from './source-url.js';
import { BucketMissingError, BundleNotFoundError, BundleStore, parseLabelRecord, type BundleBuckets, type LabelRecord } from './store.js';

export interface NatsBundleSourceOptions {
  readonly url: BundleSourceUrl;
  readonly buckets: BundleBuckets;
  readonly cacheDir: string;
  readonly timeoutMs: number;
  readonly pollIntervalMs: number;
  readonly limits: BundleLimits;
  /** Credentials and TLS, read at each connect. */
  readonly clientOptions: () => Partial<ConnectionOptions>;
  /** Shown in the NATS server's connection list. */
  readonly clientName: string;
}

/** What the fleet view reports about the source. */
export interface BundleSourceStatus {
  readonly label: string;
  readonly connected: boolean;
  /** The revision the label named when last read; undefined before NATS answered. */
  readonly wanted: string | undefined;
  /** The revision kept on disk as the last good bundle. */
  readonly cached: string | undefined;
}

interface Held {
  readonly bundle: Bundle;
  readonly bytes: Uint8Array;
}

/** Errors that say the bundle itself is bad (retrying will not help), not that NATS is unreachable. */
const isPermanent = (err: unknown) => err instanceof BundleError || err instanceof BundleNotFoundError;

function describe(label: string, r: LabelRecord): string {
  return `label ${label}: ${r.revision} (${r.action} by ${r.by || 'unknown'} at ${r.at})`;
}

export class NatsBundleSource implements PolicySource {
  readonly name: string;
  readonly nats: BackgroundNats;
  private readonly cache: BundleCache;
  private listener: ((event: PolicySourceEvent) => void) | undefined;
  private store: { nc: NatsConnection; store: Promise<BundleStore> } | undefined;
  /** KV revision of the label entry last handled (delivered, or refused for good). */
  private handledKv = 0;
  /** The bundle revision last delivered. */
  private delivered: string | undefined;
  private wanted: string | undefined;
  private cachedRevision: string | undefined;
  /** Bundles delivered and not yet known live, by revision (for the cache). */
  private readonly held = new Map<string, Held>();
  private watcher: QueuedIterator<KvEntry> | undefined;
  private watchGeneration = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private pendingEntry: KvEntry | undefined;
  private processing = false;
  private closed = false;
  /** A failure found at start while a cached bundle was served instead: reported once watching. */
  private startupFailure: { trigger: PolicyTrigger; error: Error } | undefined;
  private stopUpListener: (() => void) | undefined;

  constructor(
    private readonly options: NatsBundleSourceOptions,
    private readonly logger: Logger,
  ) {
    this.name = options.url.display;
    this.nats = new BackgroundNats(options.url.servers, options.clientName, options.clientOptions, options.timeoutMs, logger, `policy bundles (${options.url.display})`);
    this.cache = new BundleCache(options.cacheDir, options.buckets.objects, options.url.label);
  }

  get label(): string {
    return this.options.url.label;
  }

  status(): BundleSourceStatus {
    return { label: this.label, connected: this.nats.connection() !== undefined, wanted: this.wanted, cached: this.cachedRevision };
  }

  private openStore(nc: NatsConnection): Promise<BundleStore> {
    if (this.store?.nc !== nc) {
      const store = BundleStore.open(nc, this.options.buckets, { create: false, limits: this.options.limits, timeoutMs: this.options.timeoutMs });
      this.store = { nc, store };
      store.catch(() => {
        if (this.store?.store === store) this.store = undefined; // tried again next time
      });
    }
    return this.store.store;
  }

  /**
   * The label's bundle now. At start NATS gets `timeoutMs`; when it does not answer, or the label's
   * bundle cannot be used, the cached bundle is served (a failure of the bundle itself is reported
   * once watching starts). Without either, it throws saying what is missing.
   */
  async read(trigger: PolicyTrigger): Promise<PolicySnapshot> {
    const startup = trigger.kind === 'startup';
    this.nats.start();
    if (startup) await this.nats.waitUp(this.options.timeoutMs);
    const nc = this.nats.connection();
    let failure: Error;
    let entryRevision = 0;
    if (nc) {
      try {
        const store = await this.openStore(nc);
        const entry = await store.labelsKv().get(this.label);
        if (entry && entry.operation === 'PUT') {
          entryRevision = entry.revision;
          const record = parseLabelRecord(entry.value);
          this.wanted = record.revision;
          const fetched = await store.getBundle(record.revision, record.digest);
          if (startup) this.checkLoadsOrFallBack(fetched.bundle);
          this.handledKv = entry.revision;
          return this.snapshotOf(fetched, { ...trigger, detail: describe(this.label, record) });
        }
        failure = new BundleNotFoundError(`label ${this.label} in KV bucket ${this.options.buckets.labels} names no bundle: push one (verdict policies push DIR --label ${this.label})`);
      } catch (err) {
        failure = err as Error;
      }
    } else {
      failure = new Error(`NATS at ${this.options.url.servers.join(',')} did not answer within ${this.options.timeoutMs} ms`);
    }
    if (!startup) {
      // SIGHUP without NATS: the set delivered last is still what the label named.
      const last = this.delivered && this.held.get(this.delivered);
      if (last && !isPermanent(failure)) return this.snapshotOf(last, { ...trigger, detail: `label ${this.label}: ${last.bundle.revision} (NATS unavailable: the bundle received last)` });
      throw failure;
    }
    return this.startFromCache(trigger, failure, entryRevision);
  }

  /**
   * At start, with a cached bundle of another revision to fall back on: a label bundle that does not
   * compile is not started with (the replica would not start at all); the cache is, and the failure
   * is reported like any rejected change. Only then does the source compile (once, at start).
   */
  private checkLoadsOrFallBack(bundle: Bundle): void {
    let cached;
    try {
      cached = this.cache.read(this.options.limits);
    } catch {
      return; // no usable cache: the store reports the label bundle's problems
    }
    if (!cached || cached.bundle.revision === bundle.revision) return;
    try {
      compilePolicySet(bundleFiles(bundle));
    } catch (err) {
      if (err instanceof PolicyLoadError) throw new StartFallback(err, bundle.revision);
      throw err;
    }
  }

  private startFromCache(trigger: PolicyTrigger, failure: Error, entryRevision: number): PolicySnapshot {
    let cached;
    try {
      cached = this.cache.read(this.options.limits);
    } catch (err) {
      throw new Error(`${failure.message}; and the cached bundle cannot be used: ${(err as Error).message}`);
    }
    if (!cached) throw new Error(`${failure.message}; and no bundle is cached in ${this.cache.file} yet`);
    const labelIsBad = failure instanceof StartFallback || isPermanent(failure);
    const reported = failure instanceof StartFallback ? failure.cause : failure;
    this.cachedRevision = cached.bundle.revision;
    this.logger.warn(
      { label: this.label, revision: cached.bundle.revision, cachedAt: cached.cachedAt, cache: this.cache.file, reason: failure.message },
      'serving the cached policy bundle: the label could not be used at start',
    );
    const snapshot = this.snapshotOf(cached, { ...trigger, detail: `label ${this.label}: ${cached.bundle.revision} from the cache (${cached.cachedAt})` });
    if (labelIsBad) {
      // Reported once watching starts; that label entry is not fetched again, a newer one is.
      this.startupFailure = { trigger: { kind: 'bundle-switch', detail: `label ${this.label}: ${this.wanted ?? '(unreadable entry)'}` }, error: reported };
      this.handledKv = entryRevision;
      if (this.wanted) this.delivered = this.wanted;
    }
    return snapshot;
  }

  private snapshotOf(held: Held, trigger: PolicyTrigger): PolicySnapshot {
    this.delivered = held.bundle.revision;
    this.held.set(held.bundle.revision, held);
    return { files: bundleFiles(held.bundle), trigger };
  }

  subscribe(listener: (event: PolicySourceEvent) => void): void {
    this.listener = listener;
    if (this.startupFailure) {
      const { trigger, error } = this.startupFailure;
      this.startupFailure = undefined;
      setImmediate(() => this.emit({ kind: 'unreadable', trigger, error }));
    }
    this.stopUpListener = this.nats.onUp((nc) => void this.watch(nc));
    this.nats.start();
    if (this.options.pollIntervalMs > 0) this.schedulePoll();
  }

  private emit(event: PolicySourceEvent): void {
    if (!this.closed) this.listener?.(event);
  }

  /** (Re)watches the label: the watch's first entry is the current one, so a restart misses nothing. */
  private async watch(nc: NatsConnection): Promise<void> {
    const generation = ++this.watchGeneration;
    this.watcher?.stop();
    this.watcher = undefined;
    let iter: QueuedIterator<KvEntry>;
    try {
      iter = await (await this.openStore(nc)).labelsKv().watch({ key: this.label });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, label: this.label }, 'cannot watch the policy label; it is read again every pollIntervalMs');
      return;
    }
    if (generation !== this.watchGeneration || this.closed) {
      iter.stop();
      return;
    }
    this.watcher = iter;
    try {
      for await (const e of iter) this.onEntry(e);
    } catch (err) {
      if (generation === this.watchGeneration && !this.closed) this.logger.warn({ err: (err as Error).message, label: this.label }, 'policy label watch ended; watching again at the next reconnect or poll');
    }
  }

  private schedulePoll(): void {
    this.pollTimer = setTimeout(() => {
      void this.poll().finally(() => {
        if (!this.closed) this.schedulePoll();
      });
    }, this.options.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** Catches an update the watch missed (and restarts a watch that ended). */
  private async poll(): Promise<void> {
    const nc = this.nats.connection();
    if (!nc || this.closed) return;
    try {
      const e = await (await this.openStore(nc)).labelsKv().get(this.label);
      if (e) this.onEntry(e);
      if (!this.watcher) void this.watch(nc);
    } catch (err) {
      this.logger.debug({ err: (err as Error).message, label: this.label }, 'policy label poll failed');
    }
  }

  private onEntry(e: KvEntry): void {
    if (this.closed || e.revision <= this.handledKv) return;
    if (e.operation !== 'PUT') {
      this.handledKv = e.revision;
      this.logger.warn({ label: this.label, operation: e.operation }, 'the policy label was deleted; the live policy set keeps serving');
      return;
    }
    this.pendingEntry = e;
    if (!this.processing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    try {
      while (this.pendingEntry && !this.closed) {
        const e = this.pendingEntry;
        this.pendingEntry = undefined;
        await this.process(e);
      }
    } finally {
      this.processing = false;
    }
  }

  private async process(e: KvEntry): Promise<void> {
    let record: LabelRecord;
    try {
      record = parseLabelRecord(e.value);
    } catch (err) {
      this.handledKv = e.revision;
      this.emit({ kind: 'unreadable', trigger: { kind: 'bundle-switch', detail: `label ${this.label}: KV revision ${e.revision}` }, error: err as Error });
      return;
    }
    this.wanted = record.revision;
    const trigger: PolicyTrigger = { kind: 'bundle-switch', detail: describe(this.label, record) };
    if (record.revision === this.delivered) {
      this.handledKv = e.revision;
      return;
    }
    const nc = this.nats.connection();
    if (!nc) return; // fetched once NATS is back (the re-watch delivers the entry again)
    try {
      const fetched = await (await this.openStore(nc)).getBundle(record.revision, record.digest);
      this.handledKv = e.revision;
      this.emit({ kind: 'snapshot', snapshot: this.snapshotOf(fetched, trigger) });
    } catch (err) {
      if (isPermanent(err) || err instanceof BucketMissingError) {
        this.handledKv = e.revision;
        this.delivered = record.revision;
        this.emit({ kind: 'unreadable', trigger, error: err as Error });
      } else {
        // NATS trouble: the next poll or reconnect tries again.
        this.logger.warn({ err: (err as Error).message, label: this.label, revision: record.revision }, 'cannot fetch the policy bundle yet; trying again');
      }
    }
  }

  /** A delivered bundle went live: it becomes the last good bundle on disk. */
  live(revision: string): void {
    const held = this.held.get(revision);
    for (const r of this.held.keys()) if (r !== revision && r !== this.delivered) this.held.delete(r);
    if (!held || revision === this.cachedRevision) return;
    this.cachedRevision = revision;
    this.cache.write(held.bundle, held.bytes).then(
      () => this.logger.debug({ revision, cache: this.cache.file }, 'policy bundle cached'),
      (err: unknown) => {
        if (this.cachedRevision === revision) this.cachedRevision = undefined;
        this.logger.error({ err: (err as Error).message, cache: this.cache.file }, 'the policy bundle could not be cached; a start without NATS would use an older one');
      },
    );
  }

  close(): void {
    this.closed = true;
    this.listener = undefined;
    this.watchGeneration++;
    this.watcher?.stop();
    this.stopUpListener?.();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    void this.nats.close();
  }
}

/** The label's bundle does not load, and a cached bundle exists to start with instead. */
class StartFallback extends Error {
  constructor(
    override readonly cause: PolicyLoadError,
    revision: string,
  ) {
    super(`bundle ${revision} does not load: ${cause.message}`);
  }
}
