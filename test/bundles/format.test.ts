/**
 * Policy bundles as hostile input: what parseBundle refuses (paths that escape or hide, hashes and
 * sizes that lie, a revision the files do not give, oversized bundles, unknown fields), that the
 * revision is the directory's, and that the disk cache reads back only what it wrote.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BundleCache } from '../../src/bundles/cache.js';
import { BundleError, buildBundle, parseBundle, sha256OfBytes, unsafePathProblem, DEFAULT_BUNDLE_LIMITS, type Bundle } from '../../src/bundles/format.js';
import { parseBundleSourceUrl } from '../../src/bundles/source-url.js';
import { parseLabelRecord } from '../../src/bundles/store.js';
import { loadPolicyDirectory, readPolicySources, withDigest, sha256Hex, policyRevision } from '../../src/policy/index.js';
import { REPO_ROOT } from '../support/server-process.js';

const POLICY = 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: document\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    roles: [employee]\n';
const TESTS = { run: true, passed: 1, failed: 0, suiteErrors: 0 };
const META = { createdAt: new Date('2026-12-01T10:00:00Z'), createdBy: 'alice@host', message: 'm', tests: TESTS };

function file(p: string, text = POLICY) {
  return { path: p, text, sha256: sha256Hex(text) };
}

/** A bundle's JSON, edited by `mutate`, as bytes. */
function mutated(mutate: (b: Record<string, unknown> & { files: Record<string, unknown>[] }) => void, files = [file('a.yaml'), file('b/c.yaml')]): Buffer {
  const raw = JSON.parse(buildBundle(files, META).bytes.toString('utf8')) as Record<string, unknown> & { files: Record<string, unknown>[] };
  mutate(raw);
  return Buffer.from(JSON.stringify(raw));
}

function refused(bytes: Uint8Array, code: string, message: RegExp, limits = DEFAULT_BUNDLE_LIMITS, expect_: { revision?: string; digest?: string } = {}): void {
  let err: unknown;
  try {
    parseBundle(bytes, limits, expect_);
  } catch (e) {
    err = e;
  }
  expect(err, 'the bundle was accepted').to.be.instanceOf(BundleError);
  expect((err as BundleError).code).to.equal(code);
  expect((err as Error).message).to.match(message);
}

