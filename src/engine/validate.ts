/**
 * The one request validator. Every input path builds the plain shape of a request (strings,
 * arrays, JSON attribute trees) and validates it here, so a limit is enforced, and reported, the
 * same way whether the request came as gRPC bytes, a proto-loader object, a JSON file, an HTTP
 * body or token claims. Messages name the field by its path and the limit by its setting.
 */
import type { RequestLimits } from './limits.js';
import type { AttributeValue, Attributes, Resource, Subject } from './request.js';

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

/**
 * What converters (wire bytes, proto objects) put where a list or map nests deeper than the
 * limit, instead of decoding it: the validator then reports the depth error at that path, in the
 * same order as for any other input. It is a container, so the depth check fires on it first.
 */
export const TOO_DEEP: AttributeValue = Object.freeze([]) as AttributeValue;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** UTF-8 bytes of a string; most strings are short enough that their UTF-16 length decides. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** True when `s` is longer than `max` UTF-8 bytes (a UTF-16 unit is 1 to 3 bytes). */
function longerThan(s: string, max: number): boolean {
  if (s.length * 3 <= max) return false;
  if (s.length > max) return true;
  return utf8Length(s) > max;
}

/** An id, type, action or role: a string of at most limits.maxIdentifierLength bytes. */
export function validateIdentifier(value: unknown, field: string, limits: RequestLimits, required: boolean, fallback = ''): string {
  if (value === undefined || value === null || value === '') {
    if (required) throw new InvalidRequestError(field, 'is required and must not be empty');
    return fallback;
  }
  if (typeof value !== 'string') throw new InvalidRequestError(field, 'must be a string');
  if (longerThan(value, limits.maxIdentifierLength)) {
    throw new InvalidRequestError(field, `is longer than ${limits.maxIdentifierLength} bytes (limits.maxIdentifierLength)`);
  }
  return value;
}

export function validateRoles(value: unknown, field: string, limits: RequestLimits): string[] {
  const roles = value ?? [];
  if (!Array.isArray(roles)) throw new InvalidRequestError(field, 'must be a list of strings');
  if (roles.length > limits.maxRoles) throw new InvalidRequestError(field, `has ${roles.length} roles; at most ${limits.maxRoles} allowed (limits.maxRoles)`);
  for (let i = 0; i < roles.length; i++) validateIdentifier(roles[i], `${field}[${i}]`, limits, true);
  return roles as string[];
}

/** A subject as JSON-like data (`{type, id, roles, attributes}`); type defaults to "user". */
export function validateSubject(raw: unknown, field: string, limits: RequestLimits): Subject {
  if (!isRecord(raw)) throw new InvalidRequestError(field, 'is required');
  const roles = validateRoles(raw.roles, `${field}.roles`, limits);
  return {
    type: validateIdentifier(raw.type, `${field}.type`, limits, false, 'user'),
    id: validateIdentifier(raw.id, `${field}.id`, limits, true),
    roles,
    attributes: checkAttributes(raw.attributes, `${field}.attributes`, limits),
  };
}

export function validateResource(raw: unknown, field: string, limits: RequestLimits): Resource {
  if (!isRecord(raw)) throw new InvalidRequestError(field, 'is required');
  return {
    type: validateIdentifier(raw.type, `${field}.type`, limits, true),
    id: validateIdentifier(raw.id, `${field}.id`, limits, false),
    attributes: checkAttributes(raw.attributes, `${field}.attributes`, limits),
  };
}

// ---- attributes ----------------------------------------------------------------------------------

/** Shortens a hostile key for an error message (the path is for people; the key may be 4 KiB). */
function keyForPath(key: string): string {
  return key.length > 64 ? `${key.slice(0, 64)}…` : key;
}

/**
 * The traversal of one attribute: its path (built only for an error), items and string lengths.
 * One instance serves every call (`reset` per attribute map): validation is synchronous and never
 * re-entered, and a batch validates one map per item.
 */
class AttributeWalk {
  private readonly path: (string | number)[] = [];
  private key = '';
  items = 0;
  /** UTF-16 units of every string seen; UTF-8 bytes are between this and three times this. */
  units = 0;
  private field = '';
  private limits!: RequestLimits;

