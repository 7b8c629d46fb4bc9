/** `verdict audit diff`: what changed between two stored revisions, with a unified diff of each changed file. */
import { createTwoFilesPatch } from 'diff';
import { comparePolicyPaths } from '../policy/revision.js';
import type { PolicyFile } from '../service/policy-source.js';

export interface RevisionDiff {
  readonly added: readonly PolicyFile[];
  readonly removed: readonly PolicyFile[];
  readonly changed: readonly { readonly path: string; readonly from: string; readonly to: string; readonly patch: string }[];
  readonly unchanged: number;
}

export function diffRevisions(a: { revision: string; files: readonly PolicyFile[] }, b: { revision: string; files: readonly PolicyFile[] }): RevisionDiff {
  const before = new Map(a.files.map((f) => [f.path, f]));
  const after = new Map(b.files.map((f) => [f.path, f]));
  const byPath = (x: PolicyFile, y: PolicyFile) => comparePolicyPaths(x.path, y.path);
  const added = b.files.filter((f) => !before.has(f.path)).sort(byPath);
  const removed = a.files.filter((f) => !after.has(f.path)).sort(byPath);
  const changed = b.files
    .filter((f) => before.has(f.path) && before.get(f.path)!.sha256 !== f.sha256)
    .sort(byPath)
    .map((f) => {
      const old = before.get(f.path)!;
      return { path: f.path, from: old.sha256, to: f.sha256, patch: createTwoFilesPatch(`a/${f.path}`, `b/${f.path}`, old.text, f.text, a.revision, b.revision, { context: 3 }) };
    });
  const unchanged = b.files.filter((f) => before.get(f.path)?.sha256 === f.sha256).length;
  return { added, removed, changed, unchanged };
}
