import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { PolicyFile, PolicySnapshot, PolicySource, PolicySourceEvent, PolicyTrigger } from '../service/policy-source.js';
import { CONFIGMAP_DATA_LINK, FileContentCache, linkedTo, pathsSince, rescanPaths, sameScan, sameStamp, scanDirectory, type DirectoryScan } from './directory-scan.js';
import { isPolicyFile } from './source.js';

export interface DirectorySourceOptions {
  /** Watch the directory (fs.watch on each directory) for changes. */
  readonly watch: boolean;
  /** Quiet time after the last file event before a change is examined (coalesces bursts). */
  readonly debounceMs: number;
  /**
   * A change that was not an atomic swap goes live only once every policy file has kept its size,
   * times and inode for this long: a file still being written is never loaded while it keeps growing.
   */
  readonly settleMs: number;
  /** Also compare the files' stamps this often (events are lost on some file systems); 0 = never. */
  readonly pollIntervalMs: number;
}

/**
 * Files read within the racy window (written less than two seconds before: see FileContentCache)
 * are read again this long after, then at twice the interval while some stay untrusted (a clock
 * ahead of the file system's), up to CONFIRM_MAX_MS.
 */
const CONFIRM_FIRST_MS = 2_500;
const CONFIRM_MAX_MS = 300_000;

/** What the file events since the last snapshot say about each path. */
interface PathEvents {
  /** A write to the file (in place, or a file being filled after its creation). */
  written: boolean;
}

/**
 * Policies from a directory. A snapshot is delivered only when the directory's files are complete:
 *  - at once when every change since the last snapshot was an atomic swap: a file renamed into place
 *    (a new inode that was never written under its policy name) or deleted, or a Kubernetes
 *    ConfigMap `..data` switch (read from the version `..data` points at);
 *  - otherwise once no policy file has changed (size, times, inode) for `settleMs`.
 * Either way the files are read, then stat'ed again, and a change during the read starts over.
 */
export class DirectorySource implements PolicySource {
  readonly name: string;
  private readonly cache = new FileContentCache();
  private listener: ((event: PolicySourceEvent) => void) | undefined;
  private watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The scan of the last snapshot delivered (or read). */
  private base: DirectoryScan | undefined;
  /** Events per path (relative to the directory) since `base`. */
  private events = new Map<string, PathEvents>();
  /** Something changed that file events cannot vouch for (a poll, a directory, a lost event). */
  private unexplained = false;
  /** When the files last changed, as far as scans saw, and that scan (for the settle window). */
  private lastSeen: { scan: DirectoryScan; at: number } | undefined;
  private examining = false;
  private examineAgain = false;
  private confirmTimer: NodeJS.Timeout | undefined;
  private confirmDelayMs = CONFIRM_FIRST_MS;
  /** Reading again found a text its stamps did not show: the next examine goes on though the scan looks the same. */
  private racy = false;

  constructor(
    readonly directory: string,
    private readonly options: DirectorySourceOptions,
  ) {
    this.name = directory;
  }

  /** Reads the directory as it is now (start-up, SIGHUP: the caller vouches for the files). */
  async read(trigger: PolicyTrigger): Promise<PolicySnapshot> {
    const sync = this.base === undefined;
    let scan = await scanDirectory(this.directory, sync ? 'now' : 'background');
    for (let attempt = 0; ; attempt++) {
      // Files that keep changing are read as they are after a few tries: the operator asked now.
      const read = await this.readStable(scan, sync, attempt >= 3);
      if (read.files) return { files: read.files, trigger };
      scan = read.after;
    }
  }

  /** Reads the files of `scan`; `files` is undefined when they changed meanwhile (`after` says how). */
  private async readStable(scan: DirectoryScan, sync = false, force = false, only?: readonly string[]): Promise<{ files: PolicyFile[] | undefined; after: DirectoryScan }> {
    const files = await this.cache.read(scan, sync);
    const after = (only && (await rescanPaths(this.directory, scan, only))) || (await scanDirectory(this.directory, sync ? 'now' : 'background'));
    const same = sameScan(scan, after);
    if (!force && !same) return { files: undefined, after };
    // Linked to the scan just read, so that the next change reads only what changed since.
    this.base = same ? linkedTo(after, scan) : after;
    this.events.clear();
    this.unexplained = false;
    this.racy = false;
    this.lastSeen = undefined;
    if (this.listener) this.rewatch(after);
    this.confirmDelayMs = CONFIRM_FIRST_MS;
    this.scheduleConfirm();
    return { files, after };
  }

  /** Files read so far (a reload after a one-file change reads one). */
  get filesRead(): number {
    return this.cache.filesRead;
  }

