import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig, TokensConfig } from '../config/schema.js';
import type { RequestLimits } from '../engine/limits.js';
import { validateSubject } from '../engine/validate.js';
import type { Subject } from '../engine/request.js';
import { subjectFromClaims } from './claims.js';

/** Why a token was not accepted; each maps to an RFC 6750 error description. */
export type TokenProblem =
  | 'missing'
  | 'malformed'
  | 'unknown_issuer'
  | 'bad_signature'
  | 'algorithm_not_allowed'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'wrong_audience'
  | 'missing_claim'
  | 'keys_unavailable';

export const TOKEN_PROBLEM_TEXT: Record<TokenProblem, string> = {
  missing: 'a bearer token is required',
  malformed: 'the token is malformed',
  unknown_issuer: 'the token issuer is not trusted',
  bad_signature: 'the token signature is invalid',
  algorithm_not_allowed: 'the token algorithm is not allowed',
  unknown_key: 'the token signing key is unknown',
  expired: 'the token has expired',
  not_yet_valid: 'the token is not valid yet',
  issued_in_future: 'the token was issued in the future',
  wrong_audience: 'the token is not meant for this service',
  missing_claim: 'the token lacks a required claim',
  keys_unavailable: 'the token signing keys could not be fetched',
};

export type TokenResult = { readonly ok: true; readonly subject: Subject; readonly issuer: string } | { readonly ok: false; readonly problem: TokenProblem };

/** A JWKS held in a local file: re-read when the file changes; a broken file keeps the last good keys. */
class FileKeySet {
  private getKey: JWTVerifyGetKey;

  constructor(
    private readonly file: string,
    pollMs: number,
    private readonly onError: (message: string) => void,
  ) {
    this.getKey = FileKeySet.read(file);
    watchFile(file, { interval: pollMs, persistent: false }, () => this.reload());
  }

  private static read(file: string): JWTVerifyGetKey {
    const json: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
  }

  private reload(): void {
    try {
      this.getKey = FileKeySet.read(this.file);
    } catch (err) {
      this.onError(`JWKS file ${this.file} could not be reloaded; keeping the previous keys (${(err as Error).message})`);
    }
  }

  readonly resolve: JWTVerifyGetKey = (header, token) => this.getKey(header, token);

  close(): void {
    unwatchFile(this.file);
  }
}

interface Verifier {
  readonly config: IssuerConfig;
  readonly key: JWTVerifyGetKey | Uint8Array;
  readonly requiredClaims: string[];
}

/** Classifies jose's errors; never echoes token content. */
function problemOf(err: unknown): TokenProblem {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    // a claim of the wrong type ("exp": "tomorrow") is a malformed token, not a missing or early one
    if (err.reason === 'invalid') return 'malformed';
    if (err.claim === 'aud') return 'wrong_audience';
    if (err.claim === 'iss') return 'unknown_issuer';
    if (err.claim === 'nbf' || err.claim === 'iat') return 'not_yet_valid';
    return 'missing_claim';
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'algorithm_not_allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return 'unknown_key';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'keys_unavailable';
  if (err instanceof errors.JOSEError) return 'malformed';
  // fetch failures of a remote JWKS surface as plain errors
  return 'keys_unavailable';
}

/**
 * Verifies subject tokens (JWTs) against the configured issuers and maps their claims to a
 * Subject. The issuer is picked by the token's `iss` (read before verification, used only to pick
 * the keys), then signature, algorithm, `iss`, `aud`, `exp`/`nbf` (with the issuer's clock skew)
 * are checked by jose, and `iat` (not in the future beyond the skew) here. Tokens are never logged or kept.
 */
export class TokenVerifier {
  private readonly byIssuer = new Map<string, Verifier>();
  private readonly files: FileKeySet[] = [];

  constructor(
    config: TokensConfig,
    private readonly limits: RequestLimits,
    onError: (message: string) => void = () => undefined,
    filePollMs = 1_000,
  ) {
    for (const issuer of config.issuers) {
      const keys = issuer.keys;
      let key: JWTVerifyGetKey | Uint8Array;
      if (keys.kind === 'jwks-url') {
        key = createRemoteJWKSet(new URL(keys.url), { cacheMaxAge: keys.cacheMaxAgeMs, cooldownDuration: keys.cooldownMs, timeoutDuration: keys.timeoutMs });
      } else if (keys.kind === 'jwks-file') {
        const set = new FileKeySet(keys.file, filePollMs, onError);
        this.files.push(set);
        key = set.resolve;
      } else {
        key = new Uint8Array(readFileSync(keys.file));
        if (key.length < 32) throw new Error(`tokens: secret file ${keys.file} holds ${key.length} bytes; an HMAC secret needs at least 32`);
      }
      this.byIssuer.set(issuer.issuer, { config: issuer, key, requiredClaims: ['exp'] });
    }
  }

  /** Checks every configured key source once at start (local files parse; throws with the file). */
  static validateSources(config: TokensConfig): string[] {
    const problems: string[] = [];
    for (const [i, issuer] of config.issuers.entries()) {
      const k = issuer.keys;
      if (k.kind === 'jwks-url') continue;
      try {
        const text = readFileSync(k.file, k.kind === 'jwks-file' ? 'utf8' : undefined);
        if (k.kind === 'jwks-file') createLocalJWKSet(JSON.parse(text as string) as Parameters<typeof createLocalJWKSet>[0]);
      } catch (err) {
        problems.push(`tokens.issuers[${i}].${k.kind === 'jwks-file' ? 'jwksFile' : 'secretFile'}: ${k.file}: ${(err as Error).message}`);
      }
    }
    return problems;
  }

  async verify(token: string): Promise<TokenResult> {
    if (!token) return { ok: false, problem: 'missing' };
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      return { ok: false, problem: 'malformed' };
    }
    const verifier = typeof unverified.iss === 'string' ? this.byIssuer.get(unverified.iss) : undefined;
    if (!verifier) return { ok: false, problem: 'unknown_issuer' };
    const { config } = verifier;
    let payload: JWTPayload;
    try {
      const options = {
        issuer: config.issuer,
        audience: [...config.audiences],
        algorithms: [...config.algorithms],
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: verifier.requiredClaims,
      };
      const result = verifier.key instanceof Uint8Array ? await jwtVerify(token, verifier.key, options) : await jwtVerify(token, verifier.key, options);
      payload = result.payload;
    } catch (err) {
      return { ok: false, problem: problemOf(err) };
    }
    // jose checks iat only against a maximum age; a token stamped in the future beyond the skew
    // was minted by a broken or forged clock and is not accepted.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + config.clockSkewSeconds) return { ok: false, problem: 'issued_in_future' };
    const subject = subjectFromClaims(payload, config);
    if (!subject) return { ok: false, problem: 'missing_claim' };
    return this.withinLimits(subject) ? { ok: true, subject, issuer: config.issuer } : { ok: false, problem: 'malformed' };
  }

  /** Claims obey the same request limits, checked by the same validator, as a subject sent in the clear. */
  private withinLimits(subject: Subject): boolean {
    try {
      validateSubject(subject, 'subject', this.limits);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** The token of an `Authorization: Bearer <token>` header value; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^\s*bearer\s+([^\s]+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
