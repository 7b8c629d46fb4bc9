/**
 * The text of every policy revision that went live, kept where the audit side can read it later:
 * a JetStream Object Store bucket on the decision stream's NATS, one object per revision, named by
 * the revision. The object is a policy bundle (src/bundles/format.ts, `verdict.policy-bundle.v1`):
 * the format `verdict policies push` distributes, so a bundle pushed for distribution is also the
 * evidence of its revision, and either side can read what the other wrote. Every read is verified:
 * each file against its SHA-256, the files against the revision, and, when the chain recorded it,
 * the whole file list against the revision's full 256-bit digest.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as Nats from 'nats';
import type { ConnectionOptions, NatsConnection, ObjectStore } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import { BundleError, buildBundle, bundleFiles, DEFAULT_BUNDLE_LIMITS, parseBundle, REVISION_PATTERN, sha256OfBytes, type Bundle, type BundleLimits } from '../bundles/format.js';
import type { PolicyFile } from '../service/policy-source.js';
import { natsConnectFailure, natsServers, redactUrl } from '../events/nats-options.js';
import { revisionDigest } from './revision-digest.js';
import { readObject, type ObjectReadNames } from '../bundles/store.js';

/** What a reader found for a revision. `altered`: an object is there but is not that revision's text. */
export type RevisionLookup =
  | { readonly status: 'found'; readonly revision: string; readonly files: readonly PolicyFile[]; readonly bundle: Bundle; readonly digest: string; readonly where: string }
  | { readonly status: 'missing'; readonly detail: string; readonly where: string }
  | { readonly status: 'altered'; readonly detail: string; readonly where: string };

/** What the chain says about a revision: checked against the stored copy when known. */
export interface RevisionExpectation {
  /** All 64 hex digits of the revision digest (a policy record's revisionSha256). */
  readonly revisionSha256?: string;
}

export interface RevisionReader {
  /** Where revisions are read from, for messages: `object store VERDICT_POLICIES at nats://…`, a directory. */
  readonly name: string;
  get(revision: string, expect?: RevisionExpectation): Promise<RevisionLookup>;
  close(): Promise<void>;
}

export interface StoredText {
  readonly status: 'stored' | 'present';
  /** SHA-256 (hex) of the object's bytes. */
  readonly digest: string;
}

/** Who stored a revision and why: kept in the bundle's createdBy/message. */
export interface TextMeta {
  readonly createdBy: string;
  readonly message: string;
  readonly at: Date;
}

export const objectStoreStream = (bucket: string) => `OBJ_${bucket}`;

/** Checks a bundle's bytes as the text of `revision` (and, when given, its full digest). */
export function verifyRevisionBytes(revision: string, bytes: Uint8Array, where: string, expect: RevisionExpectation = {}, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): RevisionLookup {
  let bundle: Bundle;
  try {
    bundle = parseBundle(bytes, limits, { revision });
  } catch (err) {
    if (err instanceof BundleError) return { status: 'altered', detail: `the stored text of ${revision} does not verify: ${err.message}`, where };
    throw err;
  }
  if (expect.revisionSha256 !== undefined) {
    const digest = revisionDigest(bundle.files);
    if (digest !== expect.revisionSha256) {
      return { status: 'altered', detail: `the stored files of ${revision} hash to ${digest.slice(0, 16)}…${digest.slice(-8)}, but the chain records ${expect.revisionSha256.slice(0, 16)}…${expect.revisionSha256.slice(-8)}: the stored text is not the one that went live`, where };
    }
  }
  return { status: 'found', revision, files: bundleFiles(bundle), bundle, digest: sha256OfBytes(bytes), where };
}

/** Stored revisions are read as bundles are, with their own wording in the errors. */
const REVISION_READ: ObjectReadNames = { reading: 'reading', tooLarge: (max) => `the object is more than ${max} bytes` };

export interface NatsRevisionOptions {
  readonly url: string;
  readonly bucket: string;
  /** Credentials and TLS (natsAuthOptions of the events section); none for a plain local NATS. */
  readonly auth?: Partial<ConnectionOptions>;
  readonly timeoutMs: number;
  /** Create the bucket when it is missing (a server with events.manageStream); readers never do. */
  readonly create: boolean;
  readonly replicas?: number;
}

/** The Object Store bucket, read and written over one NATS connection made on first use. */
export class NatsRevisionStore implements RevisionReader {
  readonly name: string;
  private nc: NatsConnection | undefined;
  private os: ObjectStore | undefined;
  private connecting: Promise<ObjectStore> | undefined;

  constructor(private readonly options: NatsRevisionOptions) {
    this.name = `object store ${options.bucket} at ${redactUrl(options.url)}`;
  }

  get bucket(): string {
    return this.options.bucket;
  }

