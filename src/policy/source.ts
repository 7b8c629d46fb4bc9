import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PolicySourceFile } from './document.js';
import { PolicyLoadError } from './issues.js';

const POLICY_FILE = /\.ya?ml$/;
const TEST_FILE = /_test\.ya?ml$/;

export function isPolicyFile(name: string): boolean {
  return POLICY_FILE.test(name) && !TEST_FILE.test(name);
}

export function isTestSuiteFile(name: string): boolean {
  return TEST_FILE.test(name);
}

/** Every file under `dir` (recursively, sorted, hidden entries skipped) accepted by `accept`. */
export async function listFiles(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue; // editors' swap files, .git, ..data of Kubernetes ConfigMaps
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if ((entry.isFile() || entry.isSymbolicLink()) && accept(entry.name)) out.push(full);
    }
  };
  await walk(dir);
  return out;
}

/** Reads every policy file under `dir`; an unreadable directory is a load error with its path. */
export async function readPolicySources(dir: string): Promise<PolicySourceFile[]> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new PolicyLoadError([{ file: dir, line: 1, column: 1, code: 'FILE_UNREADABLE', message: `cannot read policy directory: ${(err as Error).message}` }]);
  }
  const files = await listFiles(dir, isPolicyFile);
  // Read one after another, synchronously: for thousands of small files several times cheaper than
  // as many promises, and the CLI has nothing else to do meanwhile (a server reads through
  // DirectorySource, which re-reads only what changed).
  return files.map((full) => ({ path: path.relative(dir, full).split(path.sep).join('/'), text: readFileSync(full, 'utf8') }));
}
