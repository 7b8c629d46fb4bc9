import { lstatSync, readdir as readdirCallback, readdirSync, readFileSync, readlinkSync, stat as statCallback, statSync, type BigIntStats, type Dirent } from 'node:fs';
import { lstat, readFile, readlink, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { PolicyFile } from '../service/policy-source.js';
import { PolicyLoadError } from './issues.js';
import { sha256Hex } from './revision.js';
import { isPolicyFile } from './source.js';
import { PatchedMap } from './patched-map.js';
import { runInSlices, runToEnd, type Work } from './slices.js';

/**
 * Kubernetes mounts a ConfigMap as a directory of timestamped versions, a `..data` symlink to the
 * current one, and top-level symlinks through `..data`. The kubelet writes a new version completely,
 * then swaps `..data` with one rename; reading through the version `..data` points at gives a
 * complete set even while a swap happens.
 */
export const CONFIGMAP_DATA_LINK = '..data';

/** What identifies a file's content without reading it (ns times: a write always changes ctime). */
export interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** The policy files of a directory as stat saw them, and where they were read from. */
export interface DirectoryScan {
  /** The `..data` target when the directory is a ConfigMap mount, else undefined. */
  readonly dataTarget: string | undefined;
  /** The directory the files are read from (the ConfigMap version, or the directory itself). */
  readonly root: string;
  /** Policy files by path relative to the root. Unreadable entries are stamped as missing. */
  readonly files: ReadonlyMap<string, FileStamp | undefined>;
  /** Every directory walked (to watch them). */
  readonly directories: readonly string[];
  /**
   * Set by rescanPaths: this scan is `base` with only `paths` stat'ed again, so it can differ from
   * `base` at those paths only. Comparisons and reads then look at those, not at every file. Weak:
   * a chain of rescans must not keep every earlier scan (and its map of every file) alive.
   */
  readonly rescanOf?: { readonly base: WeakRef<DirectoryScan>; readonly paths: readonly string[] };
}

const stampOf = (s: BigIntStats): FileStamp => ({ dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs });

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  // The same object is common (a rescan keeps the base's stamps of files it did not stat again) and
  // spares five bigint comparisons per file on every change to a large directory.
  if (a === b) return true;
  if (!a || !b) return false;
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export function sameScan(a: DirectoryScan, b: DirectoryScan): boolean {
  if (a.dataTarget !== b.dataTarget || a.files.size !== b.files.size) return false;
  const only = pathsSince(a, b) ?? pathsSince(b, a);
  if (only) {
    for (const p of only) if (a.files.has(p) !== b.files.has(p) || !sameStamp(a.files.get(p), b.files.get(p))) return false;
    return true;
  }
  for (const [p, s] of a.files) if (!b.files.has(p) || !sameStamp(s, b.files.get(p))) return false;
  return true;
}

/** `scan`, known to hold the same files as `earlier` (sameScan), linked to it as a rescan of no path. */
export function linkedTo(scan: DirectoryScan, earlier: DirectoryScan): DirectoryScan {
  return scan.rescanOf ? scan : { ...scan, rescanOf: { base: new WeakRef(earlier), paths: [] } };
}

/**
 * The paths at which `scan` may differ from `earlier`, when rescans link them (at most a few
 * steps: a change's scan, and the scan the last read ended with); undefined when they do not.
 */
export function pathsSince(earlier: DirectoryScan, scan: DirectoryScan): Set<string> | undefined {
  const paths = new Set<string>();
  let at: DirectoryScan | undefined = scan;
  for (let step = 0; step < 4 && at; step++) {
    if (at === earlier) return paths;
    if (!at.rescanOf) return undefined;
    for (const p of at.rescanOf.paths) paths.add(p);
    at = at.rescanOf.base.deref();
  }
  return at === earlier ? paths : undefined;
}

function unreadable(dir: string, err: unknown): PolicyLoadError {
  return new PolicyLoadError([{ file: dir, line: 1, column: 1, code: 'FILE_UNREADABLE', message: `cannot read policy directory: ${(err as Error).message}` }]);
}

const sortByName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * How a scan walks the directory: `now` with synchronous calls straight through (a first load, when
 * nothing else waits: several times faster); `background` (polls and changes, while the server
 * answers) the same synchronous walk in slices of ~2 ms that give the event loop back, when the
 * directory is on a local filesystem, else through libuv's thread pool so that a slow or hung
 * network filesystem cannot stop the thread; `threadpool` always the latter (tests pin it).
 */
export type ScanMode = 'now' | 'background' | 'threadpool';

/** Longest stretch of a background walk on the event loop. */
const SCAN_SLICE_MS = 2;

/**
 * Filesystems whose stat(2) answers from the kernel's caches or a local disk (statfs(2) f_type):
 * ext2/3/4, tmpfs, xfs, btrfs, overlayfs (containers), ramfs, zfs, f2fs. A directory elsewhere (NFS,
 * SMB, FUSE, ...) is walked through the thread pool.
 */
const LOCAL_FILESYSTEMS = new Set([0xef53, 0x01021994, 0x58465342, 0x9123683e, 0x794c7630, 0x858458f6, 0x2fc12fc1, 0xf2f52010]);

async function onLocalFilesystem(dir: string): Promise<boolean> {
  try {
    return LOCAL_FILESYSTEMS.has(Number((await statfs(dir)).type) >>> 0);
  } catch {
    return false;
  }
}

/**
 * Lists and stats every policy file under `dir` (hidden entries skipped; symlinked files followed).
 * A background scan of 1,000 files in 211 directories costs ~7 ms of CPU in slices, against ~44 ms
 * when the thread pool walked one directory after another (bench/reload/scan-cost.ts).
 */
export async function scanDirectory(dir: string, how: ScanMode = 'background'): Promise<DirectoryScan> {
  const sync = how === 'now';
  let dataTarget: string | undefined;
  let root = dir;
  try {
    const s = sync ? statSync(dir) : await stat(dir);
    if (!s.isDirectory()) throw new Error('not a directory');
    const link = path.join(dir, CONFIGMAP_DATA_LINK);
    const l = sync ? lstatSafeSync(link) : await lstat(link).catch(() => undefined);
    if (l?.isSymbolicLink()) {
      dataTarget = sync ? readlinkSync(link) : await readlink(link);
      root = path.resolve(dir, dataTarget);
    }
  } catch (err) {
    throw unreadable(dir, err);
  }
  const files = new Map<string, FileStamp | undefined>();
  const directories: string[] = [];
  try {
    if (sync) runToEnd(walk(root, '', files, directories));
    else if (how === 'background' && (await onLocalFilesystem(root))) await runInSlices(walk(root, '', files, directories), SCAN_SLICE_MS);
    else await walkThreadPool(root, files, directories);
  } catch (err) {
    throw unreadable(dir, err);
  }
  return { dataTarget, root, files, directories };
}

/** The entries of a directory worth a look: not hidden (editors' swap files, temporary files, .git, ConfigMap internals), by name. */
function listed(entries: Dirent[]): Dirent[] {
  return entries.filter((e) => !e.name.startsWith('.')).sort(sortByName);
}

const isPolicyEntry = (entry: Dirent) => (entry.isFile() || entry.isSymbolicLink()) && isPolicyFile(entry.name);

/** The synchronous walk, depth first by name; yields after each entry so that it can run in slices. */
function* walk(current: string, rel: string, files: Map<string, FileStamp | undefined>, directories: string[]): Work<void> {
  directories.push(current);
  for (const entry of listed(readdirSync(current, { withFileTypes: true }))) {
    yield;
    const full = path.join(current, entry.name);
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walk(full, relPath, files, directories);
    else if (isPolicyEntry(entry)) files.set(relPath, statSafeSync(full));
  }
}

/** A directory's listing: policy files by relative path, and subdirectories, in name order. */
interface Listing {
  readonly directory: string;
  readonly entries: readonly (string | Listing)[];
}

/**
 * The thread-pool walk lists every directory and stats every file at once, then assembles the
 * result in the synchronous walk's order (depth first, by name). Directories one after another and
 * the promise API cost ~40 µs of CPU per file (1,000 files in 211 directories: 40 ms); this way ~9.
 */
async function walkThreadPool(root: string, files: Map<string, FileStamp | undefined>, directories: string[]): Promise<void> {
  const stamps = new Map<string, FileStamp | undefined>();
  const stats: Promise<void>[] = [];
  const list = async (current: string, rel: string): Promise<Listing> => {
    const entries: (string | Promise<Listing>)[] = [];
    for (const entry of listed(await readdirEntries(current))) {
      const full = path.join(current, entry.name);
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) entries.push(list(full, relPath));
      else if (isPolicyEntry(entry)) {
        entries.push(relPath);
        stats.push(statStamp(full).then((s) => void stamps.set(relPath, s)));
      }
    }
    return { directory: current, entries: await Promise.all(entries) };
  };
  const top = await list(root, '');
  await Promise.all(stats);
  const assemble = (l: Listing): void => {
    directories.push(l.directory);
    for (const e of l.entries) {
      if (typeof e === 'string') files.set(e, stamps.get(e));
      else assemble(e);
    }
  };
  assemble(top);
}