  private store(): Promise<ObjectStore> {
    if (this.os) return Promise.resolve(this.os);
    this.connecting ??= (async () => {
      const o = this.options;
      try {
        this.nc ??= await nats().connect({ servers: natsServers(o.url), ...(o.auth ?? {}), timeout: o.timeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 500, name: 'verdict policy revisions' }).catch((err: unknown) => {
          throw new Error(natsConnectFailure(o.url, err));
        });
        const jsm = await this.nc.jetstreamManager({ timeout: o.timeoutMs });
        const stream = objectStoreStream(o.bucket);
        const exists = await jsm.streams.info(stream).then(
          () => true,
          (err: Error) => {
            if (/not found/i.test(err.message)) return false;
            throw err;
          },
        );
        if (!exists && !o.create) throw new MissingBucketError(`object store ${o.bucket} does not exist on ${redactUrl(o.url)}`);
        const js = this.nc.jetstream({ timeout: o.timeoutMs });
        this.os = await js.views.os(o.bucket, exists ? {} : { storage: nats().StorageType.File, replicas: o.replicas ?? 1, description: 'Verdict policy revisions (bundles): one object per revision, named by it' });
        return this.os;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /**
   * Stores the text of a revision unless an intact copy is there already (pushed as a bundle, or
   * stored by another instance): content-addressed, so storing the same set twice changes nothing.
   * A copy that does not verify is replaced.
   */
  async put(files: readonly PolicyFile[], meta: TextMeta): Promise<StoredText> {
    const built = buildBundle(files, { createdAt: meta.at, createdBy: meta.createdBy, message: meta.message, tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } });
    const revision = built.bundle.revision;
    const os = await this.store();
    const existing = await this.get(revision);
    if (existing.status === 'found') return { status: 'present', digest: existing.digest };
    await os.putBlob({ name: revision, description: `Verdict policy revision ${revision}` }, built.bytes, { timeout: this.options.timeoutMs });
    return { status: 'stored', digest: built.digest };
  }

  async get(revision: string, expect: RevisionExpectation = {}): Promise<RevisionLookup> {
    const where = this.name;
    if (!REVISION_PATTERN.test(revision)) return { status: 'missing', detail: `"${revision.slice(0, 80)}" is not a revision (sha256:<16 hex digits>)`, where };
    let os: ObjectStore;
    try {
      os = await this.store();
    } catch (err) {
      if (err instanceof MissingBucketError) return { status: 'missing', detail: `${err.message}: revision ${revision} is not there`, where };
      throw err;
    }
    const info = await os.info(revision);
    if (!info || info.deleted) return { status: 'missing', detail: `revision ${revision} is not in ${where}${info?.deleted ? ' (it was deleted)' : ''}`, where };
    if (info.options?.link) return { status: 'altered', detail: `revision ${revision} in ${where} is a link to another object; revisions are stored whole`, where };
    let bytes: Uint8Array | null;
    try {
      bytes = await readObject(os, revision, DEFAULT_BUNDLE_LIMITS.maxBundleBytes, this.options.timeoutMs, REVISION_READ);
    } catch (err) {
      // The object store checks its chunks against the digest it recorded at put: a changed chunk fails here.
      if (err instanceof BundleError || /digest|corrupt/i.test((err as Error).message)) return { status: 'altered', detail: `revision ${revision} in ${where} cannot be read intact: ${(err as Error).message}`, where };
      throw err;
    }
    if (!bytes) return { status: 'missing', detail: `revision ${revision} is not in ${where}`, where };
    return verifyRevisionBytes(revision, bytes, where, expect);
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.os = undefined;
    await nc?.close().catch(() => undefined);
  }
}

class MissingBucketError extends Error {}

/**
 * Revisions kept as files (`<revision>.json`, e.g. `sha256:2a621c3a5002a1c6.json`, the object's
 * bytes as stored), for an audit without access to NATS: copy the objects out with any
 * Object Store client.
 */
export class DirectoryRevisionReader implements RevisionReader {
  readonly name: string;

  constructor(private readonly dir: string) {
    this.name = `directory ${dir}`;
  }

  async get(revision: string, expect: RevisionExpectation = {}): Promise<RevisionLookup> {
    const where = this.name;
    if (!REVISION_PATTERN.test(revision)) return { status: 'missing', detail: `"${revision.slice(0, 80)}" is not a revision (sha256:<16 hex digits>)`, where };
    let bytes: Buffer;
    try {
      bytes = readFileSync(path.join(this.dir, `${revision}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing', detail: `revision ${revision} is not in ${where} (no ${revision}.json)`, where };
      throw err;
    }
    if (bytes.length > DEFAULT_BUNDLE_LIMITS.maxBundleBytes) return { status: 'altered', detail: `${revision}.json is ${bytes.length} bytes, more than a revision may hold`, where };
    return verifyRevisionBytes(revision, bytes, where, expect);
  }

  async close(): Promise<void> {}
}

/**
 * A reader for `--revisions SOURCE`: nats://, tls://, ws(s):// URLs read the bucket (with `auth`:
 * credentials and TLS, the --nats-* flags); anything else is a directory.
 */
export function revisionReader(source: string, bucket: string, timeoutMs = 5000, auth: Partial<ConnectionOptions> = {}): RevisionReader {
  if (/^(nats|tls|wss?):\/\//.test(source)) return new NatsRevisionStore({ url: source, bucket, auth, timeoutMs, create: false });
  return new DirectoryRevisionReader(source);
}
