import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * mkdir -p without `mkdirSync(…, { recursive: true })`: on Node 20 that call never returns for a
 * path under a pseudo file system such as /proc (it retries ENOENT forever). Here each missing
 * level is created on its own, so a bad path fails at once with the real error.
 */
export function ensureDirectory(dir: string): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    try {
      if (statSync(current).isDirectory()) break;
      throw Object.assign(new Error(`${current} exists and is not a directory`), { code: 'ENOTDIR' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
