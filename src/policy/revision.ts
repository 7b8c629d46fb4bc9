import { createHash } from 'node:crypto';

/** sha256 of a file's text (UTF-8), hex: how every file of a set is identified and cached. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Sort key of a policy path: the order of a recursive directory walk that sorts each directory's
 * entries by name ("a/x.yaml" before "a.yaml"), which is the order rules are considered in. The
 * separator becomes the lowest character, so plain string comparison compares segment by segment.
 */
export function pathOrderKey(path: string): string {
  return path.replaceAll('/', '\u0000');
}

export function comparePolicyPaths(a: string, b: string): number {
  const ka = pathOrderKey(a);
  const kb = pathOrderKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The revision of a policy set: sha256 over every file's path and content hash, in path order, so the
 * same files give the same revision from any source (a directory, a bundle), and a change to one file
 * needs only that file hashed again.
 */
export function policyRevision(files: readonly { readonly path: string; readonly sha256: string }[]): string {
  const sorted = files.map((f) => ({ f, k: pathOrderKey(f.path) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return revisionOfOrdered(sorted.map((e) => e.f));
}

/** policyRevision of files already in path order (comparePolicyPaths). */
export function revisionOfOrdered(files: Iterable<{ readonly path: string; readonly sha256: string }>): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.path).update('\0').update(f.sha256).update('\n');
  return `sha256:${hash.digest('hex').slice(0, 16)}`;
}
