import { parseAllowlistEntry } from '../auth/callers.js';
import type { GatewayConfig, IssuerConfig, KeySource, TlsConfig, TokensConfig } from './schema.js';

type Json = Record<string, unknown>;

/** Asymmetric JWS algorithms accepted by default (never "none", never HMAC unless asked for). */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

export const TLS_KEYS = ['certFile', 'keyFile', 'clientCaFile', 'requireClientCert', 'reloadIntervalMs', 'allowedCallers'];
export const TOKENS_KEYS = ['issuers'];
export const GATEWAY_KEYS = ['routesFile'];
const ISSUER_KEYS = ['issuer', 'audiences', 'jwksUrl', 'jwksFile', 'secretFile', 'algorithms', 'clockSkewSeconds', 'claims', 'subjectType', 'jwksCacheMaxAgeSeconds', 'jwksCooldownSeconds', 'jwksTimeoutMs', 'allowInsecureJwksUrl'];
const CLAIM_KEYS = ['subject', 'roles', 'attributes'];

function isMap(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Reads one optional section with typed accessors, pushing every problem found onto `problems`. */
export class Section {
  constructor(
    readonly name: string,
    readonly obj: Json,
    readonly problems: string[],
  ) {}

  unknownKeys(allowed: readonly string[]): void {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) this.problems.push(`${this.name}.${k}: unknown setting (known: ${allowed.join(', ')})`);
    }
  }

  optString(key: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') {
      this.problems.push(`${this.name}.${key}: must be a string (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v;
  }

  string(key: string, hint: string): string {
    const v = this.optString(key);
    if (v === undefined && !this.problems.some((p) => p.startsWith(`${this.name}.${key}:`))) this.problems.push(`${this.name}.${key}: is required (${hint})`);
    return v ?? '';
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    this.problems.push(`${this.name}.${key}: must be true or false (got ${JSON.stringify(v)})`);
    return fallback;
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const raw = this.obj[key];
    if (raw === undefined) return fallback;
    const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${this.name}.${key}: must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return n;
  }

  strings(key: string): string[] {
    const v = this.obj[key];
    if (v === undefined || v === null) return [];
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '')) return v as string[];
    this.problems.push(`${this.name}.${key}: must be a list of non-empty strings`);
    return [];
  }
}

export function section(raw: Json, name: string, problems: string[]): Section | undefined {
  const v = raw[name];
  if (v === undefined || v === null) return undefined;
  if (!isMap(v)) {
    problems.push(`${name}: must be a mapping`);
    return undefined;
  }
  return new Section(name, v, problems);
}

/** tls: server certificate, client CAs (mTLS), caller allowlist. Absent or without certFile = plaintext. */
export function validateTls(raw: Json, problems: string[]): TlsConfig | undefined {
  const s = section(raw, 'tls', problems);
  if (!s || Object.keys(s.obj).length === 0) return undefined;
  s.unknownKeys(TLS_KEYS);
  const clientCaFile = s.optString('clientCaFile');
  const config: TlsConfig = {
    certFile: s.string('certFile', 'PEM file of the server certificate'),
    keyFile: s.string('keyFile', 'PEM file of the server private key'),
    clientCaFile,
    requireClientCert: s.bool('requireClientCert', clientCaFile !== undefined),
    reloadIntervalMs: s.int('reloadIntervalMs', 5_000, 100, 3_600_000),
    allowedCallers: s.strings('allowedCallers'),
  };
  if (config.requireClientCert && !clientCaFile) problems.push('tls.requireClientCert: needs tls.clientCaFile (the CAs that sign client certificates)');
  if (config.allowedCallers.length > 0 && !clientCaFile) problems.push('tls.allowedCallers: needs tls.clientCaFile: callers are identified by their client certificates');
  for (const c of config.allowedCallers) {
    const parsed = parseAllowlistEntry(c);
    if (typeof parsed === 'string') problems.push(`tls.allowedCallers: ${parsed}`);
  }
  return config;
}

function claimsOf(s: Section, where: string): IssuerConfig['claims'] {
  const v = s.obj.claims;
  if (v === undefined || v === null) return { subject: 'sub', roles: undefined, attributes: {} };
  if (!isMap(v)) {
    s.problems.push(`${where}.claims: must be a mapping of subject, roles and attributes to claim names`);
    return { subject: 'sub', roles: undefined, attributes: {} };
  }
  const c = new Section(`${where}.claims`, v, s.problems);
  c.unknownKeys(CLAIM_KEYS);
  const attributes: Record<string, string> = {};
  const attrs = v.attributes;
  if (attrs !== undefined && attrs !== null) {
    if (!isMap(attrs) || !Object.values(attrs).every((x) => typeof x === 'string' && x !== '')) {
      s.problems.push(`${where}.claims.attributes: must map attribute names to claim names, e.g. {department: dept}`);
    } else Object.assign(attributes, attrs);
  }
  return { subject: c.optString('subject') ?? 'sub', roles: c.optString('roles'), attributes };
}

function issuerOf(v: unknown, i: number, problems: string[]): IssuerConfig | undefined {
  const where = `tokens.issuers[${i}]`;
  if (!isMap(v)) {
    problems.push(`${where}: must be a mapping with issuer, audiences and one of jwksUrl, jwksFile`);
    return undefined;
  }
  const s = new Section(where, v, problems);
  s.unknownKeys(ISSUER_KEYS);
  const issuer = s.string('issuer', 'the exact "iss" of its tokens');
  const audiences = s.strings('audiences');
  if (audiences.length === 0) problems.push(`${where}.audiences: at least one audience is required (tokens for other services must not be accepted)`);
  const sources = (['jwksUrl', 'jwksFile', 'secretFile'] as const).filter((k) => s.optString(k) !== undefined);
  let keys: KeySource = { kind: 'jwks-file', file: '' };
  if (sources.length !== 1) {
    problems.push(`${where}: set exactly one of jwksUrl, jwksFile or secretFile (got ${sources.length === 0 ? 'none' : sources.join(', ')})`);
  } else if (sources[0] === 'jwksUrl') {
    const url = s.optString('jwksUrl')!;
    const allowHttp = s.bool('allowInsecureJwksUrl', false);
    if (!/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) problems.push(`${where}.jwksUrl: "${url}" must be an http(s) URL`);
    else if (url.startsWith('http://') && !allowHttp) {
      problems.push(
        `${where}.jwksUrl: "${url}" is plain HTTP: whoever can alter the traffic can replace the signing keys and mint tokens; use https://, ` +
          `or set ${where}.allowInsecureJwksUrl: true if the keys come over a link you trust (e.g. a sidecar on 127.0.0.1)`,
      );
    }
    keys = {
      kind: 'jwks-url',
      url,
      cacheMaxAgeMs: s.int('jwksCacheMaxAgeSeconds', 600, 0, 86_400) * 1000,
      cooldownMs: s.int('jwksCooldownSeconds', 30, 0, 3_600) * 1000,
      timeoutMs: s.int('jwksTimeoutMs', 5_000, 100, 60_000),
    };
  } else {
    keys = { kind: sources[0] === 'jwksFile' ? 'jwks-file' : 'secret-file', file: s.optString(sources[0]!)! };
  }
  if (keys.kind !== 'jwks-url' && v.allowInsecureJwksUrl !== undefined) problems.push(`${where}.allowInsecureJwksUrl: only applies to jwksUrl; remove it`);
  const hmac = keys.kind === 'secret-file';
  const algorithms = s.strings('algorithms');
  const chosen = algorithms.length > 0 ? algorithms : hmac ? [] : [...ASYMMETRIC_ALGORITHMS];
  if (hmac && algorithms.length === 0) problems.push(`${where}.algorithms: a secretFile issuer must list its HMAC algorithms explicitly, e.g. [HS256]`);
  for (const alg of chosen) {
    if (alg.toLowerCase() === 'none') problems.push(`${where}.algorithms: "none" is never accepted (unsigned tokens prove nothing)`);
    else if (HMAC_ALGORITHMS.includes(alg) && !hmac) problems.push(`${where}.algorithms: ${alg} needs a secretFile; HMAC keys are never taken from a JWKS (no HS/RS confusion)`);
    else if (!HMAC_ALGORITHMS.includes(alg) && hmac) problems.push(`${where}.algorithms: ${alg} is not an HMAC algorithm; a secretFile issuer accepts HS256, HS384, HS512 only`);
    else if (!HMAC_ALGORITHMS.includes(alg) && !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) problems.push(`${where}.algorithms: unknown algorithm "${alg}" (known: ${[...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS].join(', ')})`);
  }
  const subjectType = s.optString('subjectType') ?? 'user';
  return { issuer, audiences, keys, algorithms: chosen, clockSkewSeconds: s.int('clockSkewSeconds', 30, 0, 600), claims: claimsOf(s, where), subjectType };
}

/** tokens: trusted issuers of subject tokens (JWTs). Absent or no issuers = tokens are refused. */
export function validateTokens(raw: Json, problems: string[]): TokensConfig | undefined {
  const s = section(raw, 'tokens', problems);
  if (!s) return undefined;
  s.unknownKeys(TOKENS_KEYS);
  const list = s.obj.issuers;
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) {
    problems.push('tokens.issuers: must be a list of issuers');
    return undefined;
  }
  const issuers = list.map((v, i) => issuerOf(v, i, problems)).filter((x): x is IssuerConfig => x !== undefined);
  const seen = new Set<string>();
  for (const i of issuers) {
    if (seen.has(i.issuer)) problems.push(`tokens.issuers: issuer "${i.issuer}" is listed twice`);
    seen.add(i.issuer);
  }
  return issuers.length > 0 ? { issuers } : undefined;
}

/** gateway: the Envoy ext_authz service and its routes file. */
export function validateGateway(raw: Json, problems: string[]): GatewayConfig | undefined {
  const s = section(raw, 'gateway', problems);
  if (!s) return undefined;
  s.unknownKeys(GATEWAY_KEYS);
  const routesFile = s.optString('routesFile');
  return routesFile ? { routesFile } : undefined;
}
