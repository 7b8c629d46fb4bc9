import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from './limits.js';
import type { AttributeValue, CheckRequest } from './request.js';
import { checkAttributes, InvalidRequestError, validateIdentifier, validateResource, validateSubject } from './validate.js';

export { checkAttributes, InvalidRequestError, DEFAULT_REQUEST_LIMITS, type RequestLimits };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Turns an untrusted JSON request (from a file, the CLI, a policy test or an HTTP body) into a
 * CheckRequest, or throws InvalidRequestError naming the first bad field. `action` is a plain
 * string here (`{"action": "read"}`). Checks run in the gRPC order: subject, action, resource,
 * context; the limits are those of the gRPC API (validate.ts).
 */
export function parseCheckRequest(raw: unknown, limits: RequestLimits = DEFAULT_REQUEST_LIMITS, prefix = ''): CheckRequest {
  if (!isRecord(raw)) throw new InvalidRequestError(prefix || 'request', 'must be an object');
  const p = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const subject = validateSubject(raw.subject, p('subject'), limits);
  const action = validateIdentifier(raw.action, p('action'), limits, true);
  const resource = validateResource(raw.resource, p('resource'), limits);
  return { subject, action, resource, context: checkAttributes(raw.context, p('context'), limits) };
}

export type { AttributeValue };
