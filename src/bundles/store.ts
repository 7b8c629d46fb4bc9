/**
 * Bundles and labels in NATS JetStream: bundles in an Object Store (one object per revision, named
 * by it, never replaced by other content), labels in a KV bucket (one key per label, its value
 * naming the current revision; the bucket's history is the label's history). Used by the
 * `verdict policies` commands (which create the buckets) and by replicas (which only read).
 */
import type * as Nats from 'nats';
import type { JetStreamClient, KV, KvEntry, NatsConnection, ObjectInfo, ObjectStore } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import { BundleError, parseBundle, REVISION_PATTERN, type Bundle, type BundleLimits, type BundleTests, type BuiltBundle } from './format.js';
import { labelProblem } from './source-url.js';

export interface BundleBuckets {
  /** Object Store bucket of bundles. */
  readonly objects: string;
  /** KV bucket of labels. */
  readonly labels: string;
}

export const DEFAULT_BUCKETS: BundleBuckets = { objects: 'VERDICT_POLICIES', labels: 'VERDICT_POLICY_LABELS' };
/** Revisions of a label kept by the labels bucket (the most JetStream KV allows). */
export const LABEL_HISTORY = 64;
/** A label value larger than this is refused unread. */
const MAX_LABEL_VALUE_BYTES = 64 * 1024;

export const LABEL_SCHEMA = 'verdict.policy-label.v1';

/** The value of a label key: which revision, and who put it there, when, how. */
export interface LabelRecord {
  readonly schema: typeof LABEL_SCHEMA;
  readonly revision: string;
  /** sha256 (hex) of the bundle object: a replica refuses an object with another digest. */
  readonly digest: string;
  readonly size: number;
  readonly files: number;
  readonly at: string;
  readonly by: string;
  readonly action: 'push' | 'rollback';
  readonly message: string;
  /** The revision the label named before; null for its first. */
  readonly previous: string | null;
  readonly tests: BundleTests;
}

export interface LabelState {
  readonly record: LabelRecord;
  /** The KV revision of the entry (for compare-and-set updates). */
  readonly kvRevision: number;
  /** When NATS stored the entry (its clock). */
  readonly stored: Date;
}

export interface LabelHistoryEntry {
  readonly kvRevision: number;
  readonly stored: Date;
  readonly operation: 'PUT' | 'DEL' | 'PURGE';
  /** Undefined for deletes, and for values that are not label records (`problem` says why). */
  readonly record?: LabelRecord;
  readonly problem?: string;
}

/** A bucket a replica needs does not exist (nothing was pushed yet, or a wrong name). */
export class BucketMissingError extends Error {
  readonly code = 'BUCKET_MISSING';
}

