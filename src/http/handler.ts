import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { traceParentFromHeaders } from '../service/decision-hooks.js';
import { NotReadyError } from '../service/decision-service.js';
import type { AuthzenApi, AuthzenCall } from './authzen-api.js';
import { checkBodyHeaders, readJsonBody } from './body.js';
import { errorBody, HttpError } from './errors.js';
import { baseUrlFor, EVALUATION_PATH, EVALUATIONS_PATH, metadataDocument, metadataPaths } from './metadata.js';
import type { PepAuthenticator } from './pep-auth.js';
import type { TlsCallers } from './tls-callers.js';

export type HttpRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

export interface HandlerDeps {
  readonly api: AuthzenApi;
  /** limits.maxMessageBytes */
  readonly maxBodyBytes: number;
  /** limits.maxIdentifierLength: the longest X-Request-ID recorded. */
  readonly maxRequestIdLength: number;
  /** http.requestTimeoutMs, applied to HTTP/2 request bodies (HTTP/1.1 has the server's own). */
  readonly requestTimeoutMs: number;
  readonly publicBaseUrl: string | undefined;
  readonly secure: boolean;
  /** The listening host:port, for metadata when a request names no usable Host. */
  listenAuthority(): string;
  readonly auth: PepAuthenticator | undefined;
  readonly callers: TlsCallers | undefined;
  /** Serving = a policy set is loaded and the server is not stopping (the gRPC health status). */
  serving(): boolean;
  /** Shutdown started: HTTP/1.1 answers close their connection. */
  stopping(): boolean;
  onUnexpectedError(err: unknown, path: string): void;
}

const JSON_TYPE = 'application/json';

/**
 * The HTTP request handler: routes, the edge checks (request id, mTLS allowlist, PEP token, body
 * headers and size) in that order, then the AuthZEN API; every answer is JSON. Works for node:http
 * and the HTTP/2 compatibility API alike.
 */
/** The client has gone: its HTTP/2 stream was reset or closed, or its HTTP/1.1 connection closed, before the answer. */
function clientGone(req: HttpRequest, res: HttpResponse): boolean {
  if (req.httpVersionMajor === 2) {
    const stream = (req as Http2ServerRequest).stream;
    return stream.closed || stream.destroyed || (req as Http2ServerRequest).aborted;
  }
  return req.socket.destroyed || res.destroyed;
}

export function createRequestHandler(deps: HandlerDeps): (req: HttpRequest, res: HttpResponse) => void {
  const metadataAt = new Set(metadataPaths(deps.publicBaseUrl));

  function send(req: HttpRequest, res: HttpResponse, status: number, body: string, extra?: Readonly<Record<string, string>>, close = false): void {
    const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' };
    const rid = req.headers['x-request-id'];
    if (typeof rid === 'string') headers['x-request-id'] = rid;
    if (extra) Object.assign(headers, extra);
    // HTTP/2 forbids connection headers; its sessions are closed with GOAWAY on shutdown instead.
    if ((close || deps.stopping()) && req.httpVersionMajor === 1) headers.connection = 'close';
    (res as ServerResponse).writeHead(status, headers);
    res.end(body);
  }

  function sendError(req: HttpRequest, res: HttpResponse, err: HttpError, close: boolean): void {
    send(req, res, err.status, errorBody(err.status, err.code, err.message), err.headers, close);
  }

  async function access(req: HttpRequest, res: HttpResponse, path: string): Promise<void> {
    const receivedAt = deps.api.hooks.timed ? performance.now() : 0;
    let bodyRead = false;
    try {
      const rid = req.headers['x-request-id'];
      const requestId = typeof rid === 'string' ? rid : '';
      if (requestId.length > deps.maxRequestIdLength) {
        throw new HttpError(400, 'INVALID_REQUEST', `X-Request-ID: is longer than ${deps.maxRequestIdLength} characters (limits.maxIdentifierLength)`);
      }
      let caller;
      if (deps.callers) {
        // One identity per connection: the HTTP/2 session, or the HTTP/1.1 socket.
        const connection = req.httpVersionMajor === 2 ? (req as Http2ServerRequest).stream.session ?? req.socket : req.socket;
        caller = deps.callers.callerOf(connection, req.socket);
        deps.callers.check(caller);
      }
      if (deps.auth?.enabled) await deps.auth.authenticate(req.headers.authorization);
      checkBodyHeaders(req.headers, deps.maxBodyBytes);
      const body = await readJsonBody(req, deps.maxBodyBytes, req.httpVersionMajor === 2 ? deps.requestTimeoutMs : 0);
      bodyRead = true;
      const call: AuthzenCall = { requestId, caller, receivedAt, trace: traceParentFromHeaders(deps.api.hooks, req.headers), abandoned: () => clientGone(req, res) };
      const answer = path === EVALUATION_PATH ? await deps.api.evaluation(body, call) : await deps.api.evaluations(body, call);
      send(req, res, 200, JSON.stringify(answer));
    } catch (err) {
      // A body left unread is not drained: the connection closes after the answer.
      if (err instanceof HttpError) return sendError(req, res, err, !bodyRead);
      if (err instanceof NotReadyError) return sendError(req, res, new HttpError(503, 'UNAVAILABLE', 'no policy set is loaded yet; retry shortly', { 'retry-after': '1' }), !bodyRead);
      deps.onUnexpectedError(err, path);
      sendError(req, res, new HttpError(500, 'INTERNAL', 'internal error while deciding; the request was not allowed'), !bodyRead);
    }
  }

  function get(req: HttpRequest, res: HttpResponse, path: string): void {
    if (path === HEALTH_PATH || path === READY_PATH) {
      const serving = deps.serving();
      return send(req, res, serving ? 200 : 503, serving ? '{"status":"SERVING"}' : '{"status":"NOT_SERVING"}');
    }
    const base = baseUrlFor(req.headers, deps.publicBaseUrl, deps.secure, deps.listenAuthority());
    const headers: Record<string, string> = { 'cache-control': 'max-age=300' };
    if (!deps.publicBaseUrl) headers.vary = 'host';
    send(req, res, 200, JSON.stringify(metadataDocument(base)), headers);
  }

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method;
    try {
      if (path === EVALUATION_PATH || path === EVALUATIONS_PATH) {
        if (method === 'POST') {
          access(req, res, path).catch((err: unknown) => deps.onUnexpectedError(err, path));
          return;
        }
        return sendError(req, res, new HttpError(405, 'METHOD_NOT_ALLOWED', `${path} takes POST`, { allow: 'POST' }), true);
      }
      if (metadataAt.has(path) || path === HEALTH_PATH || path === READY_PATH) {
        if (method === 'GET' || method === 'HEAD') return get(req, res, path);
        return sendError(req, res, new HttpError(405, 'METHOD_NOT_ALLOWED', `${path} takes GET`, { allow: 'GET, HEAD' }), true);
      }
      sendError(req, res, new HttpError(404, 'NOT_FOUND', `no such endpoint: ${JSON.stringify(path.slice(0, 200))} (AuthZEN: POST ${EVALUATION_PATH}, POST ${EVALUATIONS_PATH}, GET ${[...metadataAt][0]})`), true);
    } catch (err) {
      deps.onUnexpectedError(err, path);
      if (!res.headersSent) sendError(req, res, new HttpError(500, 'INTERNAL', 'internal error'), true);
    }
  };
}
