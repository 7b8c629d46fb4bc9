import { expect } from 'chai';
import { mkdirSync, renameSync, rmSync, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { watchTree } from '../../src/files/watch-tree.js';
import { makeTempDir } from '../support/server-process.js';
import { waitFor } from '../support/events-harness.js';

describe('watchTree: every directory under a root, armed on return', () => {
  const closers: Array<() => void> = [];
  afterEach(() => closers.splice(0).forEach((close) => close()));

  function watched(root: string, options: Parameters<typeof watchTree>[2] = {}) {
    const seen: string[] = [];
    const w = watchTree(root, (p) => seen.push(path.relative(root, p)), options);
    closers.push(() => w.close());
    return { w, seen };
  }

  it('reports a write made right after it returns, each of repeated atomic renames, and files in new or nested directories', async () => {
    const root = makeTempDir('watch-tree');
    mkdirSync(path.join(root, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(root, 'a', 'b', 'x.yaml'), '1');
    const { w, seen } = watched(root);
    expect(w.mode).to.equal('events');
    writeFileSync(path.join(root, 'a', 'b', 'x.yaml'), '2');
    await waitFor('the write in a/b', () => seen.includes('a/b/x.yaml'), 5_000, 10);
    for (let i = 0; i < 3; i++) {
      seen.length = 0;
      writeFileSync(path.join(root, 'a', 'b', '.x.tmp'), `save ${i}`);
      renameSync(path.join(root, 'a', 'b', '.x.tmp'), path.join(root, 'a', 'b', 'x.yaml'));
      await waitFor(`atomic save ${i}`, () => seen.includes('a/b/x.yaml'), 5_000, 10);
    }
    expect(seen, 'hidden temporary files are not reported').to.not.include('a/b/.x.tmp');
    mkdirSync(path.join(root, 'c'));
    await waitFor('the new directory', () => seen.includes('c'), 5_000, 10);
    writeFileSync(path.join(root, 'c', 'y.yaml'), '1');
    await waitFor('a file in the new directory', () => seen.includes('c/y.yaml'), 5_000, 10);
    rmSync(path.join(root, 'a'), { recursive: true });
    await waitFor('the removed directory', () => seen.includes('a'), 5_000, 10);
  });

  it('ignores what the caller excludes, and reports nothing after close', async () => {
    const root = makeTempDir('watch-tree');
    mkdirSync(path.join(root, 'coverage'));
    const { w, seen } = watched(root, { ignore: (p) => p.startsWith(path.join(root, 'coverage')) });
    writeFileSync(path.join(root, 'coverage', 'lcov.info'), 'x');
    writeFileSync(path.join(root, 'p.yaml'), 'x');
    await waitFor('p.yaml', () => seen.includes('p.yaml'), 5_000, 10);
    expect(seen.filter((p) => p.startsWith('coverage'))).to.deep.equal([]);
    w.close();
    seen.length = 0;
    writeFileSync(path.join(root, 'p.yaml'), 'y');
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).to.deep.equal([]);
  });

  it('when the kernel refuses a watch (inotify exhausted: ENOSPC), says why and polls: writes, atomic saves and deletions are still seen', async () => {
    const root = makeTempDir('watch-tree');
    mkdirSync(path.join(root, 'sub'));
    writeFileSync(path.join(root, 'sub', 'x.yaml'), '1');
    writeFileSync(path.join(root, 'gone.yaml'), '1');
    const reasons: string[] = [];
    const refuse = (): FSWatcher => {
      throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    };
    const { w, seen } = watched(root, { watchDirectory: refuse, pollMs: 50, onFallback: (r) => reasons.push(r) });
    expect(w.mode).to.equal('poll');
    expect(reasons).to.have.length(1);
    expect(reasons[0]).to.match(/cannot watch .* \(ENOSPC\); polling every 50 ms instead/);
    // Same size, same second: the stamp still changes (inode and ctime in nanoseconds).
    writeFileSync(path.join(root, 'sub', '.x.tmp'), '2');
    renameSync(path.join(root, 'sub', '.x.tmp'), path.join(root, 'sub', 'x.yaml'));
    await waitFor('the atomic save, polled', () => seen.includes('sub/x.yaml'), 5_000, 10);
    rmSync(path.join(root, 'gone.yaml'));
    await waitFor('the deletion, polled', () => seen.includes('gone.yaml'), 5_000, 10);
    writeFileSync(path.join(root, 'new.yaml'), '1');
    await waitFor('the new file, polled', () => seen.includes('new.yaml'), 5_000, 10);
  });
});
