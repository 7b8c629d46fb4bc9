import { createHash } from 'node:crypto';
import { pathOrderKey } from '../policy/revision.js';

/**
 * The full SHA-256 (64 hex digits) of a policy set's file list, by the revision formula
 * (src/policy/revision.ts: each file's path, NUL, its sha256, newline, in path order). A revision is
 * `sha256:` and the first 16 digits of it; policy change records carry all 64, so a stored copy of
 * the text is checked against 256 bits, not 64.
 */
export function revisionDigest(files: readonly { readonly path: string; readonly sha256: string }[]): string {
  const sorted = files.map((f) => ({ f, k: pathOrderKey(f.path) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const hash = createHash('sha256');
  for (const { f } of sorted) hash.update(f.path).update('\0').update(f.sha256).update('\n');
  return hash.digest('hex');
}

/** `sha256:<16 hex>` of a full revision digest. */
export function revisionOfDigest(digest: string): string {
  return `sha256:${digest.slice(0, 16)}`;
}
