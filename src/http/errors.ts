/**
 * A request the HTTP adapter refuses before or instead of deciding. `code` is stable (documented in
 * docs/api.md); `message` says what is wrong and never carries request content beyond field names.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    /** Extra response headers (WWW-Authenticate, Allow, Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type HttpErrorCode =
  | 'INVALID_REQUEST' // 400: a field is missing, of the wrong type, or over a limit
  | 'INVALID_JSON' // 400: the body is empty, not UTF-8, not JSON, or not a JSON object
  | 'INVALID_CONTENT_TYPE' // 400: Content-Type is not application/json
  | 'UNAUTHENTICATED' // 401: http.auth is on and the bearer token is missing or not accepted
  | 'PERMISSION_DENIED' // 403: mTLS caller not in tls.allowedCallers
  | 'NOT_FOUND' // 404
  | 'METHOD_NOT_ALLOWED' // 405
  | 'REQUEST_TIMEOUT' // 408: the body did not arrive within http.requestTimeoutMs
  | 'BODY_TOO_LARGE' // 413: over limits.maxMessageBytes
  | 'UNSUPPORTED_CONTENT_ENCODING' // 415: a Content-Encoding other than identity
  | 'INTERNAL' // 500: never carries internals
  | 'UNAVAILABLE'; // 503: no policy set loaded

/** The JSON body of every error answer: `{"error": {"status", "code", "message"}}`. */
export function errorBody(status: number, code: HttpErrorCode, message: string): string {
  return JSON.stringify({ error: { status, code, message } });
}
