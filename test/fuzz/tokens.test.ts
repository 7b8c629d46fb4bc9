/**
 * Property-based fuzzing of the subject-token verifier (src/auth/tokens.ts) with generated and
 * mutated JWTs: algorithm confusion (none, HS256 keyed with the public key, other keys), bad
 * base64, huge and deeply nested claims, claims of the wrong type. verify() never throws, never
 * hangs, never accepts a token the issuer did not sign, never accepts claims a reference check
 * refuses, and never yields a subject beyond the request limits.
 * VERDICT_FUZZ_RUNS sets the number of cases (make fuzz sets it high).
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { TokenVerifier, type TokenResult } from '../../src/auth/tokens.js';
import { ASYMMETRIC_ALGORITHMS } from '../../src/config/auth.js';
import type { IssuerConfig, TokensConfig } from '../../src/config/schema.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../src/engine/limits.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 500);
const CASE_LIMIT_MS = 2_000;
const LIMITS: RequestLimits = { ...DEFAULT_REQUEST_LIMITS, maxIdentifierLength: 64, maxRoles: 8, maxAttributeDepth: 4 };
const SKEW = 30;
const ISSUER = 'https://idp.example.test/';
const HMAC_ISSUER = 'https://hmac.example.test/';
const AUDIENCE = 'docs-api';

const b64 = (data: string | Buffer) => Buffer.from(data).toString('base64url');

interface Keys {
  readonly issuerKey: KeyObject;
  readonly attackerKey: KeyObject;
  readonly publicJwk: Record<string, unknown>;
  readonly publicPem: string;
  readonly secret: Buffer;
}

/** How a generated token is signed. */
type Signing = 'issuer' | 'attacker' | 'none' | 'hmac-with-public-jwk' | 'hmac-with-public-pem' | 'hmac-secret' | 'garbage';

function signed(keys: Keys, header: Record<string, unknown>, payload: string, how: Signing): string {
  const input = `${b64(JSON.stringify(header))}.${b64(payload)}`;
  let signature: Buffer;
  switch (how) {
    case 'issuer':
    case 'attacker':
      signature = sign('sha256', Buffer.from(input), { key: how === 'issuer' ? keys.issuerKey : keys.attackerKey, dsaEncoding: 'ieee-p1363' });
      break;
    case 'none':
      signature = Buffer.alloc(0);
      break;
    case 'hmac-with-public-jwk':
      signature = createHmac('sha256', JSON.stringify(keys.publicJwk)).update(input).digest();
      break;
    case 'hmac-with-public-pem':
      signature = createHmac('sha256', keys.publicPem).update(input).digest();
      break;
    case 'hmac-secret':
      signature = createHmac('sha256', keys.secret).update(input).digest();
      break;
    case 'garbage':
      signature = Buffer.from('not a signature at all, but long enough to look like one......');
      break;
  }
  return `${input}.${b64(signature)}`;
}

/** Is this what the issuer really signed, with an algorithm it accepts? */
function authentic(header: Record<string, unknown>, payload: Record<string, unknown> | undefined, how: Signing): boolean {
  if (how === 'issuer') return header.alg === 'ES256' && payload?.iss === ISSUER && (header.kid === undefined || header.kid === 'k1');
  if (how === 'hmac-secret') return header.alg === 'HS256' && payload?.iss === HMAC_ISSUER;
  return false;
}

function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depthOf(c)), 0);
}

/** What a correct verifier may accept: the reference checks, written out independently. */
function claimsAcceptable(payload: Record<string, unknown>, nowSeconds: number): boolean {
  const { exp, nbf, iat, aud, sub } = payload;
  if (typeof exp !== 'number' || exp <= nowSeconds - SKEW) return false;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSeconds + SKEW)) return false;
  if (iat !== undefined && (typeof iat !== 'number' || iat > nowSeconds + SKEW)) return false;
  if (!(aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE)))) return false;
  return typeof sub === 'string' && sub !== '';
}

function expectWithinLimits(result: TokenResult): void {
  if (!result.ok) return;
  const s = result.subject;
  expect(s.id.length).to.be.within(1, LIMITS.maxIdentifierLength);
  expect(s.roles.length).to.be.at.most(LIMITS.maxRoles);
  for (const r of s.roles) expect(r.length).to.be.within(1, LIMITS.maxIdentifierLength);
  // the attributes map itself is level 1
  expect(depthOf(s.attributes)).to.be.at.most(LIMITS.maxAttributeDepth);
}

