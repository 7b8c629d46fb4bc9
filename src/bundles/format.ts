/**
 * The policy bundle: one immutable JSON object holding every policy file of a set (path, SHA-256,
 * size and text), named by the set's revision (the same formula as the directory source, so a
 * directory and the bundle pushed from it serve the same revision). One object, not one per file:
 * a replica gets a complete set in one read (atomic by construction, one round trip however many
 * files), the object store checks the whole object's digest, and the cache on disk is one file.
 * The price, re-sending unchanged files with each revision, is small for policy text.
 *
 * Everything here is pure (no I/O) and treats its input as hostile: a bundle is accepted only if
 * it is within the limits, every path is a safe relative policy path, every file hashes to its
 * SHA-256, and the files hash to the revision it claims (and the one it was asked for).
 */
import { createHash } from 'node:crypto';
import type { PolicyFile } from '../service/policy-source.js';
import { comparePolicyPaths, policyRevision, sha256Hex } from '../policy/revision.js';
import { isPolicyFile } from '../policy/source.js';

export const BUNDLE_FORMAT = 'verdict.policy-bundle.v1';

/** What a bundle may hold; crossing one refuses the bundle as a whole. */
export interface BundleLimits {
  /** The whole object, bytes (`policySource.maxBundleBytes` on a replica). */
  readonly maxBundleBytes: number;
  readonly maxFiles: number;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = { maxBundleBytes: 64 * 1024 * 1024, maxFiles: 20_000 };
/** Fixed: a path longer than this, or deeper, is refused. */
export const MAX_PATH_BYTES = 1024;
export const MAX_PATH_SEGMENTS = 32;
/** Fixed: createdBy and message are cut to this many characters when built, and refused longer when read. */
export const MAX_NOTE_CHARS = 1024;

export const REVISION_PATTERN = /^sha256:[0-9a-f]{16}$/;

export type BundleErrorCode =
  | 'BUNDLE_TOO_LARGE'
  | 'BUNDLE_TOO_MANY_FILES'
  | 'BUNDLE_MALFORMED'
  | 'BUNDLE_UNSAFE_PATH'
  | 'BUNDLE_HASH_MISMATCH'
  | 'BUNDLE_REVISION_MISMATCH'
  | 'BUNDLE_EMPTY';

/** A bundle that is refused, with a stable code and a message naming the file or field. */
export class BundleError extends Error {
  constructor(
    readonly code: BundleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

/** The outcome of the test suites when the bundle was pushed. */
export interface BundleTests {
  /** false: pushed with --skip-tests. */
  readonly run: boolean;
  readonly passed: number;
  readonly failed: number;
  readonly suiteErrors: number;
}

export interface BundleFile extends PolicyFile {
  /** UTF-8 bytes of the text. */
  readonly size: number;
}

export interface Bundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly revision: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly message: string;
  readonly tests: BundleTests;
  /** In path order (comparePolicyPaths), paths unique. */
  readonly files: readonly BundleFile[];
}

export interface BuiltBundle {
  readonly bundle: Bundle;
  /** The object as stored. */
  readonly bytes: Buffer;
  /** sha256 of `bytes`, hex: recorded with the label, checked by replicas and the cache. */
  readonly digest: string;
}

export function sha256OfBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Why `path` cannot be a file of a bundle, or undefined when it can. */
export function unsafePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'a path must be a non-empty string';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return `longer than ${MAX_PATH_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(path)) return 'holds a control character';
  if (path.includes('\\')) return 'holds a backslash (paths use /)';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'is absolute (paths are relative to the policy directory)';
  const segments = path.split('/');
  if (segments.length > MAX_PATH_SEGMENTS) return `has more than ${MAX_PATH_SEGMENTS} segments`;
  for (const s of segments) {
    if (s === '') return 'has an empty segment';
    if (s === '.' || s === '..') return `has a "${s}" segment`;
    // The directory source skips hidden entries: a bundle holding one would serve what no directory would.
    if (s.startsWith('.')) return `has a hidden segment "${s}"`;
  }
  if (!isPolicyFile(segments.at(-1)!)) return 'is not a policy file name (*.yaml or *.yml, not *_test.yaml)';
  return undefined;
}

/** Builds the bundle object of a policy set (files as read from a directory). */
export function buildBundle(
  files: readonly PolicyFile[],
  meta: { readonly createdAt: Date; readonly createdBy: string; readonly message: string; readonly tests: BundleTests },
  limits: BundleLimits = DEFAULT_BUNDLE_LIMITS,
): BuiltBundle {
  const ordered = [...files].sort((a, b) => comparePolicyPaths(a.path, b.path));
  const bundle: Bundle = {
    format: BUNDLE_FORMAT,
    revision: policyRevision(ordered),
    createdAt: meta.createdAt.toISOString(),
    createdBy: meta.createdBy.slice(0, MAX_NOTE_CHARS),
    message: meta.message.slice(0, MAX_NOTE_CHARS),
    tests: meta.tests,
    files: ordered.map((f) => ({ path: f.path, sha256: f.sha256, size: Buffer.byteLength(f.text, 'utf8'), text: f.text })),
  };
  const bytes = Buffer.from(JSON.stringify(bundle), 'utf8');
  // The pusher refuses what a replica would refuse, with the same message.
  verifyBundle(bundle, bytes.length, limits);
  return { bundle, bytes, digest: sha256OfBytes(bytes) };
}

/**
 * Parses and checks a bundle object. `expect.revision`: the revision it was fetched as (the object
 * name, the label); `expect.digest`: the sha256 the label recorded for the object.
 */
export function parseBundle(bytes: Uint8Array, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS, expect: { readonly revision?: string; readonly digest?: string } = {}): Bundle {
  if (bytes.length > limits.maxBundleBytes) throw tooLarge(bytes.length, limits);
  if (expect.digest !== undefined) {
    const digest = sha256OfBytes(bytes);
    if (digest !== expect.digest) throw new BundleError('BUNDLE_HASH_MISMATCH', `the bundle object hashes to sha256 ${digest.slice(0, 16)}…, not ${expect.digest.slice(0, 16)}… as its label records`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new BundleError('BUNDLE_MALFORMED', `the bundle is not JSON (${(err as Error).message})`);
  }
  const bundle = shapeOf(raw, limits);
  verifyBundle(bundle, bytes.length, limits);
  if (expect.revision !== undefined && bundle.revision !== expect.revision) {
    throw new BundleError('BUNDLE_REVISION_MISMATCH', `the bundle holds revision ${bundle.revision}, not ${expect.revision} as it was asked for`);
  }
  return bundle;
}

function tooLarge(size: number, limits: BundleLimits): BundleError {
  return new BundleError('BUNDLE_TOO_LARGE', `the bundle is ${size} bytes; at most ${limits.maxBundleBytes} allowed (policySource.maxBundleBytes)`);
}

const TOP_KEYS = ['format', 'revision', 'createdAt', 'createdBy', 'message', 'tests', 'files'];
const FILE_KEYS = ['path', 'sha256', 'size', 'text'];
const TEST_KEYS = ['run', 'passed', 'failed', 'suiteErrors'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) throw new BundleError('BUNDLE_MALFORMED', `${where}: unknown field "${k.slice(0, 64)}"`);
  for (const k of keys) if (!(k in obj)) throw new BundleError('BUNDLE_MALFORMED', `${where}: missing field "${k}"`);
}

const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks the JSON's shape (types, fields); contents are checked by verifyBundle. */
function shapeOf(raw: unknown, limits: BundleLimits): Bundle {
  if (!isRecord(raw)) throw new BundleError('BUNDLE_MALFORMED', 'the bundle must be a JSON object');
  if (raw.format !== BUNDLE_FORMAT) throw new BundleError('BUNDLE_MALFORMED', `format ${JSON.stringify(String(raw.format).slice(0, 64))} is not ${BUNDLE_FORMAT}`);
  exactKeys(raw, TOP_KEYS, 'bundle');
  if (typeof raw.revision !== 'string' || !REVISION_PATTERN.test(raw.revision)) throw new BundleError('BUNDLE_MALFORMED', 'revision must look like sha256:<16 hex digits>');
  if (typeof raw.createdAt !== 'string' || Number.isNaN(Date.parse(raw.createdAt)) || raw.createdAt.length > 64) throw new BundleError('BUNDLE_MALFORMED', 'createdAt must be an RFC 3339 time');
  for (const k of ['createdBy', 'message'] as const) {
    if (typeof raw[k] !== 'string' || (raw[k] as string).length > MAX_NOTE_CHARS) throw new BundleError('BUNDLE_MALFORMED', `${k} must be a string of at most ${MAX_NOTE_CHARS} characters`);
  }
  const tests = raw.tests;
  if (!isRecord(tests)) throw new BundleError('BUNDLE_MALFORMED', 'tests must be an object');
  exactKeys(tests, TEST_KEYS, 'tests');
  if (typeof tests.run !== 'boolean' || !count(tests.passed) || !count(tests.failed) || !count(tests.suiteErrors)) throw new BundleError('BUNDLE_MALFORMED', 'tests: run must be true or false, passed, failed and suiteErrors counts');
  if (!Array.isArray(raw.files)) throw new BundleError('BUNDLE_MALFORMED', 'files must be a list');
  if (raw.files.length > limits.maxFiles) throw new BundleError('BUNDLE_TOO_MANY_FILES', `the bundle holds ${raw.files.length} files; at most ${limits.maxFiles} allowed`);
  raw.files.forEach((f: unknown, i) => {
    if (!isRecord(f)) throw new BundleError('BUNDLE_MALFORMED', `files[${i}] must be an object`);
    exactKeys(f, FILE_KEYS, `files[${i}]`);
    if (typeof f.text !== 'string' || typeof f.sha256 !== 'string' || !count(f.size)) throw new BundleError('BUNDLE_MALFORMED', `files[${i}]: text and sha256 must be strings, size a count`);
  });
  return raw as unknown as Bundle;
}

/** Limits, paths, each file's hash and size, and the revision over all of them. */
function verifyBundle(bundle: Bundle, size: number, limits: BundleLimits): void {
  if (size > limits.maxBundleBytes) throw tooLarge(size, limits);
  if (bundle.files.length > limits.maxFiles) throw new BundleError('BUNDLE_TOO_MANY_FILES', `the bundle holds ${bundle.files.length} files; at most ${limits.maxFiles} allowed`);
  if (bundle.files.length === 0) throw new BundleError('BUNDLE_EMPTY', 'the bundle holds no policy file');
  const seen = new Set<string>();
  for (const f of bundle.files) {
    const problem = unsafePathProblem(f.path);
    if (problem) throw new BundleError('BUNDLE_UNSAFE_PATH', `file ${JSON.stringify(String(f.path).slice(0, 200))}: ${problem}`);
    if (seen.has(f.path)) throw new BundleError('BUNDLE_MALFORMED', `file ${JSON.stringify(f.path)} appears twice`);
    seen.add(f.path);
    const sha = sha256Hex(f.text);
    if (sha !== f.sha256) throw new BundleError('BUNDLE_HASH_MISMATCH', `file ${JSON.stringify(f.path)}: its text hashes to ${sha}, not ${String(f.sha256).slice(0, 64)} as the bundle says`);
    const bytes = Buffer.byteLength(f.text, 'utf8');
    if (bytes !== f.size) throw new BundleError('BUNDLE_HASH_MISMATCH', `file ${JSON.stringify(f.path)}: its text is ${bytes} bytes, not ${f.size} as the bundle says`);
  }
  const revision = policyRevision(bundle.files);
  if (revision !== bundle.revision) throw new BundleError('BUNDLE_REVISION_MISMATCH', `the files hash to revision ${revision}, not ${bundle.revision} as the bundle says`);
}

/** The policy files of a bundle, as a snapshot carries them. */
export function bundleFiles(bundle: Bundle): PolicyFile[] {
  return bundle.files.map((f) => ({ path: f.path, text: f.text, sha256: f.sha256 }));
}
