import type { AttributeValue, Attributes, CheckRequest } from './request.js';

/** Bounds on what a caller may send; defaults suit gateways and sidecars. */
export interface RequestLimits {
  /** Deepest nesting of attribute maps/lists (a top-level attribute map is depth 1). */
  readonly maxAttributeDepth: number;
  readonly maxRoles: number;
  /** Longest id, type, action or role string. */
  readonly maxIdentifierLength: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxAttributeDepth: 10, maxRoles: 256, maxIdentifierLength: 1024 };

/** A request that cannot be evaluated; `field` is the path of the offending field, e.g. "resource.type". */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidRequestError';
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function identifier(value: unknown, field: string, limits: RequestLimits, required: boolean, fallback = ''): string {
  if (value === undefined || value === null || value === '') {
    if (required) throw new InvalidRequestError(field, 'is required');
    return fallback;
  }
  if (typeof value !== 'string') throw new InvalidRequestError(field, 'must be a string');
  if (value.length > limits.maxIdentifierLength) throw new InvalidRequestError(field, `is longer than ${limits.maxIdentifierLength} characters`);
  return value;
}

/** Validates a JSON-like attribute tree: plain values only, bounded depth, finite numbers. */
export function checkAttributes(value: unknown, field: string, limits: RequestLimits): Attributes {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new InvalidRequestError(field, 'must be a map of attributes');
  checkValue(value, field, 1, limits);
  return value as Attributes;
}

function checkValue(value: unknown, field: string, depth: number, limits: RequestLimits): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidRequestError(field, 'must be a finite number');
    return;
  }
  if (typeof value !== 'object') throw new InvalidRequestError(field, `has unsupported type ${typeof value}`);
  if (depth > limits.maxAttributeDepth) throw new InvalidRequestError(field, `nests deeper than ${limits.maxAttributeDepth} levels`);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkValue(item, `${field}[${i}]`, depth + 1, limits));
    return;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
    throw new InvalidRequestError(field, 'must be a plain JSON object');
  }
  for (const [k, v] of Object.entries(value)) checkValue(v, `${field}.${k}`, depth + 1, limits);
}

/**
 * Turns an untrusted JSON-like request (from a file, the CLI, or a decoded RPC) into a CheckRequest,
 * or throws InvalidRequestError naming the first bad field. Subject type defaults to "user".
 */
export function parseCheckRequest(raw: unknown, limits: RequestLimits = DEFAULT_REQUEST_LIMITS, prefix = ''): CheckRequest {
  if (!isRecord(raw)) throw new InvalidRequestError(prefix || 'request', 'must be an object');
  const p = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const subject = raw.subject;
  if (!isRecord(subject)) throw new InvalidRequestError(p('subject'), 'is required');
  const rolesRaw = subject.roles ?? [];
  if (!Array.isArray(rolesRaw)) throw new InvalidRequestError(p('subject.roles'), 'must be a list of strings');
  if (rolesRaw.length > limits.maxRoles) throw new InvalidRequestError(p('subject.roles'), `has more than ${limits.maxRoles} roles`);
  const roles = rolesRaw.map((r, i) => identifier(r, p(`subject.roles[${i}]`), limits, true));
  const resource = raw.resource;
  if (!isRecord(resource)) throw new InvalidRequestError(p('resource'), 'is required');
  return {
    subject: {
      type: identifier(subject.type, p('subject.type'), limits, false, 'user'),
      id: identifier(subject.id, p('subject.id'), limits, true),
      roles,
      attributes: checkAttributes(subject.attributes, p('subject.attributes'), limits),
    },
    action: identifier(raw.action, p('action'), limits, true),
    resource: {
      type: identifier(resource.type, p('resource.type'), limits, true),
      id: identifier(resource.id, p('resource.id'), limits, false),
      attributes: checkAttributes(resource.attributes, p('resource.attributes'), limits),
    },
    context: checkAttributes(raw.context, p('context'), limits),
  };
}

export type { AttributeValue };
