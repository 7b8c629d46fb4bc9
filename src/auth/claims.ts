import type { JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/schema.js';
import type { AttributeValue, Attributes, Subject } from '../engine/request.js';

/**
 * A claim by name: a top-level claim of exactly that name (URL-shaped names such as
 * "https://example.com/roles" included), else a dotted path into nested objects ("realm_access.roles").
 */
export function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, path)) return payload[path];
  let node: unknown = payload;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** JSON claim values are already attribute values; anything else (never produced by JSON.parse) is dropped. */
function asAttribute(v: unknown): AttributeValue | undefined {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'object') return v as AttributeValue;
  return undefined;
}

/** Roles: a list of strings, or one string of space- or comma-separated roles (OAuth "scope" style). */
function rolesOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((r): r is string => typeof r === 'string' && r !== '');
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Maps verified claims to a Subject as the issuer's `claims` configuration says; undefined without a subject id. */
export function subjectFromClaims(payload: JWTPayload, issuer: IssuerConfig): Subject | undefined {
  const id = claimAt(payload, issuer.claims.subject);
  if (typeof id !== 'string' || id === '') return undefined;
  const attributes: Record<string, AttributeValue> = {};
  for (const [name, path] of Object.entries(issuer.claims.attributes)) {
    const v = asAttribute(claimAt(payload, path));
    if (v !== undefined) attributes[name] = v;
  }
  return {
    type: issuer.subjectType,
    id,
    roles: issuer.claims.roles ? rolesOf(claimAt(payload, issuer.claims.roles)) : [],
    attributes: attributes as Attributes,
  };
}