/** The label changed between reading it and writing it (another push or rollback). */
export class LabelConflictError extends Error {
  readonly code = 'LABEL_CONFLICT';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a label value; throws BundleError (BUNDLE_MALFORMED) saying what is wrong. */
export function parseLabelRecord(value: Uint8Array): LabelRecord {
  const bad = (why: string) => new BundleError('BUNDLE_MALFORMED', `label value: ${why}`);
  if (value.length > MAX_LABEL_VALUE_BYTES) throw bad(`${value.length} bytes; at most ${MAX_LABEL_VALUE_BYTES} allowed`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (!isRecord(raw) || raw.schema !== LABEL_SCHEMA) throw bad(`not a ${LABEL_SCHEMA} record`);
  if (typeof raw.revision !== 'string' || !REVISION_PATTERN.test(raw.revision)) throw bad('revision must look like sha256:<16 hex digits>');
  if (typeof raw.digest !== 'string' || !/^[0-9a-f]{64}$/.test(raw.digest)) throw bad('digest must be 64 hex digits');
  for (const k of ['size', 'files'] as const) if (typeof raw[k] !== 'number' || !Number.isSafeInteger(raw[k]) || (raw[k] as number) < 0) throw bad(`${k} must be a count`);
  for (const k of ['at', 'by', 'message'] as const) if (typeof raw[k] !== 'string') throw bad(`${k} must be a string`);
  if (raw.action !== 'push' && raw.action !== 'rollback') throw bad('action must be push or rollback');
  if (raw.previous !== null && (typeof raw.previous !== 'string' || !REVISION_PATTERN.test(raw.previous))) throw bad('previous must be a revision or null');
  const t = raw.tests;
  if (!isRecord(t) || typeof t.run !== 'boolean' || ![t.passed, t.failed, t.suiteErrors].every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) throw bad('tests must be {run, passed, failed, suiteErrors}');
  return {
    schema: LABEL_SCHEMA,
    revision: raw.revision,
    digest: raw.digest,
    size: raw.size as number,
    files: raw.files as number,
    at: (raw.at as string).slice(0, 64),
    by: (raw.by as string).slice(0, 1024),
    action: raw.action,
    message: (raw.message as string).slice(0, 1024),
    previous: raw.previous as string | null,
    tests: { run: t.run, passed: t.passed as number, failed: t.failed as number, suiteErrors: t.suiteErrors as number },
  };
}

/** How a bounded object read names what it reads in its errors (a bundle, a stored revision). */
export interface ObjectReadNames {
  /** Prefix of the deadline error, before the object's name: "reading bundle" → "reading bundle sha256:… took longer …". */
  readonly reading: string;
  /** The size error: "the bundle is more than N bytes (policySource.maxBundleBytes)". */
  readonly tooLarge: (maxBytes: number) => string;
}

const BUNDLE_READ: ObjectReadNames = { reading: 'reading bundle', tooLarge: (max) => `the bundle is more than ${max} bytes (policySource.maxBundleBytes)` };

/** Bytes of an object, read with a size cap and a deadline (a hostile or stalled object ends the read). */
export async function readObject(os: ObjectStore, name: string, maxBytes: number, timeoutMs: number, names: ObjectReadNames = BUNDLE_READ): Promise<Uint8Array | null> {
  const result = await os.get(name);
  if (!result) return null;
  const reader = result.data.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${names.reading} ${name} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.length;
      if (size > maxBytes) throw new BundleError('BUNDLE_TOO_LARGE', names.tooLarge(maxBytes));
      chunks.push(value);
    }
    const err = await Promise.race([result.error, deadline]);
    if (err) throw err;
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks);
}

export interface FetchedBundle {
  readonly bundle: Bundle;
  readonly bytes: Uint8Array;
}

