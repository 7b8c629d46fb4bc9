import { InvalidRequestError } from '../engine/validate.js';
import type { CheckRequest, Subject } from '../engine/request.js';
import type { CheckOptions, CheckOutcome, DecisionService } from '../service/decision-service.js';
import type { TokenVerifier } from './tokens.js';

/** The subject of a request whose token was missing or invalid: nobody. */
export const ANONYMOUS_SUBJECT: Subject = { type: 'anonymous', id: '', roles: [], attributes: {} };

/**
 * A request that carries a token must not also name a subject, and needs configured issuers.
 * (Adapters build the rest of the request; grpc/translate.ts for gRPC.)
 */
export function refuseSubjectWithToken(subject: unknown, tokens: TokenVerifier | undefined): void {
  if (!tokens) throw new InvalidRequestError('token', 'subject tokens are not accepted: no token issuers are configured (tokens.issuers)');
  if (subject) throw new InvalidRequestError('subject', 'must be empty when token is set: the subject comes from the verified token');
}

/**
 * Verifies the token, then decides every request for its subject; an invalid token decides nothing:
 * each request is a DENY with reason UNAUTHENTICATED, recorded like any other decision.
 */
export async function decideWithToken(decisions: DecisionService, tokens: TokenVerifier, token: string, requests: readonly CheckRequest[], options: CheckOptions): Promise<CheckOutcome[]> {
  const verified = await tokens.verify(token);
  if (!verified.ok) return Promise.all(requests.map((r) => decisions.refuse(r, 'UNAUTHENTICATED', options)));
  return decisions.checkMany(requests.map((r) => ({ ...r, subject: verified.subject })), options);
}
