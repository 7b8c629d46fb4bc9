import type { IncomingHttpHeaders } from 'node:http';

export const EVALUATION_PATH = '/access/v1/evaluation';
export const EVALUATIONS_PATH = '/access/v1/evaluations';
export const METADATA_PATH = '/.well-known/authzen-configuration';

/** host, host:port, [v6]:port: what may stand in a URL's authority (anything else is not echoed). */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?$/;

/**
 * The PDP's base URL for one request: http.publicBaseUrl when configured, else the scheme served
 * and the authority the client used (Host, or :authority on HTTP/2), else the listening address.
 */
export function baseUrlFor(headers: IncomingHttpHeaders, publicBaseUrl: string | undefined, secure: boolean, listenAuthority: string): string {
  if (publicBaseUrl) return publicBaseUrl;
  const given = headers[':authority'] ?? headers.host;
  const authority = typeof given === 'string' && AUTHORITY.test(given) ? given.toLowerCase() : listenAuthority;
  return `${secure ? 'https' : 'http'}://${authority}`;
}

/**
 * The AuthZEN PDP metadata document (`/.well-known/authzen-configuration`): the identifier and the
 * endpoints served. Search endpoints are not served, so they are not listed (absent = not supported).
 */
export function metadataDocument(baseUrl: string): Record<string, string> {
  return {
    policy_decision_point: baseUrl,
    access_evaluation_endpoint: `${baseUrl}${EVALUATION_PATH}`,
    access_evaluations_endpoint: `${baseUrl}${EVALUATIONS_PATH}`,
  };
}

/**
 * Paths the metadata answers on: the well-known URI, and for a base URL with a path (a PDP behind a
 * path-routing proxy) the well-known URI with that path appended, as RFC 8615 derives it.
 */
export function metadataPaths(publicBaseUrl: string | undefined): string[] {
  const path = publicBaseUrl ? new URL(publicBaseUrl).pathname.replace(/\/+$/, '') : '';
  return path ? [METADATA_PATH, `${METADATA_PATH}${path}`] : [METADATA_PATH];
}