const readdirEntries = (dir: string) => new Promise<Dirent[]>((resolve, reject) => readdirCallback(dir, { withFileTypes: true }, (err, entries) => (err ? reject(err) : resolve(entries))));

/** The file's stamp, or undefined when it cannot be stat'ed (gone, or a dangling link). */
const statStamp = (full: string) => new Promise<FileStamp | undefined>((resolve) => statCallback(full, { bigint: true }, (err, s) => resolve(err ? undefined : stampOf(s))));

function lstatSafeSync(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function statSafeSync(p: string): FileStamp | undefined {
  try {
    return stampOf(statSync(p, { bigint: true }));
  } catch {
    return undefined;
  }
}

/**
 * A file's content is trusted from an earlier read while its stamp is unchanged, except when it
 * changed shortly before that read: a second write within the file system's timestamp granularity
 * could leave the stamp as it was (git's "racy clean" case), so such files are read again.
 */
const RACY_NS = 2_000_000_000n;

interface CachedFile {
  readonly stamp: FileStamp;
  readonly file: PolicyFile;
  readonly trusted: boolean;
}

/** Reads the files of scans, reusing the text and hash of files whose stamp did not change. */
export class FileContentCache {
  /** The files of the last read, by path relative to its root (a ConfigMap version switch changes the root). */
  private entries = new Map<string, CachedFile>();
  private root: string | undefined;
  /** The scan and the files of the last read, and each file's place in that list (made when first needed). */
  private lastScan: DirectoryScan | undefined;
  private lastOut: PolicyFile[] = [];
  private positions: Map<string, number> | undefined;
  /** Paths whose cached text is not trusted yet (changed shortly before it was read): read on every read. */
  private untrusted = new Set<string>();
  private readCount = 0;

  /** @param stampNow a file's stamp now (a test gives the stamps of a file system with coarse times). */
  constructor(private readonly stampNow: (fullPath: string) => Promise<FileStamp> = async (full) => stampOf(await stat(full, { bigint: true }))) {}

  /** Reads every file of `scan`; throws PolicyLoadError when one cannot be read. */
  async read(scan: DirectoryScan, sync = false): Promise<PolicyFile[]> {
    // A scan that rescans link to the last one read differs from it at a few known paths: only
    // those are looked at, not every file (12 ms of a change at 10,000 files, issue 18).
    const since = this.lastScan && scan.root === this.root ? pathsSince(this.lastScan, scan) : undefined;
    if (since) {
      // Files changed or added there (a deleted one would leave a hole in the list: read it all).
      let added = 0;
      let deleted = false;
      for (const p of since) {
        if (!scan.files.has(p)) deleted ||= this.entries.has(p);
        else if (!this.entries.has(p)) added++;
      }
      if (!deleted && scan.files.size === this.entries.size + added) return this.readChanged(scan, sync, since);
    }
    const next = new Map<string, CachedFile>();
    const out: PolicyFile[] = [];
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const problems: { path: string; err: unknown }[] = [];
    const toRead: string[] = [];
    const entries = scan.root === this.root ? this.entries : new Map<string, CachedFile>();
    for (const [rel, stamp] of scan.files) {
      const hit = entries.get(rel);
      if (hit && hit.trusted && stamp && sameStamp(hit.stamp, stamp)) next.set(rel, hit);
      else toRead.push(rel);
    }
    this.readCount += toRead.length;
    await readAll(scan, toRead, sync, startNs, next, problems);
    if (problems.length > 0) throw readProblems(problems);
    const untrusted = new Set<string>();
    for (const rel of scan.files.keys()) {
      const entry = next.get(rel)!;
      out.push(entry.file);
      if (!entry.trusted) untrusted.add(rel);
    }
    this.entries = next;
    this.root = scan.root;
    this.lastScan = scan;
    this.lastOut = out;
    this.positions = undefined;
    this.untrusted = untrusted;
    return out;
  }

  /** Files of the last read that were read within the racy window (read again on every read until trusted). */
  get untrustedCount(): number {
    return this.untrusted.size;
  }

  /** Files read from disk since this cache was made (what a reload cost in reads). */
  get filesRead(): number {
    return this.readCount;
  }

  /**
   * Reads the untrusted files of the last read again, now (so that the next change need not: at
   * start-up, every file written in the two seconds before was untrusted, and the first change read
   * the whole set again). Only files whose stamp is still the one read are looked at (one whose
   * stamp moved is an ordinary change, which its event or the poll brings); those read past the
   * racy window with the same text become trusted. Returns the paths whose text is not what the
   * last read gave though their stamps are the same: they stay untrusted (the next read reads
   * them), and the caller treats them as a change it cannot vouch for.
   */
  async confirmUntrusted(): Promise<string[]> {
    const root = this.root;
    if (root === undefined || this.untrusted.size === 0) return [];
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const changed: string[] = [];
    const stampNow = this.stampNow;
    const paths = [...this.untrusted];
    let i = 0;
    const confirmOne = async (rel: string): Promise<void> => {
      const entry = this.entries.get(rel);
      if (!entry) return;
      const full = path.join(root, rel);
      try {
        if (!sameStamp(await stampNow(full), entry.stamp)) return;
        this.readCount++;
        const text = await readFile(full, 'utf8');
        if (!sameStamp(await stampNow(full), entry.stamp)) return;
        if (sha256Hex(text) !== entry.file.sha256) changed.push(rel);
        else if (startNs - entry.stamp.ctimeNs > RACY_NS && startNs - entry.stamp.mtimeNs > RACY_NS && this.entries.get(rel) === entry) {
          this.entries.set(rel, { ...entry, trusted: true });
          this.untrusted.delete(rel);
        }
      } catch {
        // gone or unreadable: the change that did it is seen by events or the poll
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, paths.length) }, async () => {
      while (i < paths.length) await confirmOne(paths[i++]!);
    }));
    return changed;
  }

  /** The last read's files with `paths` (and the untrusted ones) read again where their stamps say so; new ones appended. */
  private async readChanged(scan: DirectoryScan, sync: boolean, paths: ReadonlySet<string>): Promise<PolicyFile[]> {
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const problems: { path: string; err: unknown }[] = [];
    const toRead: string[] = [];
    for (const rel of new Set([...paths, ...this.untrusted])) {
      if (!scan.files.has(rel)) continue; // a path that came and went since
      const hit = this.entries.get(rel);
      const stamp = scan.files.get(rel);
      if (!(hit && hit.trusted && stamp && sameStamp(hit.stamp, stamp))) toRead.push(rel);
    }
    const fresh = new Map<string, CachedFile>();
    this.readCount += toRead.length;
    await readAll(scan, toRead, sync, startNs, fresh, problems);
    if (problems.length > 0) throw readProblems(problems);
    const out = this.lastOut.slice();
    const positions = (this.positions ??= new Map(this.lastOut.map((f, i) => [f.path, i])));
    for (const [rel, entry] of fresh) {
      this.entries.set(rel, entry);
      const at = positions.get(rel);
      if (at === undefined) positions.set(rel, out.push(entry.file) - 1);
      else out[at] = entry.file;
      if (entry.trusted) this.untrusted.delete(rel);
      else this.untrusted.add(rel);
    }
    this.lastScan = scan;
    this.lastOut = out;
    return out;
  }
}

