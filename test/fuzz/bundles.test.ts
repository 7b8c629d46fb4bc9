/**
 * Policy bundles under random damage and forgery. Property: whatever bytes a replica is handed
 * (a mutated real bundle, or arbitrary bytes), parseBundle either refuses them with a BundleError,
 * or returns a bundle whose every path is safe, whose every file hashes to its sha256 and size, and
 * whose files hash to its revision. It never throws anything else, and never accepts a lie.
 * VERDICT_FUZZ_RUNS raises the number of cases (make fuzz).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { BundleError, buildBundle, parseBundle, unsafePathProblem, DEFAULT_BUNDLE_LIMITS } from '../../src/bundles/format.js';
import { policyRevision, sha256Hex } from '../../src/policy/index.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 300);

const POLICY = 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: document\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n';
const base = buildBundle(
  ['a.yaml', 'docs/b.yaml', 'docs/c.yml'].map((p, i) => ({ path: p, text: `${POLICY}# ${i}\n`, sha256: sha256Hex(`${POLICY}# ${i}\n`) })),
  { createdAt: new Date('2026-12-01T00:00:00Z'), createdBy: 'fuzz', message: '', tests: { run: true, passed: 0, failed: 0, suiteErrors: 0 } },
);

const HOSTILE_PATHS = ['../x.yaml', '/x.yaml', 'a/./b.yaml', 'a\u0000.yaml', '.x.yaml', 'a\\b.yaml', 'C:x.yaml', 'x_test.yaml', '', 'a//b.yaml', 'x.yaml', 'docs/b.yaml'];
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(...HOSTILE_PATHS), fc.constant('sha256:0000000000000000'));

type Raw = Record<string, unknown> & { files: Record<string, unknown>[] };

/** One edit of a bundle's JSON: a field replaced, a file's text/path/hash changed, a file added or dropped. */
const edit = fc.oneof(
  fc.tuple(fc.constantFrom('format', 'revision', 'createdAt', 'createdBy', 'message', 'tests', 'files', 'extra'), anyJson).map(([k, v]) => (r: Raw) => void ((r as Record<string, unknown>)[k] = v)),
  fc.tuple(fc.nat(), fc.constantFrom('path', 'sha256', 'size', 'text', 'extra'), anyJson).map(([i, k, v]) => (r: Raw) => {
    if (Array.isArray(r.files) && r.files.length > 0 && typeof r.files[i % r.files.length] === 'object' && r.files[i % r.files.length] !== null) r.files[i % r.files.length]![k] = v;
  }),
  fc.tuple(fc.nat(), fc.string({ maxLength: 3 })).map(([i, s]) => (r: Raw) => {
    const f = Array.isArray(r.files) ? r.files[i % Math.max(1, r.files.length)] : undefined;
    if (f && typeof f.text === 'string') f.text = f.text.slice(0, i % 50) + s + f.text.slice((i % 50) + 1);
  }),
  // A forger who recomputes the file's hash and size after editing it (the revision still binds them).
  fc.tuple(fc.nat(), fc.string({ maxLength: 5 })).map(([i, s]) => (r: Raw) => {
    const f = Array.isArray(r.files) ? r.files[i % Math.max(1, r.files.length)] : undefined;
    if (f && typeof f.text === 'string') {
      const text = `${f.text}${s}`;
      f.text = text;
      f.sha256 = sha256Hex(text);
      f.size = Buffer.byteLength(text);
    }
  }),
  fc.nat().map((i) => (r: Raw) => void (Array.isArray(r.files) && r.files.splice(i % Math.max(1, r.files.length), 1))),
  fc.constantFrom(...HOSTILE_PATHS).map((p) => (r: Raw) => void (Array.isArray(r.files) && r.files.push({ path: p, text: POLICY, sha256: sha256Hex(POLICY), size: Buffer.byteLength(POLICY) }))),
);

function check(bytes: Uint8Array): void {
  let bundle;
  try {
    bundle = parseBundle(bytes, { ...DEFAULT_BUNDLE_LIMITS, maxFiles: 50 });
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(BundleError);
    return;
  }
  for (const f of bundle.files) {
    expect(unsafePathProblem(f.path), f.path).to.equal(undefined);
    expect(sha256Hex(f.text)).to.equal(f.sha256);
    expect(Buffer.byteLength(f.text)).to.equal(f.size);
  }
  expect(policyRevision(bundle.files)).to.equal(bundle.revision);
}

describe('fuzz: policy bundles never accept a lie', () => {
  it('mutated bundles: refused with a BundleError, or self-consistent', () => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        const raw = JSON.parse(base.bytes.toString('utf8')) as Raw;
        for (const e of edits) e(raw);
        check(Buffer.from(JSON.stringify(raw)));
      }),
      { numRuns: RUNS },
    );
  });

  it('arbitrary bytes and truncations: refused with a BundleError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: base.bytes.length - 1 }).map((n) => base.bytes.subarray(0, n))), (bytes) => check(bytes)),
      { numRuns: RUNS },
    );
  });

  it('an edit that a forger cannot make consistent is always refused', () => {
    // Changing a file's text and recomputing its hash, without a new revision: never accepted.
    fc.assert(
      fc.property(fc.nat({ max: 2 }), fc.string({ minLength: 1, maxLength: 8 }), (i, s) => {
        const raw = JSON.parse(base.bytes.toString('utf8')) as Raw;
        const f = raw.files[i]!;
        f.text = `${String(f.text)}${s}`;
        f.sha256 = sha256Hex(f.text as string);
        f.size = Buffer.byteLength(f.text as string);
        expect(() => parseBundle(Buffer.from(JSON.stringify(raw)))).to.throw(BundleError, /not sha256:[0-9a-f]{16} as the bundle says/);
      }),
      { numRuns: Math.min(RUNS, 100) },
    );
  });
});
