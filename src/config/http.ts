import { Section, section } from './auth.js';
import type { HttpAuthConfig, HttpConfig, TokensConfig } from './schema.js';

type Json = Record<string, unknown>;

export const HTTP_KEYS = ['listen', 'publicBaseUrl', 'rolesProperty', 'headersTimeoutMs', 'requestTimeoutMs', 'idleTimeoutMs', 'maxConnections', 'maxConcurrentStreams', 'auth'];
const AUTH_KEYS = ['bearerTokenFile', 'jwtIssuers'];

/** Defaults of the http section (docs/operations.md lists them). */
export const HTTP_DEFAULTS = {
  rolesProperty: 'roles',
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
  maxConnections: 1024,
  maxConcurrentStreams: 100,
} as const;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$/;

/**
 * The base URL as metadata publishes it: http(s), no credentials, query or fragment, no trailing
 * slash. Returns a problem text instead when the value cannot be one.
 */
export function normalizeBaseUrl(value: string): { url: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: `"${value}" is not a URL; use e.g. https://pdp.example.com` };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: `"${value}" must be an https:// (or http://) URL` };
  if (url.username || url.password) return { problem: `"${value}" must not hold credentials` };
  if (url.search || url.hash || value.includes('?') || value.includes('#')) return { problem: `"${value}" must have no query or fragment (AuthZEN metadata)` };
  return { url: `${url.origin}${url.pathname.replace(/\/+$/, '')}` };
}

function authOf(s: Section, tokens: TokensConfig | undefined): HttpAuthConfig {
  const v = s.obj.auth;
  if (v === undefined || v === null) return { bearerTokenFile: undefined, jwtIssuers: [] };
  if (typeof v !== 'object' || Array.isArray(v)) {
    s.problems.push('http.auth: must be a mapping with bearerTokenFile and/or jwtIssuers');
    return { bearerTokenFile: undefined, jwtIssuers: [] };
  }
  const a = new Section('http.auth', v as Json, s.problems);
  a.unknownKeys(AUTH_KEYS);
  const jwtIssuers = a.strings('jwtIssuers');
  const known = new Set(tokens?.issuers.map((i) => i.issuer) ?? []);
  for (const issuer of jwtIssuers) {
    if (!known.has(issuer)) s.problems.push(`http.auth.jwtIssuers: "${issuer}" is not one of tokens.issuers; configure the issuer (its keys and audiences) there first`);
  }
  return { bearerTokenFile: a.optString('bearerTokenFile'), jwtIssuers };
}

/** http: the AuthZEN API over HTTP. Absent or without `listen` = not served. */
export function validateHttp(raw: Json, problems: string[], tokens: TokensConfig | undefined): HttpConfig | undefined {
  const s = section(raw, 'http', problems);
  if (!s) return undefined;
  s.unknownKeys(HTTP_KEYS);
  const listen = s.optString('listen');
  if (listen === undefined) {
    if (Object.keys(s.obj).some((k) => k !== 'listen' && HTTP_KEYS.includes(k))) problems.push('http.listen: is required for the other http settings to take effect (HOST:PORT, e.g. 127.0.0.1:8080; or --http)');
    return undefined;
  }
  if (!HOST_PORT.test(listen) || Number(listen.split(':').pop()) > 65535) problems.push(`http.listen: "${listen}" must be HOST:PORT, e.g. 127.0.0.1:8080 or [::]:8080`);
  let publicBaseUrl: string | undefined;
  const base = s.optString('publicBaseUrl');
  if (base !== undefined) {
    const n = normalizeBaseUrl(base);
    if ('problem' in n) problems.push(`http.publicBaseUrl: ${n.problem}`);
    else publicBaseUrl = n.url;
  }
  const rolesRaw = s.obj.rolesProperty;
  let rolesProperty: string | undefined = HTTP_DEFAULTS.rolesProperty;
  if (rolesRaw === '' || rolesRaw === null) rolesProperty = undefined;
  else if (rolesRaw !== undefined) rolesProperty = s.optString('rolesProperty');
  const headersTimeoutMs = s.int('headersTimeoutMs', HTTP_DEFAULTS.headersTimeoutMs, 100, 600_000);
  const requestTimeoutMs = s.int('requestTimeoutMs', HTTP_DEFAULTS.requestTimeoutMs, 100, 3_600_000);
  if (headersTimeoutMs > requestTimeoutMs) problems.push(`http.headersTimeoutMs: ${headersTimeoutMs} must not exceed http.requestTimeoutMs (${requestTimeoutMs}): the headers are part of the request`);
  return {
    listen,
    publicBaseUrl,
    rolesProperty,
    headersTimeoutMs,
    requestTimeoutMs,
    idleTimeoutMs: s.int('idleTimeoutMs', HTTP_DEFAULTS.idleTimeoutMs, 100, 3_600_000),
    maxConnections: s.int('maxConnections', HTTP_DEFAULTS.maxConnections, 1, 1_000_000),
    maxConcurrentStreams: s.int('maxConcurrentStreams', HTTP_DEFAULTS.maxConcurrentStreams, 1, 10_000),
    auth: authOf(s, tokens),
  };
}
