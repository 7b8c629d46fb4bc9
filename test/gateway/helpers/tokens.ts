/** Signing keys, a JWKS served over HTTP from the test process, and tokens as an identity provider issues them. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export const ISSUER = 'https://idp.example.test/';
export const AUDIENCE = 'docs-api';

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(kid: string, alg = 'ES256'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface TokenOptions {
  readonly issuer?: string;
  readonly audience?: string | string[];
  /** Seconds from now; negative = already expired. */
  readonly expiresIn?: number;
  readonly notBefore?: number;
  /** Seconds from now for "iat" (default 0). */
  readonly issuedAt?: number;
}

/** A JWT signed with `key`, claims as the tests' issuer maps them (sub, roles, dept, clearance). */
export async function signToken(key: SigningKey, claims: JWTPayload, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setIssuedAt(now + (o.issuedAt ?? 0))
    .setExpirationTime(now + (o.expiresIn ?? 300));
  if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
  return jwt.sign(key.privateKey);
}

/** An unsigned token ("alg": "none") with otherwise valid claims. */
export function unsignedToken(claims: JWTPayload): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const body = base64url.encode(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 300, ...claims }));
  return `${header}.${body}.`;
}

/** The same token with its payload changed (claims merged in) and the original signature kept. */
export function tamperedToken(token: string, change: JWTPayload): string {
  const [h, p, s] = token.split('.');
  const payload = { ...JSON.parse(new TextDecoder().decode(base64url.decode(p!))), ...change };
  return `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
}

/** A JWKS endpoint on 127.0.0.1: serves `keys`, counts fetches. */
export class JwksServer {
  keys: SigningKey[] = [];
  fetches = 0;
  private readonly server = http.createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    this.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The tokens section of a Verdict config trusting this JWKS (no cooldown, so rotation is seen at once). */
export function tokensConfig(jwksUrl: string): Record<string, unknown> {
  return {
    issuers: [
      {
        issuer: ISSUER,
        audiences: [AUDIENCE],
        jwksUrl,
        // the test JWKS is served over plain HTTP on 127.0.0.1
        allowInsecureJwksUrl: true,
        jwksCooldownSeconds: 0,
        clockSkewSeconds: 5,
        claims: { subject: 'sub', roles: 'roles', attributes: { department: 'dept', clearance: 'clearance' } },
      },
    ],
  };
}
