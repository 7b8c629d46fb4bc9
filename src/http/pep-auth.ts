import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { HttpAuthConfig } from '../config/schema.js';
import { bearerToken, TOKEN_PROBLEM_TEXT, type TokenVerifier } from '../auth/tokens.js';
import { HttpError } from './errors.js';

/** Shortest shared secret accepted: as for an HMAC secret (tokens.issuers[].secretFile). */
export const MIN_SECRET_LENGTH = 32;

const REALM = 'verdict';

/** The secrets of a bearer token file: one per line, blank lines and `#` comments skipped. */
export function readSharedSecrets(file: string): Buffer[] {
  const lines = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new Error(`http.auth.bearerTokenFile: ${file} holds no token (one per line)`);
  for (const [i, l] of lines.entries()) {
    if (l.length < MIN_SECRET_LENGTH) throw new Error(`http.auth.bearerTokenFile: ${file}: the token on line ${i + 1} has ${l.length} characters; a shared secret needs at least ${MIN_SECRET_LENGTH}`);
    if (/\s/.test(l)) throw new Error(`http.auth.bearerTokenFile: ${file}: the token on line ${i + 1} contains whitespace; a bearer token cannot`);
  }
  return lines.map(digest);
}

/** Secrets are compared as SHA-256 digests: equal length, so timingSafeEqual applies to any token. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function unauthenticated(message: string, error?: string): HttpError {
  // RFC 6750 §3: no error code when no credentials were sent.
  const challenge = error ? `Bearer realm="${REALM}", error="${error}", error_description="${message}"` : `Bearer realm="${REALM}"`;
  return new HttpError(401, 'UNAUTHENTICATED', message, { 'www-authenticate': challenge });
}

/**
 * Authenticates the calling PEP by its `Authorization: Bearer` token (http.auth): a shared secret
 * from the token file (compared in constant time, against every secret), or a JWT from one of the
 * configured issuers (verified by the `tokens` issuers' keys, audiences and clock skew). The token
 * file is re-read when it changes; a file that turns unusable keeps the previous secrets.
 */
export class PepAuthenticator {
  private secrets: Buffer[] = [];
  private readonly issuers: ReadonlySet<string>;

  constructor(
    private readonly config: HttpAuthConfig,
    private readonly verifier: TokenVerifier | undefined,
    private readonly onError: (message: string) => void,
    pollMs = 1_000,
  ) {
    this.issuers = new Set(config.jwtIssuers);
    const file = config.bearerTokenFile;
    if (file) {
      this.secrets = readSharedSecrets(file);
      watchFile(file, { interval: pollMs, persistent: false }, () => {
        try {
          this.secrets = readSharedSecrets(file);
        } catch (err) {
          this.onError(`${(err as Error).message}; the previous tokens stay accepted`);
        }
      });
    }
  }

  /** True when http.auth asks for a token. */
  get enabled(): boolean {
    return this.config.bearerTokenFile !== undefined || this.issuers.size > 0;
  }

  /** Resolves when the Authorization header proves the PEP; throws a 401 HttpError otherwise. */
  async authenticate(authorization: string | undefined): Promise<void> {
    const token = bearerToken(authorization);
    if (!token) throw unauthenticated(authorization ? 'the Authorization header must be "Bearer <token>"' : 'a bearer token is required (Authorization: Bearer <token>)', authorization ? 'invalid_request' : undefined);
    if (this.secrets.length > 0) {
      const given = digest(token);
      let match = false;
      for (const s of this.secrets) match = timingSafeEqual(given, s) || match;
      if (match) return;
    }
    if (this.issuers.size > 0 && this.verifier) {
      const result = await this.verifier.verify(token);
      if (result.ok && this.issuers.has(result.issuer)) return;
      throw unauthenticated(result.ok ? 'the token issuer may not call this API (http.auth.jwtIssuers)' : TOKEN_PROBLEM_TEXT[result.problem], 'invalid_token');
    }
    throw unauthenticated('the bearer token is not accepted', 'invalid_token');
  }

  close(): void {
    if (this.config.bearerTokenFile) unwatchFile(this.config.bearerTokenFile);
  }
}
