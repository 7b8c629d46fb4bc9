import type { AttributeValue } from '../engine/request.js';
import { unsafeCharacters } from './path-characters.js';
import { CREDENTIAL_HEADERS } from './routes-file.js';

/** envoy.service.auth.v3 messages as proto-loader decodes them (camelCase, absent = undefined). */
export interface EnvoySocketAddress {
  address?: string;
  portValue?: number;
  namedPort?: string;
}
export interface EnvoyPeer {
  address?: { socketAddress?: EnvoySocketAddress; pipe?: { path?: string } };
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}
export interface EnvoyHttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  headerMap?: { headers?: { key?: string; value?: string; rawValue?: Buffer }[] };
  path?: string;
  host?: string;
  scheme?: string;
  protocol?: string;
}
export interface EnvoyCheckRequest {
  attributes?: {
    source?: EnvoyPeer;
    destination?: EnvoyPeer;
    request?: { http?: EnvoyHttpRequest };
    contextExtensions?: Record<string, string>;
  };
}

/** The HTTP request Envoy asks about, normalised once. */
export interface HttpView {
  readonly method: string;
  /** The path without the query, as sent (not decoded). */
  readonly path: string;
  /** Decoded path segments, no empty ones; undefined when the path is not acceptable (see `problem`). */
  readonly segments: readonly string[] | undefined;
  readonly problem: string | undefined;
  /** Characters found inside decoded segments that a route must allow (SEGMENT_* bits; 0 = none). */
  readonly unsafe: number;
  readonly query: string;
  readonly host: string;
  readonly scheme: string;
  /** Lower-cased header names; repeated headers joined with ",". */
  readonly headers: Readonly<Record<string, string>>;
  readonly id: string;
  readonly source: EnvoyPeer | undefined;
  readonly destination: EnvoyPeer | undefined;
  readonly extensions: Readonly<Record<string, string>> | undefined;
}

function headersOf(http: EnvoyHttpRequest): Record<string, string> {
  if (http.headers && Object.keys(http.headers).length > 0) return http.headers;
  const out: Record<string, string> = {};
  for (const h of http.headerMap?.headers ?? []) {
    if (!h.key) continue;
    const key = h.key.toLowerCase();
    const value = h.value || (h.rawValue ? Buffer.from(h.rawValue).toString('utf8') : '');
    out[key] = key in out ? `${out[key]},${value}` : value;
  }
  return out;
}

/**
 * Splits and percent-decodes the path; refuses dot segments and empty segments (an unnormalised
 * path). `unsafe` says which of "/", "\\", NUL and control characters decoded segments hold; the
 * caller refuses them unless the matched route allows them.
 */
export function pathSegments(path: string): { segments?: string[]; problem?: string; unsafe?: number } {
  if (!path.startsWith('/')) return { problem: 'the request path must start with "/"' };
  if (path === '/') return { segments: [], unsafe: 0 };
  const raw = (path.endsWith('/') ? path.slice(0, -1) : path).slice(1).split('/');
  const segments: string[] = new Array(raw.length);
  let unsafe = 0;
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i]!;
    if (s === '') return { problem: 'the request path has an empty segment ("//")' };
    let decoded = s;
    if (s.includes('%')) {
      try {
        decoded = decodeURIComponent(s);
      } catch {
        return { problem: 'the request path has an invalid percent-encoding' };
      }
    }
    if (decoded === '.' || decoded === '..') return { problem: 'the request path has a "." or ".." segment' };
    unsafe |= unsafeCharacters(decoded);
    segments[i] = decoded;
  }
  return { segments, unsafe };
}

/** Reads the HTTP request out of an ext_authz CheckRequest; undefined when it carries none. */
export function httpView(msg: EnvoyCheckRequest): HttpView | undefined {
  const attrs = msg.attributes;
  const http = attrs?.request?.http;
  if (!http) return undefined;
  const headers = headersOf(http);
  const target = http.path || headers[':path'] || '';
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const { segments, problem, unsafe } = pathSegments(path);
  return {
    method: (http.method || headers[':method'] || '').toUpperCase(),
    path,
    segments,
    problem,
    unsafe: unsafe ?? 0,
    query: q === -1 ? '' : target.slice(q + 1),
    host: http.host || headers[':authority'] || headers.host || '',
    scheme: http.scheme || headers[':scheme'] || '',
    headers,
    id: http.id || headers['x-request-id'] || '',
    source: attrs.source,
    destination: attrs.destination,
    extensions: attrs.contextExtensions,
  };
}

function peerContext(peer: EnvoyPeer | undefined): Record<string, AttributeValue> | undefined {
  if (!peer) return undefined;
  const out: Record<string, AttributeValue> = {};
  const sock = peer.address?.socketAddress;
  if (sock?.address) out.address = sock.address;
  if (sock?.portValue !== undefined) out.port = sock.portValue;
  if (peer.address?.pipe?.path) out.pipe = peer.address.pipe.path;
  if (peer.principal) out.principal = peer.principal;
  if (peer.service) out.service = peer.service;
  if (peer.labels && Object.keys(peer.labels).length > 0) out.labels = peer.labels;
  return out;
}

/** Query parameters: the first value of each name (repeat a name and the later values are ignored). */
export function queryParams(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * The decision context of an HTTP request: context.ip (the source address, which policies such as
 * common.yaml's corporate-network rule read), context.http (method, path, host, scheme, query,
 * headers without credentials), context.source and context.destination peers, context.route and
 * Envoy's context extensions.
 */
export function httpContext(view: HttpView, contextHeaders: 'all' | readonly string[], route: string): Record<string, AttributeValue> {
  const headers: Record<string, string> = {};
  if (contextHeaders === 'all') {
    for (const k in view.headers) if (k[0] !== ':' && !CREDENTIAL_HEADERS.includes(k)) headers[k] = view.headers[k]!;
  } else {
    for (const k of contextHeaders) if (k in view.headers) headers[k] = view.headers[k]!;
  }
  const context: Record<string, AttributeValue> = {
    http: { method: view.method, path: view.path, host: view.host, scheme: view.scheme, query: queryParams(view.query), headers },
    route,
  };
  const ip = view.source?.address?.socketAddress?.address;
  if (ip) context.ip = ip;
  const source = peerContext(view.source);
  if (source) context.source = source;
  const destination = peerContext(view.destination);
  if (destination) context.destination = destination;
  if (view.extensions && Object.keys(view.extensions).length > 0) context.extensions = view.extensions;
  return context;
}
