import type { RequestLimits } from '../engine/limits.js';
import type { AttributeValue, Attributes } from '../engine/request.js';
import { checkAttributes, InvalidRequestError, TOO_DEEP } from '../engine/validate.js';
import { decodeStructJson } from './wire/struct-decoder.js';
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
 * A Struct as plain JSON attributes, validated by the one request validator (limits and all).
 * The Struct is either proto-loader's object form or, from the server's own Check/CheckBatch
 * decoder, its raw bytes; both become the same JSON first, so both are refused alike.
 */
export function structToAttributes(struct: ProtoStruct | Uint8Array | null | undefined, field: string, limits: RequestLimits): Attributes {
  return checkAttributes(structToJson(struct, field, limits.maxAttributeDepth), field, limits);
}

/** The conversion alone: nesting past `maxDepth` becomes TOO_DEEP, for the validator to report. */
export function structToJson(struct: ProtoStruct | Uint8Array | null | undefined, field: string, maxDepth: number): Attributes {
  if (struct instanceof Uint8Array) {
    try {
      return decodeStructJson(struct, maxDepth);
    } catch (err) {
      if (err instanceof WireFormatError) throw new InvalidRequestError(field, `not a valid google.protobuf.Struct (${err.message})`);
      throw err;
    }
  }
  if (!struct || !struct.fields) return {};
  return structFields(struct, 1, maxDepth);
}

function structFields(struct: ProtoStruct, depth: number, maxDepth: number): { [k: string]: AttributeValue } {
  const out: { [k: string]: AttributeValue } = {};
  const fields = struct.fields;
  if (fields) {
    for (const key in fields) {
      const value = valueToJson(fields[key]!, depth, maxDepth);
      // A `__proto__` key is an attribute like any other, not the object's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }
  return out;
}

/** `depth` is that of the struct or list holding the value. */
function valueToJson(v: ProtoValue, depth: number, maxDepth: number): AttributeValue {
  switch (v.kind) {
    case 'stringValue':
      return v.stringValue!;
    case 'numberValue':
      return v.numberValue!;
    case 'boolValue':
      return v.boolValue!;
    case 'structValue':
      return depth + 1 > maxDepth ? TOO_DEEP : structFields(v.structValue ?? {}, depth + 1, maxDepth);
    case 'listValue':
      return depth + 1 > maxDepth ? TOO_DEEP : (v.listValue?.values ?? []).map((item) => valueToJson(item, depth + 1, maxDepth));
    default:
      return null;
  }
}

/** Plain JSON → google.protobuf.Struct in proto-loader's object form (used by clients and tests). */
export function attributesToStruct(value: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(value)) {
    // A `__proto__` key is an attribute like any other (an assignment would set the prototype).
    if (k === '__proto__') Object.defineProperty(fields, k, { value: jsonToValue(v), enumerable: true, writable: true, configurable: true });
    else fields[k] = jsonToValue(v);
  }
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