async function readAll(scan: DirectoryScan, toRead: readonly string[], sync: boolean, startNs: bigint, into: Map<string, CachedFile>, problems: { path: string; err: unknown }[]): Promise<void> {
  const readOne = async (rel: string): Promise<void> => {
    const full = path.join(scan.root, rel);
    try {
      const text = sync ? readFileSync(full, 'utf8') : await readFile(full, 'utf8');
      const stamp = scan.files.get(rel) ?? stampOf(sync ? statSync(full, { bigint: true }) : await stat(full, { bigint: true }));
      const trusted = startNs - stamp.ctimeNs > RACY_NS && startNs - stamp.mtimeNs > RACY_NS;
      into.set(rel, { stamp, file: { path: rel, text, sha256: sha256Hex(text) }, trusted });
    } catch (err) {
      problems.push({ path: rel, err });
    }
  };
  if (sync) for (const rel of toRead) await readOne(rel);
  else {
    let i = 0;
    await Promise.all(Array.from({ length: Math.min(16, toRead.length) }, async () => {
      while (i < toRead.length) await readOne(toRead[i++]!);
    }));
  }
}

function readProblems(problems: readonly { path: string; err: unknown }[]): PolicyLoadError {
  return new PolicyLoadError(problems.map(({ path: p, err }) => ({ file: p, line: 1, column: 1, code: 'FILE_UNREADABLE', message: `cannot read: ${(err as Error).message}` })));
}

/**
 * `base` with only `paths` stat'ed again (files added, changed or deleted there), when the
 * ConfigMap version (if any) is the same: what a change announced by file events needs, at the cost
 * of those files rather than of the whole directory. Undefined when the version switched.
 */
export async function rescanPaths(dir: string, base: DirectoryScan, paths: Iterable<string>): Promise<DirectoryScan | undefined> {
  if (base.dataTarget !== undefined) {
    const target = await readlink(path.join(dir, CONFIGMAP_DATA_LINK)).catch(() => undefined);
    if (target !== base.dataTarget) return undefined;
  }
  const changes = new Map<string, FileStamp | undefined>();
  const removed: string[] = [];
  const list = [...paths];
  await Promise.all(
    list.map(async (rel) => {
      try {
        changes.set(rel, stampOf(await stat(path.join(base.root, rel), { bigint: true })));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') removed.push(rel);
        else changes.set(rel, undefined);
      }
    }),
  );
  return { ...base, files: PatchedMap.patched(base.files, changes, removed), rescanOf: { base: new WeakRef(base), paths: list } };
}
