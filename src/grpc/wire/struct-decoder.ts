/**
 * google.protobuf.Struct bytes → plain JSON attributes, without protobufjs's intermediate message
 * and toObject objects. The result is what structToAttributes makes of proto-loader's object form:
 *
 *  - null_value, a Value with no kind and a map entry without a value all become null;
 *  - a repeated map key and a repeated Value kind: the last one on the wire wins;
 *  - a list or map nested deeper than `maxDepth` (a struct level or a list level each count one)
 *    is not decoded: TOO_DEEP stands in its place, and the request validator reports it.
 *
 * Nothing else is checked here: every limit is the validator's (src/engine/validate.ts), so the
 * same request is refused with the same message whatever form it came in.
 */
import type { AttributeValue } from '../../engine/request.js';
import { TOO_DEEP } from '../../engine/validate.js';
import { ProtobufReader } from './protobuf-reader.js';

// Tags: (field number << 3) | wire type.
const STRUCT_FIELDS = (1 << 3) | 2; // Struct.fields: repeated FieldsEntry (map<string, Value>)
const ENTRY_KEY = (1 << 3) | 2;
const ENTRY_VALUE = (2 << 3) | 2;
const VALUE_NULL = (1 << 3) | 0;
const VALUE_NUMBER = (2 << 3) | 1;
const VALUE_STRING = (3 << 3) | 2;
const VALUE_BOOL = (4 << 3) | 0;
const VALUE_STRUCT = (5 << 3) | 2;
const VALUE_LIST = (6 << 3) | 2;
const LIST_VALUES = (1 << 3) | 2;

type JsonObject = { [key: string]: AttributeValue };

/** A `__proto__` key must become an own property, not the object's prototype. */
function setEntry<T>(target: { [key: string]: T }, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * One map entry of a Struct: the key, and where its Value lies (-1: no value). Key and value may
 * come in either order, so the value is read only once the entry has been scanned.
 */
interface EntryBounds {
  key: string;
  valueStart: number;
  valueEnd: number;
}

function scanEntry(r: ProtobufReader, entry: EntryBounds): void {
  const outer = r.enter();
  entry.key = '';
  entry.valueStart = -1;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ENTRY_KEY) entry.key = r.string();
    else if (tag === ENTRY_VALUE) {
      const n = r.length();
      entry.valueStart = r.pos;
      entry.valueEnd = r.pos + n;
      r.pos += n;
    } else r.skip(tag);
  }
  r.leave(outer);
}

// ---- fast path: bytes → JSON ------------------------------------------------------------------

/** Struct bytes → JSON; throws WireFormatError on bytes that are not a Struct. */
export function decodeStructJson(bytes: Uint8Array, maxDepth: number): JsonObject {
  return readStructJson(new ProtobufReader(bytes), 1, maxDepth);
}

/** Reads a Struct up to r.end; `depth` is its own (the top level is 1, and within the limit). */
function readStructJson(r: ProtobufReader, depth: number, maxDepth: number): JsonObject {
  const out: JsonObject = {};
  const entry: EntryBounds = { key: '', valueStart: -1, valueEnd: -1 };
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag !== STRUCT_FIELDS) {
      r.skip(tag);
      continue;
    }
    scanEntry(r, entry);
    let value: AttributeValue = null;
    if (entry.valueStart >= 0) {
      // Read the value in place, then come back to the next entry (no closures on this hot path).
      const pos = r.pos;
      const outerEnd = r.end;
      r.pos = entry.valueStart;
      r.end = entry.valueEnd;
      value = readValueJson(r, depth, maxDepth);
      r.pos = pos;
      r.end = outerEnd;
    }
    setEntry(out, entry.key, value);
  }
  return out;
}

const KIND_NONE = 0;
const KIND_NUMBER = 1;
const KIND_STRING = 2;
const KIND_BOOL = 3;
const KIND_STRUCT = 4;
const KIND_LIST = 5;

/** Reads a Value up to r.end; `depth` is that of the struct or list holding it. */
function readValueJson(r: ProtobufReader, depth: number, maxDepth: number): AttributeValue {
  let kind = KIND_NONE;
  let number = 0;
  let text = '';
  let flag = false;
  let start = 0;
  let end = 0;
  // A oneof: the last kind on the wire wins, so nested values are read only after the scan.
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag) {
      case VALUE_NULL:
        r.varint();
        kind = KIND_NONE;
        break;
      case VALUE_NUMBER:
        number = r.double();
        kind = KIND_NUMBER;
        break;
      case VALUE_STRING:
        text = r.string();
        kind = KIND_STRING;
        break;
      case VALUE_BOOL:
        flag = r.bool();
        kind = KIND_BOOL;
        break;
      case VALUE_STRUCT:
      case VALUE_LIST: {
        const n = r.length();
        start = r.pos;
        end = start + n;
        r.pos = end;
        kind = tag === VALUE_STRUCT ? KIND_STRUCT : KIND_LIST;
        break;
      }
      default:
        r.skip(tag);
    }
  }
  switch (kind) {
    case KIND_NUMBER:
      return number;
    case KIND_STRING:
      return text;
    case KIND_BOOL:
      return flag;
    case KIND_STRUCT:
    case KIND_LIST: {
      if (depth + 1 > maxDepth) return TOO_DEEP;
      // The value's own bytes end where its Value ends; read them, then leave the reader at that end.
      const valueEnd = r.end;
      r.pos = start;
      r.end = end;
      const nested = kind === KIND_STRUCT ? readStructJson(r, depth + 1, maxDepth) : readListJson(r, depth + 1, maxDepth);
      r.pos = valueEnd;
      r.end = valueEnd;
      return nested;
    }
    default:
      return null;
  }
}

function readListJson(r: ProtobufReader, depth: number, maxDepth: number): AttributeValue[] {
  const out: AttributeValue[] = [];
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag !== LIST_VALUES) {
      r.skip(tag);
      continue;
    }
    const outer = r.enter();
    out.push(readValueJson(r, depth, maxDepth));
    r.leave(outer);
  }
  return out;
}
