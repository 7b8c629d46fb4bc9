import { InvalidRequestError } from '../engine/input.js';
import type { AttributeValue, Attributes } from '../engine/request.js';
import { decodeStructJson, decodeStructMessage } from './wire/struct-decoder.js';
import { WireFormatError } from './wire/protobuf-reader.js';

/** google.protobuf.Value as proto-loader decodes it (oneofs: true gives `kind`). */
export interface ProtoValue {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

/**
 * Converts a Struct into plain JSON, enforcing the depth limit as it goes so a hostile nesting
 * never reaches the engine. `field` names the path for the error message. The Struct is either
 * proto-loader's object form or, from the server's own Check/CheckBatch decoder, its raw bytes.
 */
export function structToAttributes(struct: ProtoStruct | Uint8Array | null | undefined, field: string, maxDepth: number): Attributes {
  if (struct instanceof Uint8Array) return wireStructToAttributes(struct, field, maxDepth);
  if (!struct || !struct.fields) return {};
  return structFields(struct, field, 1, maxDepth);
}

function wireStructToAttributes(bytes: Uint8Array, field: string, maxDepth: number): Attributes {
  try {
    try {
      return decodeStructJson(bytes, field, maxDepth);
    } catch (err) {
      if (!(err instanceof InvalidRequestError)) throw err;
      // Refused: let the object form decide which error to report (or that a later duplicate key
      // replaced the bad value), so both forms answer alike.
      return structToAttributes(decodeStructMessage(bytes, maxDepth), field, maxDepth);
    }
  } catch (err) {
    if (err instanceof WireFormatError) throw new InvalidRequestError(field, `not a valid google.protobuf.Struct (${err.message})`);
    throw err;
  }
}

function structFields(struct: ProtoStruct, field: string, depth: number, maxDepth: number): { [k: string]: AttributeValue } {
  if (depth > maxDepth) throw new InvalidRequestError(field, `nests deeper than ${maxDepth} levels (limits.maxAttributeDepth)`);
  const out: { [k: string]: AttributeValue } = {};
  const fields = struct.fields;
  if (fields) {
    for (const key in fields) {
      const value = valueToJson(fields[key]!, field, key, depth, maxDepth);
      // A `__proto__` key is an attribute like any other, not the object's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }
  return out;
}

/** `parent.key` for map entries, `parent[i]` for list items (as the JSON request parser names them). */
function pathOf(parent: string, key: string | number): string {
  return typeof key === 'number' ? `${parent}[${key}]` : `${parent}.${key}`;
}

function valueToJson(v: ProtoValue, parent: string, key: string | number, depth: number, maxDepth: number): AttributeValue {
  switch (v.kind) {
    case 'stringValue':
      return v.stringValue!;
    case 'numberValue': {
      const n = v.numberValue!;
      if (!Number.isFinite(n)) throw new InvalidRequestError(pathOf(parent, key), 'must be a finite number');
      return n;
    }
    case 'boolValue':
      return v.boolValue!;
    case 'structValue':
      return structFields(v.structValue ?? {}, pathOf(parent, key), depth + 1, maxDepth);
    case 'listValue': {
      const field = pathOf(parent, key);
      if (depth + 1 > maxDepth) throw new InvalidRequestError(field, `nests deeper than ${maxDepth} levels (limits.maxAttributeDepth)`);
      const values = v.listValue?.values ?? [];
      return values.map((item, i) => valueToJson(item, field, i, depth + 1, maxDepth));
    }
    default:
      return null;
  }
}

/** Plain JSON → google.protobuf.Struct in proto-loader's object form (used by clients and tests). */
export function attributesToStruct(value: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = jsonToValue(v);
  return { fields };
}

export function jsonToValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  if (v instanceof Date) return { stringValue: v.toISOString() };
  return { structValue: attributesToStruct(v as Record<string, unknown>) };
}
