/**
 * cel-spec conformance data (the protobuf-JSON form of `cel.expr.Value` / `cel.expr.Type` shipped by
 * @bufbuild/cel-spec) converted to the runtime values and type names cel-js uses, and compared with
 * what cel-js returns. Kept free of @bufbuild/protobuf: the JSON form is plain data.
 */
import { evaluate, Optional } from '@marcbachmann/cel-js';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';

/** cel-js does not export its `Type` class; take it from a value it produces. */
const CelType = (evaluate('int') as object).constructor as new (name: string) => { readonly name: string };

/** Thrown while converting test data that only makes sense with protobuf message support. */
export class NeedsProto extends Error {}
/** Thrown while converting test data this harness (or cel-js) cannot express at all. */
export class Unsupported extends Error {}

/** Protobuf-JSON `cel.expr.Value` (only the fields the simple tests use). */
export type JsonValue = Record<string, unknown>;

/** Well-known types that cel-js supports natively (as Date and Duration). */
const NATIVE_WKT = new Set(['google.protobuf.Timestamp', 'google.protobuf.Duration']);

function typeUrlName(o: Record<string, unknown>): string {
  const url = String(o['@type'] ?? '');
  return url.slice(url.lastIndexOf('/') + 1);
}

/** Total nanoseconds of a protobuf-JSON duration such as "-1.5s" or "123.321456789s". */
export function durationNanos(text: string): bigint {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!m) throw new Unsupported(`bad duration literal ${text}`);
  const total = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0') || '0');
  return m[1] ? -total : total;
}

