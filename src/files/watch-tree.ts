import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

/** How a tree is being watched: kernel events per directory, or a stat poll when those ran out. */
export type WatchMode = 'events' | 'poll';

export interface TreeWatcher {
  readonly mode: WatchMode;
  close(): void;
}

export interface WatchTreeOptions {
  /** Absolute paths under which changes are ignored (a report written into the tree). */
  readonly ignore?: (absolutePath: string) => boolean;
  /** Poll interval when kernel watches are not available (ms). */
  readonly pollMs?: number;
  /** Told once when the watch falls back to polling, with the reason. */
  readonly onFallback?: (reason: string) => void;
  /** The directory watch to use (tests pass one that fails as an exhausted kernel would). */
  readonly watchDirectory?: (dir: string, listener: (event: string, name: string | Buffer | null) => void) => FSWatcher;
}

const DEFAULT_POLL_MS = 500;

const watchDirectory = (dir: string, listener: (event: string, name: string | Buffer | null) => void): FSWatcher => watch(dir, { persistent: true }, listener);

/**
 * Watches every directory under `root` (hidden entries skipped) and calls `onChange` with the
 * absolute path that changed. Watches are on directories, not files: a directory's watch reports a
 * file renamed into it, so an editor's atomic save (write a temporary file, rename it over the old
 * one) is seen every time, which Node 20's `recursive: true` on Linux misses after the first save
 * (it watches each file's inode, and the rename leaves it watching the replaced one). The watches
 * are in place when this returns, so a change made right after is never missed. When the kernel
 * refuses more watches (inotify's per-user limits: ENOSPC, EMFILE), it polls file stamps instead.
 */
export function watchTree(root: string, onChange: (absolutePath: string) => void, options: WatchTreeOptions = {}): TreeWatcher {
  const ignore = options.ignore ?? (() => false);
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  let poller: NodeJS.Timeout | undefined;
  let mode: WatchMode = 'events';

  const report = (p: string) => {
    if (!closed && !ignore(p)) onChange(p);
  };

  const startPolling = (reason: string) => {
    if (mode === 'poll') return;
    mode = 'poll';
    for (const w of watchers.values()) w.close();
    watchers.clear();
    options.onFallback?.(reason);
    let before = stampTree(root);
    poller = setInterval(() => {
      const now = stampTree(root);
      for (const [p, stamp] of now) if (before.get(p) !== stamp) report(p);
      for (const p of before.keys()) if (!now.has(p)) report(p);
      before = now;
    }, pollMs);
    poller.unref?.();
  };

  /** Adds a watch on every directory not yet watched, and drops those that are gone. */
  const sync = () => {
    if (closed || mode === 'poll') return;
    const dirs = new Set(walkTree(root));
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      let w: FSWatcher;
      try {
        w = (options.watchDirectory ?? watchDirectory)(dir, (event, name) => {
          const child = name?.toString();
          // Editors' swap and backup files (.x.swp) are not part of the tree, as for the loaders.
          if (child?.startsWith('.')) return;
          report(child ? path.join(dir, child) : dir);
          // A directory created, renamed or removed under this one changes what must be watched.
          if (event === 'rename') sync();
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // removed between the listing and the watch
        startPolling(`cannot watch ${dir} (${code ?? (err as Error).message}); polling every ${pollMs} ms instead`);
        return;
      }
      w.on('error', () => {
        // The directory went away (its watch errors on some kernels); the next sync drops it.
        w.close();
        watchers.delete(dir);
      });
      watchers.set(dir, w);
    }
  };

  sync();
  return {
    get mode() {
      return mode;
    },
    close() {
      closed = true;
      clearInterval(poller);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}

/** The directories under `root` (itself first; hidden ones skipped), calling `onFile` for every other non-hidden entry. */
function walkTree(root: string, onFile?: (file: string) => void): string[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    let entries;
    try {
      entries = readdirSync(out[i]!, { withFileTypes: true });
    } catch {
      continue; // removed meanwhile, or unreadable: nothing under it to watch
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(out[i]!, e.name);
      if (e.isDirectory()) out.push(p);
      else onFile?.(p);
    }
  }
  return out;
}

/** Every file under `root` with a stamp that changes when the file is written or replaced. */
function stampTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  walkTree(root, (p) => {
    try {
      const s = statSync(p, { bigint: true });
      out.set(p, `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`);
    } catch {
      // removed meanwhile: absent from this stamp, reported on the next comparison
    }
  });
  return out;
}
