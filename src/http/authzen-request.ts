import { InvalidRequestError, parseCheckRequest, type RequestLimits } from '../service/request-validation.js';
import type { CheckRequest } from '../engine/request.js';

/** How AuthZEN entities become Verdict's request (docs/api.md, "AuthZEN over HTTP"). */
export interface AuthzenMapping {
  readonly limits: RequestLimits;
  /** The subject property holding the roles (http.rolesProperty); undefined = none. */
  readonly rolesProperty: string | undefined;
}

/** The four entities of one AuthZEN evaluation, as sent (untrusted JSON values). */
export interface AuthzenTuple {
  readonly subject?: unknown;
  readonly action?: unknown;
  readonly resource?: unknown;
  readonly context?: unknown;
}

/** Where action.properties land: conditions read them as `context.action.<name>`. */
export const ACTION_PROPERTIES_KEY = 'action';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function absent(v: unknown): boolean {
  return v === undefined || v === null;
}

/** An entity must be an object (AuthZEN); null counts as absent (I-JSON: null means omitted). */
function entity(value: unknown, field: string): Json {
  if (absent(value)) throw new InvalidRequestError(field, 'is required');
  if (!isObject(value)) throw new InvalidRequestError(field, 'must be an object');
  return value;
}

/** AuthZEN requires ids and types Verdict treats as optional or defaulted. */
function required(owner: Json, key: string, field: string): void {
  const v = owner[key];
  if (v === undefined || v === null || v === '') throw new InvalidRequestError(field, 'is required');
}

function properties(value: unknown, field: string): Json | undefined {
  if (absent(value)) return undefined;
  if (!isObject(value)) throw new InvalidRequestError(field, 'must be an object');
  return value;
}

/**
 * One AuthZEN evaluation → Verdict's CheckRequest, through the one request validator
 * (parseCheckRequest): `subject.properties` → subject attributes (its roles property → roles),
 * `resource.properties` → resource attributes, `action.name` → the action, `action.properties` →
 * `context.action`, `context` → context. Unknown fields are ignored. Problems are
 * InvalidRequestErrors whose field is named as the AuthZEN request names it.
 */
export function authzenToCheckRequest(tuple: AuthzenTuple, mapping: AuthzenMapping): CheckRequest {
  const subject = entity(tuple.subject, 'subject');
  required(subject, 'type', 'subject.type');
  required(subject, 'id', 'subject.id');
  const action = entity(tuple.action, 'action');
  required(action, 'name', 'action.name');
  const resource = entity(tuple.resource, 'resource');
  required(resource, 'type', 'resource.type');
  required(resource, 'id', 'resource.id');

  let attributes = properties(subject.properties, 'subject.properties');
  let roles: unknown;
  const rolesKey = mapping.rolesProperty;
  if (attributes && rolesKey !== undefined && Object.prototype.hasOwnProperty.call(attributes, rolesKey)) {
    // Rest-destructuring copies own properties by definition, so a "__proto__" key stays data.
    const { [rolesKey]: taken, ...rest } = attributes;
    roles = taken;
    attributes = rest;
  }

  let context = tuple.context;
  const actionProperties = properties(action.properties, 'action.properties');
  if (actionProperties) {
    if (absent(context)) context = { [ACTION_PROPERTIES_KEY]: actionProperties };
    else if (!isObject(context)) throw new InvalidRequestError('context', 'must be an object');
    else if (Object.prototype.hasOwnProperty.call(context, ACTION_PROPERTIES_KEY)) {
      throw new InvalidRequestError('context.action', 'is reserved for action.properties when the request has action.properties; rename the context key');
    } else context = { ...context, [ACTION_PROPERTIES_KEY]: actionProperties };
  }

  const raw = {
    subject: { type: subject.type, id: subject.id, roles: absent(roles) ? undefined : roles, attributes },
    action: action.name,
    resource: { type: resource.type, id: resource.id, attributes: resource.properties },
    context,
  };
  try {
    return parseCheckRequest(raw, mapping.limits);
  } catch (err) {
    if (err instanceof InvalidRequestError) throw new InvalidRequestError(authzenField(err.field, rolesKey, actionProperties !== undefined), err.reason);
    throw err;
  }
}

/** Verdict's field path → the AuthZEN request's. */
export function authzenField(field: string, rolesKey: string | undefined, actionPropertiesInContext: boolean): string {
  const swap = (from: string, to: string) => (field === from || field.startsWith(`${from}.`) || field.startsWith(`${from}[`) ? to + field.slice(from.length) : undefined);
  return (
    swap('subject.attributes', 'subject.properties') ??
    (rolesKey !== undefined ? swap('subject.roles', `subject.properties.${rolesKey}`) : undefined) ??
    swap('resource.attributes', 'resource.properties') ??
    (actionPropertiesInContext ? swap(`context.${ACTION_PROPERTIES_KEY}`, 'action.properties') : undefined) ??
    (field === 'action' ? 'action.name' : field)
  );
}

/**
 * The evaluation an `evaluations` item stands for: each entity the item sets replaces the top-level
 * default as a whole, except that a required identifier the item's entity leaves out (subject or
 * resource `type`/`id`, action `name`) is taken from the default (AuthZEN certification scenario,
 * "batch with default value merging"). Properties are never merged.
 */
export function mergeEvaluation(defaults: AuthzenTuple, item: AuthzenTuple): AuthzenTuple {
  return {
    subject: withIdentifiers(defaults.subject, item.subject, ['type', 'id']),
    action: withIdentifiers(defaults.action, item.action, ['name']),
    resource: withIdentifiers(defaults.resource, item.resource, ['type', 'id']),
    context: absent(item.context) ? defaults.context : item.context,
  };
}

function withIdentifiers(fallback: unknown, own: unknown, keys: readonly string[]): unknown {
  if (absent(own)) return fallback;
  if (!isObject(own) || !isObject(fallback) || keys.every((k) => !absent(own[k]))) return own;
  const out: Json = { ...own };
  for (const k of keys) if (absent(own[k])) out[k] = fallback[k];
  return out;
}
