import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodeCache, codeCacheDir } from '../../src/files/code-cache.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, '../../../bin/verdict.js');
const policies = path.resolve(here, '../../../policies');

/** A CommonJS module in a fresh directory, required through `cache` (installed only around the require). */
function requireThrough(cache: CodeCache, dir: string, name: string, source: string): unknown {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  const req = createRequire(path.join(dir, 'index.js'));
  delete req.cache[file];
  cache.install();
  try {
    return req(file);
  } finally {
    cache.uninstall();
  }
}

const MODULE = `#!/usr/bin/env node
'use strict';
function triple(x) { return 3 * x; }
module.exports = { answer: triple(14), file: __filename, dir: __dirname, sibling: require.resolve('./index.js') };
`;

describe('code cache for CommonJS modules (cold start)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'verdict-code-cache-'));
    fs.writeFileSync(path.join(tmp, 'index.js'), 'module.exports = 1;\n');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('lives where VERDICT_CODE_CACHE or XDG_CACHE_HOME says, per Node version; "off" turns it off', () => {
    expect(codeCacheDir({ VERDICT_CODE_CACHE: 'off' })).to.equal(undefined);
    expect(codeCacheDir({ VERDICT_CODE_CACHE: '/srv/cache' })).to.match(new RegExp(`^/srv/cache/node-${process.versions.node}-`));
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x' })).to.match(/^\/x\/verdict\/code-cache\/node-/);
  });

  it('a second process compiles from the cache and the module behaves the same', () => {
    const dir = path.join(tmp, 'cache');
    const first = new CodeCache(dir);
    const a = requireThrough(first, tmp, 'm1.js', MODULE) as Record<string, unknown>;
    expect(a).to.deep.equal({ answer: 42, file: path.join(tmp, 'm1.js'), dir: tmp, sibling: path.join(tmp, 'index.js') });
    expect(first.status).to.include({ hits: 0, misses: 1 });
    expect(first.save()).to.equal(true);
    expect(fs.statSync(dir).mode & 0o777).to.equal(0o700);

    const second = new CodeCache(dir);
    const b = requireThrough(second, tmp, 'm2.js', MODULE.replace('triple(14)', 'triple(14) ')) as Record<string, unknown>;
    expect(b.answer).to.equal(42);
    expect(second.status).to.include({ hits: 0, misses: 1 }, 'another file (or changed source) is not a hit');
    // Same file and source as the first process: a hit.
    fs.rmSync(path.join(tmp, 'm1.js'));
    const third = new CodeCache(dir);
    expect(requireThrough(third, tmp, 'm1.js', MODULE)).to.deep.equal(a);
    expect(third.status).to.include({ hits: 1, misses: 0 });
    expect(third.save()).to.equal(false, 'nothing new: the file is not rewritten');
  });

  it('a module with a dynamic import() is left to Node (compiled from cached data, Node 20 loses its import callback)', async () => {
    const dir = path.join(tmp, 'cache');
    const source = "'use strict';\nmodule.exports = () => import('node:path').then((m) => m.sep);\n";
    for (let run = 0; run < 2; run++) {
      const cache = new CodeCache(dir);
      const load = requireThrough(cache, tmp, 'dyn.js', source) as () => Promise<string>;
      expect(await load(), `run ${run}`).to.equal('/');
      expect(cache.status, `run ${run}`).to.include({ hits: 0, misses: 0 });
      cache.save();
    }
  });

  it('a corrupt or truncated cache file is ignored, and rewritten whole', () => {
    const dir = path.join(tmp, 'cache');
    const first = new CodeCache(dir);
    requireThrough(first, tmp, 'm.js', MODULE);
    first.save();
    const file = first.status.file;
    const good = fs.readFileSync(file);
    // A flipped byte in the cached code (V8 release builds would run it), a truncated file, garbage.
    const flipped = Buffer.from(good);
    flipped[flipped.length - 20]! ^= 0xff;
    for (const bad of [flipped, good.subarray(0, good.length - 100), Buffer.from('not a cache at all'), Buffer.alloc(0)]) {
      fs.writeFileSync(file, bad);
      fs.rmSync(path.join(tmp, 'm.js'));
      const cache = new CodeCache(dir);
      expect((requireThrough(cache, tmp, 'm.js', MODULE) as { answer: number }).answer).to.equal(42);
      expect(cache.status).to.include({ hits: 0, misses: 1 });
      expect(cache.save()).to.equal(true);
      expect(fs.readFileSync(file).length).to.be.greaterThan(0);
    }
  });

  it('a directory others can write, or one that cannot be made, is not used: modules load as without it', () => {
    const open = path.join(tmp, 'open');
    const first = new CodeCache(open);
    requireThrough(first, tmp, 'm.js', MODULE);
    expect(first.save()).to.equal(true);
    fs.chmodSync(open, 0o777);
    fs.rmSync(path.join(tmp, 'm.js'));
    const untrusted = new CodeCache(open);
    expect((requireThrough(untrusted, tmp, 'm.js', MODULE) as { answer: number }).answer).to.equal(42);
    expect(untrusted.status).to.include({ hits: 0, misses: 1 });
    expect(untrusted.save()).to.equal(false);

    fs.writeFileSync(path.join(tmp, 'plain-file'), '');
    const impossible = new CodeCache(path.join(tmp, 'plain-file', 'cache'));
    fs.rmSync(path.join(tmp, 'm.js'));
    expect((requireThrough(impossible, tmp, 'm.js', MODULE) as { answer: number }).answer).to.equal(42);
    expect(impossible.save()).to.equal(false);
  });

  it('a syntax error is reported by Node as without the cache', () => {
    const cache = new CodeCache(path.join(tmp, 'cache'));
    expect(() => requireThrough(cache, tmp, 'broken.js', 'module.exports = {;\n')).to.throw(SyntaxError);
  });

  it('verdict starts and answers with the cache written, corrupt, unwritable or off', function () {
    this.timeout(60_000);
    const run = (env: Record<string, string>) =>
      execFileSync(process.execPath, [bin, 'validate', policies], { env: { ...process.env, ...env }, encoding: 'utf8' });
    const dir = path.join(tmp, 'cache');
    const first = run({ VERDICT_CODE_CACHE: dir });
    const [sub] = fs.readdirSync(dir);
    const file = path.join(dir, sub!, 'modules.bin');
    expect(fs.statSync(file).size).to.be.greaterThan(1000, 'written at exit');
    expect(run({ VERDICT_CODE_CACHE: dir })).to.equal(first);
    fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size, 0x41));
    expect(run({ VERDICT_CODE_CACHE: dir })).to.equal(first);
    fs.writeFileSync(path.join(tmp, 'plain-file'), '');
    expect(run({ VERDICT_CODE_CACHE: path.join(tmp, 'plain-file') })).to.equal(first);
    expect(run({ VERDICT_CODE_CACHE: 'off' })).to.equal(first);
  });
});