  /** Starts on the attribute map `field` (a walk that threw may have left path entries behind). */
  reset(field: string, limits: RequestLimits): this {
    this.field = field;
    this.limits = limits;
    this.path.length = 0;
    return this;
  }

  /** Starts on the attribute under `key` (one walker serves a whole map: no allocation per attribute). */
  start(key: string): void {
    this.key = key;
    this.items = 0;
    this.units = 0;
  }

  at(): string {
    let out = this.attributePath();
    for (const p of this.path) out += typeof p === 'number' ? `[${p}]` : `.${keyForPath(p)}`;
    return out;
  }

  fail(reason: string): never {
    throw new InvalidRequestError(this.at(), reason);
  }

  string(s: string): void {
    if (longerThan(s, this.limits.maxStringBytes)) this.fail(`is longer than ${this.limits.maxStringBytes} bytes (limits.maxStringBytes)`);
    this.units += s.length;
  }

  value(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        this.string(value);
        return;
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(value)) this.fail('must be a finite number');
        return;
      case 'object':
        break;
      default:
        this.fail(`has unsupported type ${typeof value}`);
    }
    if (value === null) return;
    const limits = this.limits;
    if (depth > limits.maxAttributeDepth) this.fail(`nests deeper than ${limits.maxAttributeDepth} levels (limits.maxAttributeDepth)`);
    if (Array.isArray(value)) {
      this.count(value.length);
      for (let i = 0; i < value.length; i++) {
        this.path.push(i);
        this.value(value[i], depth + 1);
        this.path.pop();
      }
      return;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) this.fail('must be a plain JSON object');
    for (const key in value) {
      this.count(1);
      this.path.push(key);
      this.string(key);
      this.value((value as Record<string, unknown>)[key], depth + 1);
      this.path.pop();
    }
  }

  /** Items are counted against the attribute as a whole, so the error names the attribute. */
  private count(n: number): void {
    this.items += n;
    if (this.items > this.limits.maxAttributeItems) {
      throw new InvalidRequestError(this.attributePath(), `holds more than ${this.limits.maxAttributeItems} items (limits.maxAttributeItems)`);
    }
  }

  attributePath(): string {
    return `${this.field}.${keyForPath(this.key)}`;
  }
}

const WALK = new AttributeWalk();

/** UTF-8 bytes of every string (values and keys) in an already validated value. */
function stringBytes(value: unknown): number {
  if (typeof value === 'string') return utf8Length(value);
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  if (Array.isArray(value)) for (const v of value) n += stringBytes(v);
  else for (const k in value) n += utf8Length(k) + stringBytes((value as Record<string, unknown>)[k]);
  return n;
}

/**
 * Validates a JSON-like attribute tree (subject.attributes, resource.attributes, context): plain
 * values only, finite numbers, bounded depth, keys, items per attribute, string and attribute
 * sizes in UTF-8 bytes. Returns it unchanged.
 */
export function checkAttributes(value: unknown, field: string, limits: RequestLimits): Attributes {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new InvalidRequestError(field, 'must be a map of attributes');
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new InvalidRequestError(field, 'must be a plain JSON object');
  let keys = 0;
  const walk = WALK.reset(field, limits);
  for (const key in value) {
    if (++keys > limits.maxAttributes) throw new InvalidRequestError(field, `has more than ${limits.maxAttributes} attributes (limits.maxAttributes)`);
    walk.start(key);
    walk.string(key);
    walk.value(value[key], 2);
    // UTF-8 bytes lie between the UTF-16 count and three times it; measure exactly only in between.
    if (walk.units * 3 > limits.maxAttributeBytes) {
      const bytes = walk.units > limits.maxAttributeBytes ? walk.units : utf8Length(key) + stringBytes(value[key]);
      if (bytes > limits.maxAttributeBytes) {
        throw new InvalidRequestError(walk.attributePath(), `holds more than ${limits.maxAttributeBytes} bytes of strings (limits.maxAttributeBytes)`);
      }
    }
  }
  return value as Attributes;
}