  /** Files whose last read was within the racy window and that are not confirmed yet. */
  get unconfirmedFiles(): number {
    return this.cache.untrustedCount;
  }

  /**
   * Reads the files read within the racy window again once they are past it, in the background:
   * otherwise the next change would read them all (every file, after a start right after a
   * deployment wrote them: 1,000 files made the first change 300 ms late, issue 18). A text found
   * changed under the same stamps is a change no event vouched for: it waits for the settle window.
   */
  private scheduleConfirm(): void {
    if (this.closed || !this.listener || this.confirmTimer || this.cache.untrustedCount === 0) return;
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      void this.confirm();
    }, this.confirmDelayMs);
    this.confirmTimer.unref();
  }

  private async confirm(): Promise<void> {
    if (this.closed) return;
    if (this.examining) {
      this.scheduleConfirm();
      return;
    }
    this.examining = true;
    try {
      if ((await this.cache.confirmUntrusted()).length > 0) {
        this.racy = true;
        this.unexplained = true;
        this.examineAgain = true;
      }
    } catch {
      // A file went away or cannot be read: its event (or the poll) starts a change that reports it.
    } finally {
      this.examining = false;
      if (this.examineAgain) {
        this.examineAgain = false;
        this.schedule(this.options.debounceMs);
      }
    }
    this.confirmDelayMs = Math.min(this.confirmDelayMs * 2, CONFIRM_MAX_MS);
    this.scheduleConfirm();
  }

  subscribe(listener: (event: PolicySourceEvent) => void): void {
    this.listener = listener;
    if (this.options.watch && this.base) this.rewatch(this.base);
    if (this.options.watch && this.options.pollIntervalMs > 0) this.schedulePoll(this.options.pollIntervalMs);
    this.scheduleConfirm();
  }

  /**
   * Polls every pollIntervalMs, but never spends more than about 2% of a core on it: a directory
   * whose scan takes longer (tens of thousands of files) is polled less often.
   */
  private schedulePoll(ms: number): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      const started = performance.now();
      void this.unexplainedIfChanged().finally(() => this.schedulePoll(Math.max(this.options.pollIntervalMs, 50 * (performance.now() - started))));
    }, ms);
    this.pollTimer.unref();
  }

  close(): void {
    this.closed = true;
    this.listener = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.timer) clearTimeout(this.timer);
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
  }

  /** Watches the directory itself (for `..data`) and every directory holding policy files. */
  private rewatch(scan: DirectoryScan): void {
    if (!this.options.watch || this.closed) return;
    // A ConfigMap's versions never change: only the `..data` switch in the directory itself matters.
    const wanted = new Set(scan.dataTarget === undefined ? [this.directory, ...scan.directories] : [this.directory]);
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (type, name) => this.onEvent(dir, scan.root, type, name?.toString()));
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.unexplained = true;
          this.schedule(this.options.debounceMs);
        });
        this.watchers.set(dir, w);
      } catch {
        this.unexplained = true; // polling still covers it
      }
    }
  }

  private onEvent(dir: string, root: string, type: string, name: string | undefined): void {
    if (this.closed) return;
    if (!name) this.unexplained = true;
    else if (dir === this.directory && name === CONFIGMAP_DATA_LINK) {
      // Recognised by the scan (the target changes); nothing else to note.
    } else if (name.startsWith('.')) {
      return; // temporary files, editors' swap files, ConfigMap versions
    } else if (!isPolicyFile(name)) {
      // A directory appearing or going, or a file that is not a policy: only a scan can tell.
      if (!/\.ya?ml$/.test(name)) this.unexplained = true;
      else return; // a test suite
    } else {
      const base = dir === root || dir.startsWith(root + path.sep) ? root : this.directory;
      const rel = path.relative(base, path.join(dir, name)).split(path.sep).join('/');
      const e = this.events.get(rel) ?? { written: false };
      if (type === 'change') e.written = true;
      this.events.set(rel, e);
    }
    this.schedule(this.options.debounceMs);
  }

  /** Polling: a change no file event announced cannot be vouched for; it waits for the settle window. */
  private async unexplainedIfChanged(): Promise<void> {
    if (this.closed || this.examining || !this.base) return;
    await scanDirectory(this.directory).then(
      (scan) => {
        const base = this.base;
        if (!base || sameScan(scan, base)) return;
        if (scan.dataTarget === base.dataTarget && [...changedPaths(base, scan)].some((p) => !this.events.has(p))) this.unexplained = true;
        this.schedule(this.options.debounceMs);
      },
      () => {
        this.unexplained = true;
        this.schedule(0);
      },
    );
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.examine(), ms);
    this.timer.unref();
  }

  /** Decides whether the directory holds a complete new set, and delivers it when it does. */
  private async examine(): Promise<void> {
    if (this.examining) {
      this.examineAgain = true;
      return;
    }
    this.examining = true;
    try {
      await this.examineOnce();
    } finally {
      this.examining = false;
      if (this.examineAgain) {
        this.examineAgain = false;
        this.schedule(this.options.debounceMs);
      }
    }
  }

  private async examineOnce(): Promise<void> {
    const base = this.base;
    if (!base || !this.listener) return;
    let scan: DirectoryScan;
    // Changes that file events announced (and nothing unexplained): only those files are stat'ed,
    // not the whole directory. Polling still compares everything every pollIntervalMs.
    const announced = !this.unexplained && this.events.size > 0 ? [...this.events.keys()] : undefined;
    try {
      scan = (announced && (await rescanPaths(this.directory, base, announced))) || (await scanDirectory(this.directory));
    } catch (err) {
      this.deliverUnreadable(err);
      return;
    }
    if (sameScan(scan, base) && !this.racy) {
      this.events.clear();
      this.unexplained = false;
      this.lastSeen = undefined;
      return;
    }
    const now = performance.now();
    if (!this.isAtomic(base, scan)) {
      // Not vouched for: wait until the files have stayed the same for the whole settle window.
      if (!this.lastSeen || !sameScan(this.lastSeen.scan, scan)) this.lastSeen = { scan, at: now };
      const waited = now - this.lastSeen.at;
      if (waited < this.options.settleMs) {
        this.schedule(Math.ceil(this.options.settleMs - waited));
        return;
      }
    }
    const detail = this.describe(base, scan);
    try {
      const read = await this.readStable(scan, false, false, announced);
      if (!read.files) {
        // Changed while being read: it is not complete yet.
        this.lastSeen = { scan: read.after, at: performance.now() };
        this.unexplained = true;
        this.schedule(this.options.settleMs);
        return;
      }
      if (!this.closed) this.listener?.({ kind: 'snapshot', snapshot: { files: read.files, trigger: { kind: 'file-change', detail } } });
    } catch (err) {
      this.deliverUnreadable(err);
    }
  }

  /**
   * True when every difference between the two scans is vouched for by an atomic operation: the
   * ConfigMap version switched, or each changed path is gone, or holds a new inode that arrived by
   * a rename (only rename events for its name, none of them a write) and is not empty.
   */
  private isAtomic(base: DirectoryScan, scan: DirectoryScan): boolean {
    if (scan.dataTarget !== undefined && scan.dataTarget !== base.dataTarget) return true;
    if (this.unexplained || scan.dataTarget !== base.dataTarget) return false;
    for (const p of changedPaths(base, scan)) {
      const e = this.events.get(p);
      if (!e || e.written) return false;
      const now = scan.files.get(p);
      if (now === undefined) {
        if (scan.files.has(p)) return false; // listed but not stat'able: wait
        continue; // deleted
      }
      const before = base.files.get(p);
      if ((before && before.ino === now.ino && before.dev === now.dev) || now.size === 0n) return false;
    }
    return true;
  }

  private describe(base: DirectoryScan, scan: DirectoryScan): string {
    if (scan.dataTarget !== base.dataTarget) return `${CONFIGMAP_DATA_LINK} -> ${scan.dataTarget ?? '(removed)'}`;
    const paths = [...changedPaths(base, scan)];
    if (paths.length === 0) return 'file contents changed under the same size and times';
    return paths.length > 5 ? `${paths.slice(0, 5).join(', ')} and ${paths.length - 5} more` : paths.join(', ');
  }

  private deliverUnreadable(err: unknown): void {
    if (this.closed) return;
    this.listener?.({ kind: 'unreadable', trigger: { kind: 'file-change' }, error: err as Error });
  }
}

/** Policy files added, changed (stamp) or removed between two scans. */
function changedPaths(base: DirectoryScan, scan: DirectoryScan): Set<string> {
  const changed = new Set<string>();
  const since = pathsSince(base, scan);
  if (since) {
    // A rescan of `base`: only the paths it stat'ed again can differ.
    for (const p of since) if (scan.files.has(p) !== base.files.has(p) || !sameStamp(scan.files.get(p), base.files.get(p))) changed.add(p);
    return changed;
  }
  for (const [p, s] of scan.files) if (!sameStamp(s, base.files.get(p))) changed.add(p);
  for (const p of base.files.keys()) if (!scan.files.has(p)) changed.add(p);
  return changed;
}
