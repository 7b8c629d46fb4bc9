import { TOKEN_PROBLEM_TEXT, type TokenProblem } from '../auth/tokens.js';

/** google.rpc.Code values used in CheckResponse.status. */
const RPC_OK = 0;
const RPC_INVALID_ARGUMENT = 3;
const RPC_PERMISSION_DENIED = 7;
const RPC_RESOURCE_EXHAUSTED = 8;
const RPC_UNAUTHENTICATED = 16;

/** Overwrite (never append): a client cannot smuggle its own x-verdict-* header past Verdict's. */
const OVERWRITE = 'OVERWRITE_IF_EXISTS_OR_ADD';

export type Header = readonly [name: string, value: string];

function options(headers: readonly Header[]): Record<string, unknown>[] {
  return headers.map(([key, value]) => ({ header: { key, value }, appendAction: OVERWRITE }));
}

/** Allowed: status OK, headers for the upstream (and, when given, for the client: RateLimit fields). */
export function okResponse(upstream: readonly Header[], remove: readonly string[], downstream: readonly Header[] = []): Record<string, unknown> {
  const ok: Record<string, unknown> = { headers: options(upstream) };
  if (remove.length > 0) ok.headersToRemove = remove;
  if (downstream.length > 0) ok.responseHeadersToAdd = options(downstream);
  return { status: { code: RPC_OK }, okResponse: ok };
}

function denied(rpcCode: number, message: string, httpStatus: string, headers: readonly Header[], body: Record<string, unknown>): Record<string, unknown> {
  return {
    status: { code: rpcCode, message },
    deniedResponse: {
      status: { code: httpStatus },
      headers: options([['content-type', 'application/json'], ...headers]),
      body: JSON.stringify(body),
    },
  };
}

/** Denied by policy (or an unmapped route): 403 with a small JSON body naming the decision. */
export function forbiddenResponse(decisionId: string, decisionHeader: string): Record<string, unknown> {
  return denied(RPC_PERMISSION_DENIED, 'denied', 'Forbidden', [[decisionHeader, decisionId]], { error: 'forbidden', decision_id: decisionId });
}

/**
 * Over a usage limit (RATE_LIMITED, QUOTA_EXCEEDED): 429 with Retry-After and the RateLimit fields,
 * and a JSON body naming the decision, the reason and the limit.
 */
export function tooManyRequestsResponse(decisionId: string, decisionHeader: string, reason: string, limit: string, retryAfterSeconds: number, headers: readonly Header[]): Record<string, unknown> {
  return denied(RPC_RESOURCE_EXHAUSTED, 'rate limited', 'TooManyRequests', [[decisionHeader, decisionId], ...headers], {
    error: reason === 'QUOTA_EXCEEDED' ? 'quota_exceeded' : 'rate_limited',
    limit,
    retry_after: retryAfterSeconds,
    decision_id: decisionId,
  });
}

/** No or no acceptable bearer token: 401 with an RFC 6750 challenge. */
export function unauthorizedResponse(problem: TokenProblem, decisionId: string, decisionHeader: string, realm: string): Record<string, unknown> {
  const description = TOKEN_PROBLEM_TEXT[problem];
  const challenge = problem === 'missing' ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token", error_description="${description}"`;
  return denied(RPC_UNAUTHENTICATED, 'unauthenticated', 'Unauthorized', [['www-authenticate', challenge], [decisionHeader, decisionId]], {
    error: problem === 'missing' ? 'unauthenticated' : 'invalid_token',
    error_description: description,
    decision_id: decisionId,
  });
}

/** A request Verdict cannot map (bad path encoding, too long an identifier): 400, no decision. */
export function badRequestResponse(detail: string): Record<string, unknown> {
  return denied(RPC_INVALID_ARGUMENT, detail, 'BadRequest', [], { error: 'bad_request', error_description: detail });
}
