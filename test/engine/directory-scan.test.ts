/**
 * The directory scan walks a directory three ways: synchronously straight through (a first load),
 * the same walk in slices (polls and changes on a local filesystem, while the server answers), and
 * through the thread pool with every directory listed and every file stat'ed at once (other
 * filesystems). A poll compares its scan with the last one entry by entry, and the files' order is
 * the order they are read and compiled in, so every walk must give the same scan: the same files in
 * the same order, with the same stamps, and the same directories, whatever the tree holds.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { scanDirectory, type DirectoryScan } from '../../src/policy/directory-scan.js';

const plain = (s: DirectoryScan) => ({ root: s.root, dataTarget: s.dataTarget, files: [...s.files], directories: s.directories });

describe('directory scan: every walk gives the same scan', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'verdict-scan-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('over nested directories, hidden entries, other files, links (dangling too) and empty directories', async () => {
    // Names chosen so that sorting matters: upper case, digits, a directory sorting between files.
    const tree = ['b.yaml', 'A.yaml', 'a1.yml', 'm/z.yaml', 'm/a.yaml', 'm/deep/er/x.yaml', 'm/deep/y.yaml', 'c/only.yaml', 'B/q.yaml'];
    for (const f of tree) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), `resource: ${f}\n`);
    }
    mkdirSync(path.join(dir, 'empty'));
    mkdirSync(path.join(dir, '.hidden'));
    writeFileSync(path.join(dir, '.hidden', 'skipped.yaml'), 'x');
    writeFileSync(path.join(dir, '.swap.yaml'), 'x');
    writeFileSync(path.join(dir, 'notes.txt'), 'x');
    writeFileSync(path.join(dir, 'm', 'README.md'), 'x');
    symlinkSync(path.join(dir, 'b.yaml'), path.join(dir, 'link.yaml'));
    symlinkSync(path.join(dir, 'gone.yaml'), path.join(dir, 'dangling.yaml'));
    symlinkSync(path.join(dir, 'm'), path.join(dir, 'dirlink'));

    const sync = await scanDirectory(dir, 'now');
    for (const how of ['background', 'threadpool'] as const) expect(plain(await scanDirectory(dir, how)), how).to.deep.equal(plain(sync));
    expect([...sync.files.keys()]).to.deep.equal(['A.yaml', 'B/q.yaml', 'a1.yml', 'b.yaml', 'c/only.yaml', 'dangling.yaml', 'link.yaml', 'm/a.yaml', 'm/deep/er/x.yaml', 'm/deep/y.yaml', 'm/z.yaml']);
    expect(sync.files.get('dangling.yaml'), 'a dangling link is listed without a stamp').to.equal(undefined);
    expect(sync.files.get('link.yaml')?.ino, 'a link has its target\'s stamp').to.equal(sync.files.get('b.yaml')?.ino);
    expect(sync.directories.map((d) => path.relative(dir, d))).to.deep.equal(['', 'B', 'c', 'empty', 'm', 'm/deep', 'm/deep/er']);
  });

  it('over a wide tree (2,000 files in 50 directories) and a deep one (60 levels)', async () => {
    for (let d = 0; d < 50; d++) {
      mkdirSync(path.join(dir, 'wide', `d${d}`), { recursive: true });
      for (let f = 0; f < 40; f++) writeFileSync(path.join(dir, 'wide', `d${d}`, `f${(f * 7) % 40}.yaml`), `n: ${d}.${f}\n`);
    }
    let deep = path.join(dir, 'deep');
    for (let level = 0; level < 60; level++) {
      deep = path.join(deep, `l${level}`);
      mkdirSync(deep, { recursive: true });
      writeFileSync(path.join(deep, 'p.yaml'), `level: ${level}\n`);
    }
    const sync = await scanDirectory(dir, 'now');
    expect(sync.files.size).to.equal(2_060);
    for (const how of ['background', 'threadpool'] as const) expect(plain(await scanDirectory(dir, how)), how).to.deep.equal(plain(sync));
  });

  it('every walk fails the same way on a path that is not a directory', async () => {
    writeFileSync(path.join(dir, 'file.yaml'), 'x');
    const messages = [];
    for (const how of ['now', 'background', 'threadpool'] as const) {
      try {
        await scanDirectory(path.join(dir, 'file.yaml'), how);
        expect.fail('scanned a file as a directory');
      } catch (err) {
        messages.push((err as Error).message);
      }
    }
    expect(messages[0]).to.match(/cannot read policy directory/);
    expect(messages.slice(1)).to.deep.equal([messages[0], messages[0]]);
  });
});