async function verifyTimed(verifier: TokenVerifier, token: string): Promise<TokenResult> {
  const started = Date.now();
  const result = await verifier.verify(token);
  expect(Date.now() - started, 'time to verify one token').to.be.below(CASE_LIMIT_MS);
  return result;
}

/** Nested JSON of a given depth, built as text (generators nest far less deeply). */
const nested = (depth: number, open: string, close: string, leaf: string) => `${open.repeat(depth)}${leaf}${close.repeat(depth)}`;

describe('fuzz: subject token verifier', function () {
  this.timeout(120_000);
  let dir: string;
  let keys: Keys;
  let verifier: TokenVerifier;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-fuzz-tokens-'));
    const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicJwk = { ...(issuer.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: 'k1', alg: 'ES256', use: 'sig' };
    keys = { issuerKey: issuer.privateKey, attackerKey: attacker.privateKey, publicJwk, publicPem: issuer.publicKey.export({ format: 'pem', type: 'spki' }) as string, secret: Buffer.alloc(32, 7) };
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [publicJwk] }));
    writeFileSync(path.join(dir, 'secret'), keys.secret);
    const common = { audiences: [AUDIENCE], clockSkewSeconds: SKEW, subjectType: 'user', claims: { subject: 'sub', roles: 'roles', attributes: { dept: 'dept', profile: 'profile', nested: 'a.b' } } };
    const config: TokensConfig = {
      issuers: [
        { ...common, issuer: ISSUER, keys: { kind: 'jwks-file', file: path.join(dir, 'jwks.json') }, algorithms: [...ASYMMETRIC_ALGORITHMS] } as IssuerConfig,
        { ...common, issuer: HMAC_ISSUER, keys: { kind: 'secret-file', file: path.join(dir, 'secret') }, algorithms: ['HS256'] } as IssuerConfig,
      ],
    };
    verifier = new TokenVerifier(config, LIMITS, () => undefined, 60_000);
  });

  after(() => {
    verifier?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const now = () => Math.floor(Date.now() / 1000);
  const time = fc.oneof(
    fc.integer({ min: -3600, max: 3600 }).map((d) => ({ relative: d })),
    fc.constantFrom<unknown>('tomorrow', null, true, [1], {}, 1e308, -1e308, 0),
  );
  const text = (max: number) => fc.oneof(fc.string({ maxLength: max }), fc.string({ unit: 'binary', maxLength: max }));
  const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 6 });
  const header = fc.record(
    {
      alg: fc.oneof(fc.constantFrom('ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'HS256', 'HS384', 'none', 'None', 'NONE', ''), text(8)),
      kid: fc.oneof(fc.constantFrom('k1', 'k2', ''), text(10), fc.integer()),
      typ: fc.oneof(fc.constant('JWT'), text(6)),
      crit: fc.constantFrom(['b64'], ['exp'], []),
      b64: fc.boolean(),
      jku: fc.constant('http://attacker.example/jwks.json'),
      jwk: fc.constant({ kty: 'oct', k: 'c2VjcmV0' }),
    },
    { requiredKeys: ['alg'] },
  );
  const claims = fc.record(
    {
      iss: fc.oneof(fc.constantFrom(ISSUER, HMAC_ISSUER, 'https://evil.example.test/', ''), text(20), fc.integer()),
      aud: fc.oneof(fc.constantFrom<unknown>(AUDIENCE, [AUDIENCE, 'other'], 'other', [], [[AUDIENCE]]), text(10)),
      sub: fc.oneof(text(80), fc.constantFrom<unknown>('alice', '', null, 42, ['alice'], 'x'.repeat(100_000))),
      exp: time,
      nbf: time,
      iat: time,
      roles: fc.oneof(fc.array(fc.oneof(text(70), fc.integer(), fc.constant(null)), { maxLength: 20 }), text(60), json),
      dept: json,
      profile: fc.oneof(json, fc.integer({ min: 1, max: 3000 }).map((d) => ({ raw: nested(d, '{"x":', '}', '1') }))),
      a: fc.oneof(json, fc.constant({ b: { c: { d: { e: { f: 1 } } } } })),
      extra: json,
    },
    { requiredKeys: [] },
  );
  const signing = fc.constantFrom<Signing>('issuer', 'issuer', 'attacker', 'none', 'hmac-with-public-jwk', 'hmac-with-public-pem', 'hmac-secret', 'garbage');

  /** The payload text: raw JSON for `{raw}` placeholders (deep nesting), times made relative to now. */
  function payloadText(c: Record<string, unknown>): { text: string; parsed: Record<string, unknown> | undefined } {
    const t = now();
    const out: Record<string, unknown> = {};
    const raws: [string, string][] = [];
    for (const [k, v] of Object.entries(c)) {
      if (v && typeof v === 'object' && 'relative' in (v as object)) out[k] = t + (v as { relative: number }).relative;
      else if (v && typeof v === 'object' && 'raw' in (v as object)) raws.push([k, (v as { raw: string }).raw]);
      else out[k] = v;
    }
    let text = JSON.stringify(out);
    for (const [k, raw] of raws) text = `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${JSON.stringify(k)}:${raw}}`;
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    return { text, parsed };
  }

  it('generated tokens: never throws, never accepts what the issuer did not sign or what the reference refuses, never a subject beyond limits', async () => {
    await fc.assert(
      fc.asyncProperty(header, claims, signing, async (h, c, how) => {
        const { text, parsed } = payloadText(c);
        const token = signed(keys, h, text, how);
        const result = await verifyTimed(verifier, token);
        if (result.ok) {
          expect(authentic(h, parsed, how), `accepted a token signed by "${how}" with alg ${String(h.alg)}`).to.equal(true);
          expect(claimsAcceptable(parsed!, now()), `accepted claims the reference refuses: ${text.slice(0, 300)}`).to.equal(true);
          expect(result.subject.id).to.equal(parsed!.sub);
          expect(result.issuer).to.equal(parsed!.iss);
        }
        expectWithinLimits(result);
      }),
      { numRuns: RUNS },
    );
  });

  /**
   * A valid token with a few things changed, each near what decides acceptance (times a few
   * seconds either side of the skew, the other key, another algorithm, a claim of another type),
   * so both answers occur and each acceptance is checked against the reference.
   */
  const nearBoundary = fc.constantFrom(-40, -33, -27, -20, 0, 20, 27, 33, 40);
  const perturbation = fc.oneof(
    { arbitrary: fc.record({ field: fc.constantFrom('exp', 'nbf', 'iat'), value: nearBoundary.map((d) => ({ relative: d })) }), weight: 6 },
    fc.record({ field: fc.constantFrom('exp', 'nbf', 'iat'), value: fc.constantFrom<unknown>('soon', null, [1], {}, true) }),
    fc.record({ field: fc.constant('exp'), value: fc.constant(undefined) }),
    fc.record({ field: fc.constant('iss'), value: fc.constantFrom<unknown>(HMAC_ISSUER, 'https://evil.example.test/', `${ISSUER} `, ISSUER.toUpperCase(), 7) }),
    fc.record({ field: fc.constant('aud'), value: fc.constantFrom<unknown>('other', [], ['other', AUDIENCE], [[AUDIENCE]], `${AUDIENCE} `, null) }),
    fc.record({ field: fc.constant('sub'), value: fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom<unknown>('', null, 1, ['alice'], 'x'.repeat(65))) }),
    fc.record({ field: fc.constant('roles'), value: fc.oneof(fc.array(fc.string({ maxLength: 70 }), { maxLength: 12 }), fc.string({ maxLength: 100 }), json) }),
    fc.record({ field: fc.constantFrom('dept', 'profile', 'a'), value: fc.oneof(json, fc.integer({ min: 1, max: 8 }).map((d) => JSON.parse(nested(d, '{"x":', '}', '1')) as unknown)) }),
    fc.record({ field: fc.constant('header.alg'), value: fc.constantFrom<unknown>('ES384', 'RS256', 'HS256', 'none', 'es256', '') }),
    fc.record({ field: fc.constant('header.kid'), value: fc.constantFrom<unknown>('k2', '', 1, undefined) }),
    fc.record({ field: fc.constant('header.crit'), value: fc.constantFrom<unknown>(['exp'], ['b64'], 'x') }),
    fc.record({ field: fc.constant('signing'), value: fc.constantFrom<Signing>('attacker', 'none', 'hmac-with-public-jwk', 'hmac-with-public-pem', 'hmac-secret', 'garbage') }),
  );

  it('nearly valid tokens: every acceptance is authentic, passes the reference checks, and stays within limits; both answers occur', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(perturbation, { maxLength: 3 }), async (changes) => {
        const h: Record<string, unknown> = { alg: 'ES256', kid: 'k1', typ: 'JWT' };
        const c: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', roles: ['employee'], iat: { relative: 0 }, exp: { relative: 300 } };
        let how: Signing = 'issuer';
        for (const { field, value } of changes) {
          if (field === 'signing') how = value as Signing;
          else if (field.startsWith('header.')) h[field.slice(7)] = value;
          else c[field] = value;
        }
        const { text, parsed } = payloadText(c);
        const result = await verifyTimed(verifier, signed(keys, h, text, how));
        if (result.ok) {
          accepted++;
          expect(authentic(h, parsed, how), `accepted a token signed by "${how}" with header ${JSON.stringify(h)}`).to.equal(true);
          expect(claimsAcceptable(parsed!, now()), `accepted claims the reference refuses: ${text.slice(0, 300)}`).to.equal(true);
          expect(result.subject.id).to.equal(parsed!.sub);
        } else refused++;
        expectWithinLimits(result);
      }),
      { numRuns: RUNS },
    );
    expect(accepted, 'some nearly valid tokens are accepted').to.be.greaterThan(0);
    expect(refused, 'some are refused').to.be.greaterThan(0);
  });

  it('valid tokens are accepted (the properties above are not met by refusing everything)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 60 }), fc.array(fc.string({ minLength: 1, maxLength: 30 }), { maxLength: 8 }), async (sub, roles) => {
        const t = now();
        const token = signed(keys, { alg: 'ES256', kid: 'k1', typ: 'JWT' }, JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub, roles, iat: t, exp: t + 300 }), 'issuer');
        const result = await verifyTimed(verifier, token);
        expect(result.ok, JSON.stringify(result)).to.equal(true);
        if (result.ok) expect(result.subject).to.deep.include({ id: sub, roles });
      }),
      { numRuns: Math.max(20, Math.floor(RUNS / 4)) },
    );
  });

  it('mutated valid tokens: never accepted unless header and payload are exactly what was signed', async () => {
    const t = now();
    const original = signed(keys, { alg: 'ES256', kid: 'k1' }, JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', roles: ['employee'], iat: t, exp: t + 3600 }), 'issuer');
    const signedPart = original.slice(0, original.lastIndexOf('.'));
    const edit = fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('replace', 'delete', 'insert', 'truncate', 'swap-dots'),
      char: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u0000%'.split('')),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        let token = original;
        for (const e of edits) {
          const i = e.at % (token.length + 1);
          if (e.kind === 'replace') token = token.slice(0, i) + e.char + token.slice(i + 1);
          else if (e.kind === 'delete') token = token.slice(0, i) + token.slice(i + 1);
          else if (e.kind === 'insert') token = token.slice(0, i) + e.char + token.slice(i);
          else if (e.kind === 'truncate') token = token.slice(0, i);
          else token = token.split('.').reverse().join('.');
        }
        const result = await verifyTimed(verifier, token);
        // the signature segment may be re-encoded to the same bytes; the signed part never changes
        if (result.ok) expect(token.slice(0, token.lastIndexOf('.'))).to.equal(signedPart);
        expectWithinLimits(result);
      }),
      { numRuns: RUNS },
    );
  });

  it('arbitrary strings: never throw, never accepted', async () => {
    const parts = fc.oneof(fc.base64String({ maxLength: 60 }), fc.string({ maxLength: 40 }), fc.constantFrom('eyJhbGciOiJub25lIn0', 'eyJ9', '', '==', 'e30'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 200 }), fc.array(parts, { minLength: 1, maxLength: 5 }).map((p) => p.join('.'))), async (token) => {
        const result = await verifyTimed(verifier, token);
        expect(result.ok).to.equal(false);
      }),
      { numRuns: RUNS },
    );
  });
});