/** Nanoseconds since the epoch of an RFC 3339 timestamp (with up to 9 fractional digits). */
export function timestampNanos(text: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) throw new Unsupported(`bad timestamp literal ${text}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) throw new Unsupported(`bad timestamp literal ${text}`);
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

function bytesOf(b64: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(String(b64 ?? ''), 'base64'));
}

function doubleOf(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return Number(v);
}

/** Converts a test value (a binding) to what cel-js expects at runtime. */
export function toCel(v: JsonValue): unknown {
  if ('nullValue' in v) return null;
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('int64Value' in v) return BigInt(String(v.int64Value));
  if ('uint64Value' in v) return new UnsignedInt(BigInt(String(v.uint64Value)));
  if ('doubleValue' in v) return doubleOf(v.doubleValue);
  if ('stringValue' in v) return String(v.stringValue);
  if ('bytesValue' in v) return bytesOf(v.bytesValue);
  if ('listValue' in v) {
    const values = ((v.listValue as { values?: JsonValue[] }).values ?? []);
    return values.map(toCel);
  }
  if ('mapValue' in v) {
    const entries = ((v.mapValue as { entries?: { key: JsonValue; value: JsonValue }[] }).entries ?? []);
    if (entries.every((e) => 'stringValue' in e.key)) {
      const obj: Record<string, unknown> = {};
      for (const e of entries) Object.defineProperty(obj, String(e.key.stringValue), { value: toCel(e.value), enumerable: true, writable: true, configurable: true });
      return obj;
    }
    return new Map(entries.map((e) => [toCel(e.key), toCel(e.value)]));
  }
  if ('typeValue' in v) return new CelType(celTypeName(String(v.typeValue)));
  if ('enumValue' in v) throw new NeedsProto('enum value');
  if ('objectValue' in v) {
    const o = v.objectValue as Record<string, unknown>;
    const name = typeUrlName(o);
    if (name === 'google.protobuf.Duration') {
      const n = durationNanos(String(o.value));
      return new Duration(n / 1_000_000_000n, Number(n % 1_000_000_000n));
    }
    if (name === 'google.protobuf.Timestamp') {
      const n = timestampNanos(String(o.value));
      if (n % 1_000_000n !== 0n) throw new Unsupported('timestamp below millisecond precision (JS Date)');
      return new Date(Number(n / 1_000_000n));
    }
    throw new NeedsProto(`message ${name}`);
  }
  throw new Unsupported(`value ${JSON.stringify(v)}`);
}

/** cel-spec type names (as in `typeValue`) to the names cel-js gives its Type objects. */
function celTypeName(specName: string): string {
  return specName === 'null_type' ? 'null' : specName;
}

/** True when a test value needs protobuf message support to be represented. */
export function valueNeedsProto(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  if ('enumValue' in o) return true;
  if ('objectValue' in o) return !NATIVE_WKT.has(typeUrlName(o.objectValue as Record<string, unknown>));
  if ('typeValue' in o) return /^cel\.expr\.conformance\./.test(String(o.typeValue));
  return Object.values(o).some(valueNeedsProto);
}

function describe(x: unknown): string {
  if (typeof x === 'bigint') return `${x}`;
  if (x instanceof UnsignedInt) return `${x.valueOf()}u`;
  if (x instanceof Uint8Array) return `b[${Array.from(x).join(',')}]`;
  if (x instanceof Date) return Number.isNaN(x.getTime()) ? 'Invalid Date' : x.toISOString();
  if (x instanceof Duration) return `duration(${x.toString()})`;
  if (x instanceof CelType) return `type(${x.name})`;
  if (x instanceof Optional) return x.hasValue() ? `optional.of(${describe(x.value())})` : 'optional.none()';
  if (x instanceof Map) return `{${[...x].map(([k, v]) => `${describe(k)}: ${describe(v)}`).join(', ')}}`;
  if (Array.isArray(x)) return `[${x.map(describe).join(', ')}]`;
  if (x instanceof Set) return `[${[...x].map(describe).join(', ')}]`;
  if (x !== null && typeof x === 'object') {
    if (x.constructor !== Object && x.constructor !== undefined) return `${x.constructor.name}{...}`;
    return `{${Object.entries(x).map(([k, v]) => `${JSON.stringify(k)}: ${describe(v)}`).join(', ')}}`;
  }
  if (typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number') return Object.is(x, -0) ? '-0.0' : Number.isInteger(x) ? `${x}.0` : `${x}`;
  return String(x);
}

/** Short text of a cel-js runtime value, for failure messages. */
export function show(x: unknown): string {
  const s = describe(x);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** Short text of an expected test value. */
export function showExpected(v: JsonValue): string {
  try {
    return show(toCel(v));
  } catch {
    const s = JSON.stringify(v);
    return s.length > 160 ? `${s.slice(0, 157)}...` : s;
  }
}

/** Map keys: CEL compares int and uint keys numerically; cel-js literals stringify keys. */
function keyText(k: unknown): string {
  if (k instanceof UnsignedInt) return String(k.valueOf());
  return String(k);
}

function sameKey(a: unknown, b: unknown): boolean {
  const num = (x: unknown): bigint | undefined => (typeof x === 'bigint' ? x : x instanceof UnsignedInt ? x.valueOf() : undefined);
  const na = num(a);
  const nb = num(b);
  if (na !== undefined || nb !== undefined) return na === nb;
  return a === b;
}

/**
 * Compares an actual cel-js result with an expected test value. Returns undefined when they match,
 * else a short reason. CEL semantics for values: int/uint/double are distinct types (a bigint is
 * not a uint), NaN equals NaN here (the test data uses NaN as an expected value), lists are ordered,
 * maps are not.
 */
export function mismatch(expected: JsonValue, actual: unknown): string | undefined {
  const want = (): string => `expected ${showExpected(expected)}, got ${show(actual)}`;
  if ('nullValue' in expected) return actual === null ? undefined : want();
  if ('boolValue' in expected) return actual === Boolean(expected.boolValue) ? undefined : want();
  if ('stringValue' in expected) return actual === String(expected.stringValue) ? undefined : want();
  if ('int64Value' in expected) {
    if (typeof actual !== 'bigint') return `${want()} (not an int)`;
    return actual === BigInt(String(expected.int64Value)) ? undefined : want();
  }
  if ('uint64Value' in expected) {
    if (!(actual instanceof UnsignedInt)) return `${want()} (not a uint)`;
    return actual.valueOf() === BigInt(String(expected.uint64Value)) ? undefined : want();
  }
  if ('doubleValue' in expected) {
    if (typeof actual !== 'number') return `${want()} (not a double)`;
    const d = doubleOf(expected.doubleValue);
    return actual === d || (Number.isNaN(d) && Number.isNaN(actual)) ? undefined : want();
  }
  if ('bytesValue' in expected) {
    if (!(actual instanceof Uint8Array)) return `${want()} (not bytes)`;
    const b = bytesOf(expected.bytesValue);
    return b.length === actual.length && b.every((x, i) => actual[i] === x) ? undefined : want();
  }
  if ('typeValue' in expected) {
    if (!(actual instanceof CelType)) return `${want()} (not a type)`;
    return actual.name === celTypeName(String(expected.typeValue)) ? undefined : want();
  }
  if ('listValue' in expected) {
    const values = ((expected.listValue as { values?: JsonValue[] }).values ?? []);
    const items = Array.isArray(actual) ? actual : actual instanceof Set ? [...actual] : undefined;
    if (!items) return `${want()} (not a list)`;
    if (items.length !== values.length) return want();
    for (let i = 0; i < values.length; i++) {
      const why = mismatch(values[i]!, items[i]);
      if (why) return `${want()} (element ${i}: ${why})`;
    }
    return undefined;
  }
  if ('mapValue' in expected) {
    const entries = ((expected.mapValue as { entries?: { key: JsonValue; value: JsonValue }[] }).entries ?? []);
    let actualEntries: [unknown, unknown][];
    if (actual instanceof Map) actualEntries = [...actual];
    else if (actual !== null && typeof actual === 'object' && (actual.constructor === Object || actual.constructor === undefined)) actualEntries = Object.entries(actual);
    else return `${want()} (not a map)`;
    if (actualEntries.length !== entries.length) return want();
    for (const e of entries) {
      const k = toCel(e.key);
      // A Map keeps key types; a plain object (what cel-js makes of map literals) has string keys
      // only, so there a key matches by its text: {1: 'a'} comes back as {'1': 'a'}.
      const hit = actual instanceof Map ? actualEntries.find(([ak]) => sameKey(ak, k)) : actualEntries.find(([ak]) => ak === keyText(k));
      if (!hit) return `${want()} (missing key ${show(k)})`;
      const why = mismatch(e.value, hit[1]);
      if (why) return `${want()} (key ${show(k)}: ${why})`;
    }
    return undefined;
  }
  if ('objectValue' in expected) {
    const o = expected.objectValue as Record<string, unknown>;
    const name = typeUrlName(o);
    if (name === 'google.protobuf.Duration') {
      if (!(actual instanceof Duration)) return `${want()} (not a duration)`;
      const got = actual.seconds * 1_000_000_000n + BigInt(actual.nanos);
      return got === durationNanos(String(o.value)) ? undefined : want();
    }
    if (name === 'google.protobuf.Timestamp') {
      if (!(actual instanceof Date)) return `${want()} (not a timestamp)`;
      const n = timestampNanos(String(o.value));
      return BigInt(actual.getTime()) * 1_000_000n === n ? undefined : `expected ${String(o.value)}, got ${show(actual)}`;
    }
    throw new NeedsProto(`message ${name}`);
  }
  if ('enumValue' in expected) throw new NeedsProto('enum value');
  throw new Unsupported(`expected value ${JSON.stringify(expected)}`);
}

const PRIMITIVES: Record<string, string> = {
  BOOL: 'bool',
  INT64: 'int',
  UINT64: 'uint',
  DOUBLE: 'double',
  STRING: 'string',
  BYTES: 'bytes',
};

/** A protobuf-JSON `cel.expr.Type` as a cel-js type string ('list<int>', 'map<string, dyn>', 'T', ...). */
export function celTypeString(t: Record<string, unknown>): string {
  if ('primitive' in t) {
    const p = PRIMITIVES[String(t.primitive)];
    if (!p) throw new Unsupported(`primitive ${String(t.primitive)}`);
    return p;
  }
  if ('dyn' in t) return 'dyn';
  if ('null' in t) return 'null';
  if ('type' in t) return 'type';
  if ('typeParam' in t) {
    const name = String(t.typeParam);
    if (!/^[A-Z]$/.test(name)) throw new Unsupported(`type parameter ${name} (cel-js takes single capital letters)`);
    return name;
  }
  if ('listType' in t) {
    const elem = (t.listType as { elemType?: Record<string, unknown> }).elemType;
    return `list<${elem ? celTypeString(elem) : 'dyn'}>`;
  }
  if ('mapType' in t) {
    const m = t.mapType as { keyType?: Record<string, unknown>; valueType?: Record<string, unknown> };
    return `map<${m.keyType ? celTypeString(m.keyType) : 'dyn'}, ${m.valueType ? celTypeString(m.valueType) : 'dyn'}>`;
  }
  if ('wellKnown' in t) {
    if (t.wellKnown === 'DURATION') return 'google.protobuf.Duration';
    if (t.wellKnown === 'TIMESTAMP') return 'google.protobuf.Timestamp';
    throw new NeedsProto(`well-known type ${String(t.wellKnown)}`);
  }
  if ('messageType' in t) {
    const name = String(t.messageType);
    if (NATIVE_WKT.has(name)) return name;
    throw new NeedsProto(`message type ${name}`);
  }
  if ('wrapper' in t) throw new NeedsProto(`wrapper type ${String(t.wrapper)}`);
  if ('abstractType' in t) {
    const a = t.abstractType as { name: string; parameterTypes?: Record<string, unknown>[] };
    if (a.name === 'optional_type' && a.parameterTypes?.length === 1) return `optional<${celTypeString(a.parameterTypes[0]!)}>`;
    throw new Unsupported(`abstract type ${a.name}`);
  }
  throw new Unsupported(`type ${JSON.stringify(t)}`);
}

/** True when a protobuf-JSON type mentions a protobuf message (other than Timestamp/Duration) or wrapper. */
export function typeNeedsProto(t: unknown): boolean {
  if (t === null || typeof t !== 'object') return false;
  const o = t as Record<string, unknown>;
  if ('wrapper' in o) return true;
  if ('messageType' in o) return !NATIVE_WKT.has(String(o.messageType));
  if ('wellKnown' in o) return o.wellKnown !== 'DURATION' && o.wellKnown !== 'TIMESTAMP';
  return Object.values(o).some(typeNeedsProto);
}

/** cel-js reports `list<dyn>` as 'list' and `map<dyn, dyn>` as 'map'; compare in one spelling. */
export function normalizeTypeName(name: string): string {
  if (name === 'list') return 'list<dyn>';
  if (name === 'map') return 'map<dyn, dyn>';
  return name.replace(/\s+/g, '').replace(/,/g, ', ');
}
