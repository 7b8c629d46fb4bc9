/**
 * The last good bundle on disk, so a replica starts when NATS is down. One file per source (objects
 * bucket and label): a header line (JSON: what it is, the bundle's sha256) and the bundle object as
 * received. Written to a temporary file, fsynced, renamed into place (a crash leaves the old file or
 * the new one, never half of one); read back only if the bytes hash to the header's digest and the
 * bundle passes every check a fetched one does.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { BundleError, parseBundle, sha256OfBytes, type Bundle, type BundleLimits } from './format.js';

const CACHE_FORMAT = 'verdict.policy-bundle-cache.v1';

interface CacheHeader {
  readonly format: typeof CACHE_FORMAT;
  readonly objects: string;
  readonly label: string;
  readonly revision: string;
  readonly digest: string;
  readonly cachedAt: string;
}

export interface CachedBundle {
  readonly bundle: Bundle;
  readonly bytes: Uint8Array;
  readonly cachedAt: string;
}

export class BundleCache {
  readonly file: string;

  constructor(
    readonly dir: string,
    private readonly objects: string,
    private readonly label: string,
  ) {
    this.file = path.join(dir, `${objects}.${label}.bundle`);
  }

  /** Keeps `bytes` (a bundle that went live) as the last good bundle. Off the serving path: asynchronous. */
  async write(bundle: Bundle, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    const header: CacheHeader = { format: CACHE_FORMAT, objects: this.objects, label: this.label, revision: bundle.revision, digest: sha256OfBytes(bytes), cachedAt: new Date().toISOString() };
    const tmp = path.join(this.dir, `.${path.basename(this.file)}.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', 0o640);
    try {
      await fh.write(`${JSON.stringify(header)}\n`);
      await fh.write(bytes);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, this.file);
    // The rename itself survives a crash only once the directory is synced.
    try {
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // Some file systems cannot sync a directory; the file itself is synced.
    }
  }

  /** The cached bundle, verified; undefined when there is none. Throws BundleError when it does not verify. */
  read(limits: BundleLimits): CachedBundle | undefined {
    let data: Buffer;
    try {
      data = readFileSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const bad = (why: string) => new BundleError('BUNDLE_MALFORMED', `cached bundle ${this.file}: ${why}`);
    if (data.length > limits.maxBundleBytes + 4096) throw bad(`${data.length} bytes, more than policySource.maxBundleBytes`);
    const nl = data.indexOf(0x0a);
    if (nl < 0 || nl > 4096) throw bad('no header line');
    let header: CacheHeader;
    try {
      header = JSON.parse(data.subarray(0, nl).toString('utf8')) as CacheHeader;
    } catch {
      throw bad('the header line is not JSON');
    }
    if (header?.format !== CACHE_FORMAT) throw bad(`not a ${CACHE_FORMAT} file`);
    if (header.objects !== this.objects || header.label !== this.label) throw bad(`holds label ${String(header.label)} of ${String(header.objects)}, not ${this.label} of ${this.objects}`);
    const bytes = data.subarray(nl + 1);
    if (sha256OfBytes(bytes) !== header.digest) throw new BundleError('BUNDLE_HASH_MISMATCH', `cached bundle ${this.file}: its content does not hash to the digest it was written with (damaged)`);
    const bundle = parseBundle(bytes, limits, { revision: header.revision });
    return { bundle, bytes, cachedAt: String(header.cachedAt) };
  }
}