export class BundleStore {
  private constructor(
    readonly buckets: BundleBuckets,
    private readonly os: ObjectStore,
    private readonly kv: KV,
    private readonly limits: BundleLimits,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Opens both buckets. `create`: make them if missing (the CLI); otherwise a missing bucket is a
   * BucketMissingError (a replica reads what a push made; it never creates).
   */
  static async open(nc: NatsConnection, buckets: BundleBuckets, options: { readonly create: boolean; readonly limits: BundleLimits; readonly timeoutMs: number }): Promise<BundleStore> {
    const js: JetStreamClient = nc.jetstream({ timeout: options.timeoutMs });
    let os: ObjectStore;
    let kv: KV;
    if (options.create) {
      os = await js.views.os(buckets.objects, { storage: nats().StorageType.File, description: 'Verdict policy bundles, one object per revision' });
      kv = await js.views.kv(buckets.labels, { history: LABEL_HISTORY, storage: nats().StorageType.File, description: 'Verdict policy labels: the current bundle revision of each', timeout: options.timeoutMs });
    } else {
      const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs });
      for (const [stream, what] of [[`OBJ_${buckets.objects}`, `object store ${buckets.objects}`], [`KV_${buckets.labels}`, `KV bucket ${buckets.labels}`]] as const) {
        try {
          await jsm.streams.info(stream);
        } catch (err) {
          if (/not found/i.test((err as Error).message)) throw new BucketMissingError(`${what} does not exist: push a bundle first (verdict policies push)`);
          throw err;
        }
      }
      os = await js.views.os(buckets.objects);
      kv = await js.views.kv(buckets.labels, { bindOnly: true, timeout: options.timeoutMs });
    }
    return new BundleStore(buckets, os, kv, options.limits, options.timeoutMs);
  }

  /** The object holding `revision`, if the store has it (and it is not deleted). */
  async bundleInfo(revision: string): Promise<ObjectInfo | null> {
    const info = await this.os.info(revision);
    return info && !info.deleted ? info : null;
  }

  /** Fetches and checks a bundle: its object must exist, be no link, within the limits, hash right. */
  async getBundle(revision: string, expectDigest?: string): Promise<FetchedBundle> {
    if (!REVISION_PATTERN.test(revision)) throw new BundleError('BUNDLE_MALFORMED', `"${revision.slice(0, 80)}" is not a revision (sha256:<16 hex digits>)`);
    const info = await this.bundleInfo(revision);
    if (!info) throw new BundleNotFoundError(`bundle ${revision} is not in object store ${this.buckets.objects}`);
    // A link would fetch another object (or bucket) than the one named by the revision.
    if (info.options?.link) throw new BundleError('BUNDLE_MALFORMED', `bundle ${revision} is a link to another object; bundles are stored whole`);
    if (info.size > this.limits.maxBundleBytes) throw new BundleError('BUNDLE_TOO_LARGE', `the bundle is ${info.size} bytes; at most ${this.limits.maxBundleBytes} allowed (policySource.maxBundleBytes)`);
    const bytes = await readObject(this.os, revision, this.limits.maxBundleBytes, this.timeoutMs);
    if (!bytes) throw new BundleNotFoundError(`bundle ${revision} is not in object store ${this.buckets.objects}`);
    return { bundle: parseBundle(bytes, this.limits, { revision, digest: expectDigest }), bytes };
  }

  /**
   * Stores a bundle under its revision. An object already there that holds that revision is kept
   * (pushing the same set again is idempotent); one that does not verify is replaced.
   */
  async putBundle(built: BuiltBundle): Promise<'stored' | 'present'> {
    const revision = built.bundle.revision;
    const info = await this.bundleInfo(revision);
    if (info) {
      try {
        await this.getBundle(revision);
        return 'present';
      } catch (err) {
        if (!(err instanceof BundleError)) throw err;
        // Not the content its name promises: the content we hold is, so it replaces it.
      }
    }
    await this.os.putBlob({ name: revision, description: `Verdict policy bundle ${revision}` }, built.bytes, { timeout: this.timeoutMs });
    return 'stored';
  }

  /** The label's current entry; null when it was never set or was deleted. A value that is not a label record throws. */
  async label(label: string): Promise<LabelState | null> {
    checkLabel(label);
    const e = await this.kv.get(label);
    if (!e || e.operation !== 'PUT') return null;
    return { record: parseLabelRecord(e.value), kvRevision: e.revision, stored: e.created };
  }

  /** Every kept entry of a label, oldest first (the bucket keeps the last 64). */
  async history(label: string): Promise<LabelHistoryEntry[]> {
    checkLabel(label);
    const out: LabelHistoryEntry[] = [];
    const iter = await this.kv.history({ key: label });
    for await (const e of iter) out.push(historyEntry(e));
    return out.sort((a, b) => a.kvRevision - b.kvRevision);
  }

  /** The labels that have a current entry. */
  async labels(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys()) out.push(k);
    return out.sort();
  }

  /**
   * Points the label at a new record, only if it is still at `expected` (its KV revision; null =
   * the label must not exist): a push or rollback racing another fails instead of undoing it.
   */
  async setLabel(label: string, record: LabelRecord, expected: number | null): Promise<number> {
    checkLabel(label);
    const value = JSON.stringify(record);
    try {
      return expected === null ? await this.kv.create(label, value) : await this.kv.update(label, value, expected);
    } catch (err) {
      const m = (err as Error).message;
      if (/wrong last sequence|key exists/i.test(m)) throw new LabelConflictError(`label ${label} changed meanwhile (another push or rollback); run the command again`);
      throw err;
    }
  }

  /** The KV bucket, for watching a label. */
  labelsKv(): KV {
    return this.kv;
  }
}

/** A label's current entry from its bucket alone (the fleet view needs no bundle); null if none. */
export async function readLabel(nc: NatsConnection, labelsBucket: string, label: string, timeoutMs: number): Promise<LabelState | null> {
  checkLabel(label);
  let kv: KV;
  try {
    kv = await nc.jetstream({ timeout: timeoutMs }).views.kv(labelsBucket, { bindOnly: true, timeout: timeoutMs });
  } catch (err) {
    if (/not found/i.test((err as Error).message)) return null;
    throw err;
  }
  const e = await kv.get(label);
  if (!e || e.operation !== 'PUT') return null;
  return { record: parseLabelRecord(e.value), kvRevision: e.revision, stored: e.created };
}

export class BundleNotFoundError extends Error {
  readonly code = 'BUNDLE_NOT_FOUND';
}

function checkLabel(label: string): void {
  const problem = labelProblem(label);
  if (problem) throw new Error(problem);
}

function historyEntry(e: KvEntry): LabelHistoryEntry {
  const base = { kvRevision: e.revision, stored: e.created, operation: e.operation };
  if (e.operation !== 'PUT') return base;
  try {
    return { ...base, record: parseLabelRecord(e.value) };
  } catch (err) {
    return { ...base, problem: (err as Error).message };
  }
}