describe('policy bundles: format and validation', () => {
  it('a bundle of the example policies has the revision verdict validate prints, and reads back whole', async () => {
    const dir = path.join(REPO_ROOT, 'policies');
    const built = buildBundle((await readPolicySources(dir)).map(withDigest), META);
    expect(built.bundle.revision).to.equal((await loadPolicyDirectory(dir)).revision);
    const back = parseBundle(built.bytes, DEFAULT_BUNDLE_LIMITS, { revision: built.bundle.revision, digest: built.digest });
    expect(back.files.map((f) => f.path)).to.deep.equal(['_declarations.yaml', 'common.yaml', 'documents/document.yaml', 'documents/folder.yaml', 'reports/report.yaml']);
    expect(back.files[1]!.text).to.equal(readFileSync(path.join(dir, 'common.yaml'), 'utf8'));
    expect(back).to.deep.include({ createdBy: 'alice@host', message: 'm', tests: TESTS });
  });

  it('refuses paths that escape, are absolute, hidden, hold control characters or are not policy files', () => {
    const cases: [string, RegExp][] = [
      ['../etc/passwd.yaml', /"\.\." segment/],
      ['a/../../x.yaml', /"\.\." segment/],
      ['./a.yaml', /"\." segment/],
      ['/etc/x.yaml', /absolute/],
      ['C:/x.yaml', /absolute/],
      ['a\\..\\x.yaml', /backslash/],
      ['a//b.yaml', /empty segment/],
      ['.hidden.yaml', /hidden segment/],
      ['..data/x.yaml', /hidden segment/],
      ['a\nb.yaml', /control character/],
      ['a\u0000.yaml', /control character/],
      ['a\u001b[31m.yaml', /control character/],
      ['x.txt', /not a policy file name/],
      ['x_test.yaml', /not a policy file name/],
      [`${'d/'.repeat(40)}x.yaml`, /more than 32 segments/],
      [`${'x'.repeat(1100)}.yaml`, /longer than 1024 bytes/],
    ];
    for (const [p, why] of cases) {
      expect(unsafePathProblem(p), p).to.match(why);
      // In a bundle whose hashes and revision are all consistent: refused for the path alone.
      const text = POLICY;
      const f = { path: p, text, sha256: sha256Hex(text), size: Buffer.byteLength(text) };
      const bytes = mutated((b) => {
        b.files = [f];
        b.revision = policyRevision([f]);
      });
      refused(bytes, 'BUNDLE_UNSAFE_PATH', new RegExp(why.source));
    }
    expect(unsafePathProblem('documents/document.yaml')).to.equal(undefined);
    expect(unsafePathProblem('a b/ü.yml')).to.equal(undefined);
  });

  it('refuses a file whose text does not hash to its sha256, or whose size lies', () => {
    refused(mutated((b) => (b.files[0]!.text = `${POLICY}# changed\n`)), 'BUNDLE_HASH_MISMATCH', /file "a\.yaml": its text hashes to [0-9a-f]{64}, not/);
    refused(mutated((b) => (b.files[0]!.sha256 = 'A'.repeat(64))), 'BUNDLE_HASH_MISMATCH', /file "a\.yaml"/);
    refused(mutated((b) => (b.files[0]!.size = 1)), 'BUNDLE_HASH_MISMATCH', /is \d+ bytes, not 1/);
  });

  it('refuses a manifest whose files do not hash to its revision, or that is not the revision asked for', () => {
    // Consistent files, another revision claimed.
    refused(mutated((b) => (b.revision = 'sha256:0000000000000000')), 'BUNDLE_REVISION_MISMATCH', /the files hash to revision sha256:[0-9a-f]{16}, not sha256:0000000000000000/);
    // A file dropped (with its hash), the old revision kept: the set is not the one named.
    refused(mutated((b) => b.files.pop()), 'BUNDLE_REVISION_MISMATCH', /not sha256:/);
    // A file renamed: paths are part of the revision.
    const f = file('a.yaml');
    const renamed = mutated((b) => (b.files[0]!.path = 'z.yaml'), [f, file('b/c.yaml')]);
    refused(renamed, 'BUNDLE_REVISION_MISMATCH', /not sha256:/);
    const other = buildBundle([file('x.yaml')], META);
    refused(other.bytes, 'BUNDLE_REVISION_MISMATCH', /not sha256:1111111111111111 as it was asked for/, DEFAULT_BUNDLE_LIMITS, { revision: 'sha256:1111111111111111' });
    refused(other.bytes, 'BUNDLE_HASH_MISMATCH', /as its label records/, DEFAULT_BUNDLE_LIMITS, { digest: 'f'.repeat(64) });
  });

  it('refuses oversized bundles and too many files before anything else, with the setting named', () => {
    const big = buildBundle([file('a.yaml', `${POLICY}#${'x'.repeat(5000)}\n`)], META);
    refused(big.bytes, 'BUNDLE_TOO_LARGE', /is \d+ bytes; at most 4096 allowed \(policySource\.maxBundleBytes\)/, { ...DEFAULT_BUNDLE_LIMITS, maxBundleBytes: 4096 });
    // The pusher refuses it the same way.
    expect(() => buildBundle([file('a.yaml', 'x'.repeat(5000))], META, { ...DEFAULT_BUNDLE_LIMITS, maxBundleBytes: 4096 })).to.throw(BundleError, /at most 4096/);
    const many = buildBundle([file('a.yaml'), file('b.yaml'), file('c.yaml')], META);
    refused(many.bytes, 'BUNDLE_TOO_MANY_FILES', /holds 3 files; at most 2 allowed/, { ...DEFAULT_BUNDLE_LIMITS, maxFiles: 2 });
    // Too large is decided on the byte count: a huge garbage object is never parsed.
    refused(Buffer.alloc(5000, 0x5b), 'BUNDLE_TOO_LARGE', /at most 4096/, { ...DEFAULT_BUNDLE_LIMITS, maxBundleBytes: 4096 });
  });

  it('refuses malformed bundles: not JSON, deep nesting, wrong types, unknown or missing fields, duplicates, empty', () => {
    refused(Buffer.from('not json'), 'BUNDLE_MALFORMED', /not JSON/);
    refused(Buffer.from('['.repeat(200_000)), 'BUNDLE_MALFORMED', /not JSON/);
    refused(Buffer.from('[]'), 'BUNDLE_MALFORMED', /must be a JSON object/);
    refused(mutated((b) => (b.format = 'verdict.policy-bundle.v9')), 'BUNDLE_MALFORMED', /is not verdict\.policy-bundle\.v1/);
    refused(mutated((b) => (b.extra = 1)), 'BUNDLE_MALFORMED', /unknown field "extra"/);
    refused(mutated((b) => delete b.tests), 'BUNDLE_MALFORMED', /missing field "tests"/);
    refused(mutated((b) => (b.files[0]!.link = '../x')), 'BUNDLE_MALFORMED', /files\[0\]: unknown field "link"/);
    refused(mutated((b) => (b.files[0]!.text = 42)), 'BUNDLE_MALFORMED', /text and sha256 must be strings/);
    refused(mutated((b) => ((b as Record<string, unknown>).files = 'x')), 'BUNDLE_MALFORMED', /files must be a list/);
    refused(mutated((b) => (b.createdBy = 'x'.repeat(5000))), 'BUNDLE_MALFORMED', /createdBy must be a string of at most 1024/);
    refused(mutated((b) => (b.revision = 'sha256:../../x')), 'BUNDLE_MALFORMED', /revision must look like/);
    refused(mutated((b) => (b.files = [b.files[0]!, b.files[0]!])), 'BUNDLE_MALFORMED', /appears twice/);
    refused(mutated((b) => (b.files = [])), 'BUNDLE_EMPTY', /no policy file/);
  });

  it('parses source URLs and label values strictly', () => {
    expect(parseBundleSourceUrl('nats://127.0.0.1:4222/production')).to.deep.equal({ servers: ['nats://127.0.0.1:4222'], label: 'production', display: 'nats://127.0.0.1:4222/production' });
    expect(parseBundleSourceUrl('tls://a:4222,b:4222').label).to.equal('default');
    expect(parseBundleSourceUrl('tls://a:4222,b:4222').servers).to.deep.equal(['tls://a:4222', 'tls://b:4222']);
    expect(() => parseBundleSourceUrl('nats://user:secret@host:4222/p')).to.throw(/credentials in the URL are not accepted/);
    expect(() => parseBundleSourceUrl('nats://host:4222/a.b')).to.throw(/label "a\.b" must be 1 to 64 letters/);
    expect(() => parseBundleSourceUrl('http://host/p')).to.throw(/must look like nats:\/\/HOST:PORT\/LABEL/);
    expect(() => parseBundleSourceUrl('nats://host:4222/a/b')).to.throw(/must look like/);
    expect(() => parseLabelRecord(Buffer.from('{"schema":"verdict.policy-label.v1","revision":"sha256:zz"}'))).to.throw(BundleError, /revision must look like/);
    expect(() => parseLabelRecord(Buffer.alloc(70_000, 0x20))).to.throw(BundleError, /at most 65536/);
  });

  describe('the disk cache', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-cache-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('reads back exactly what it wrote; nothing when empty', async () => {
      const cache = new BundleCache(dir, 'OBJ', 'prod');
      expect(cache.read(DEFAULT_BUNDLE_LIMITS)).to.equal(undefined);
      const built = buildBundle([file('a.yaml')], META);
      await cache.write(built.bundle, built.bytes);
      const back = cache.read(DEFAULT_BUNDLE_LIMITS)!;
      expect(back.bundle.revision).to.equal(built.bundle.revision);
      expect(sha256OfBytes(back.bytes)).to.equal(built.digest);
    });

    it('refuses a damaged file, a file of another label, and a bundle that no longer verifies', async () => {
      const built = buildBundle([file('a.yaml')], META);
      const cache = new BundleCache(dir, 'OBJ', 'prod');
      await cache.write(built.bundle, built.bytes);
      const good = readFileSync(cache.file);
      // One byte of a policy flipped: the whole-file digest no longer matches.
      const damaged = Buffer.from(good);
      damaged[damaged.length - 40] ^= 1;
      writeFileSync(cache.file, damaged);
      expect(() => cache.read(DEFAULT_BUNDLE_LIMITS)).to.throw(BundleError, /does not hash to the digest it was written with/);
      // Digest recomputed by the attacker: the file hashes still catch the edit.
      const nl = good.indexOf(0x0a);
      const header = JSON.parse(good.subarray(0, nl).toString()) as Record<string, string>;
      const body = Buffer.from(good.subarray(nl + 1).toString().replace('effect: allow', 'effect: deny '));
      writeFileSync(cache.file, Buffer.concat([Buffer.from(`${JSON.stringify({ ...header, digest: sha256OfBytes(body) })}\n`), body]));
      expect(() => cache.read(DEFAULT_BUNDLE_LIMITS)).to.throw(BundleError, /hashes to [0-9a-f]{64}, not/);
      // The right file of another label is not used for this one.
      writeFileSync(cache.file, good);
      expect(new BundleCache(dir, 'OBJ', 'staging').read(DEFAULT_BUNDLE_LIMITS)).to.equal(undefined);
      writeFileSync(path.join(dir, 'OBJ.staging.bundle'), good);
      expect(() => new BundleCache(dir, 'OBJ', 'staging').read(DEFAULT_BUNDLE_LIMITS)).to.throw(BundleError, /holds label prod of OBJ, not staging/);
      writeFileSync(cache.file, 'garbage');
      expect(() => cache.read(DEFAULT_BUNDLE_LIMITS)).to.throw(BundleError, /no header line|not JSON/);
    });
  });

  it('a bundle holds the text: Bundle.files carry what the compiler is given', () => {
    const built = buildBundle([file('a.yaml')], META);
    const b: Bundle = parseBundle(built.bytes);
    expect(b.files[0]).to.deep.equal({ path: 'a.yaml', sha256: sha256Hex(POLICY), size: Buffer.byteLength(POLICY), text: POLICY });
  });
});
