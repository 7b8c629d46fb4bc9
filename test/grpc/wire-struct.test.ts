/**
 * google.protobuf.Struct bytes that protobufjs never writes but other encoders may: map entries
 * with the value before the key, unknown fields inside Struct/Value/ListValue, repeated keys,
 * entries without key or value. The bytes decoder must agree with the object form (proto-loader's
 * decoding + structToAttributes), errors included.
 */
import { expect } from 'chai';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { InvalidRequestError } from '../../src/engine/input.js';
import { structToAttributes } from '../../src/grpc/struct.js';
import type { ProtoCheckRequest } from '../../src/grpc/translate.js';
import { decodeCheckRequest } from '../../src/grpc/wire/verdict-requests.js';
import { lengthDelimited, prng, protoLoaderMethod, Random, SEED, stringField, unknownField } from './wire-random.js';

const check = protoLoaderMethod('Check');
const depth = (maxAttributeDepth: number) => ({ ...DEFAULT_CONFIG.limits, maxAttributeDepth });

interface Shape {
  readonly r: Random;
  /** Chance of each oddity per entry / value. */
  readonly odd: number;
}

function withUnknown(s: Shape, parts: Buffer[]): Buffer {
  if (s.r.chance(s.odd)) parts.splice(s.r.int(parts.length + 1), 0, unknownField(s.r));
  return Buffer.concat(parts);
}

function valueBytes(v: unknown, s: Shape): Buffer {
  let body: Buffer;
  if (v === null) body = Buffer.from([0x08, 0x00]);
  else if (typeof v === 'number') {
    body = Buffer.alloc(9);
    body[0] = 0x11;
    body.writeDoubleLE(v, 1);
  } else if (typeof v === 'string') body = stringField(3, v);
  else if (typeof v === 'boolean') body = Buffer.from([0x20, v ? 1 : 0]);
  else if (Array.isArray(v)) body = lengthDelimited(6, withUnknown(s, v.map((item) => lengthDelimited(1, valueBytes(item, s)))));
  else body = lengthDelimited(5, structBytes(v as Record<string, unknown>, s));
  return withUnknown(s, [body]);
}

function structBytes(o: Record<string, unknown>, s: Shape): Buffer {
  const entries: Buffer[] = [];
  for (const [k, v] of Object.entries(o)) {
    // Now and then the same key first with another value: the last one on the wire must win.
    if (s.r.chance(s.odd / 2)) entries.push(entryBytes(k, s.r.chance(0.5) ? Number.NaN : 'replaced', s));
    entries.push(entryBytes(k, v, s));
  }
  return withUnknown(s, entries);
}

function entryBytes(k: string, v: unknown, s: Shape): Buffer {
  const key = stringField(1, k);
  const value = lengthDelimited(2, valueBytes(v, s));
  return lengthDelimited(1, withUnknown(s, s.r.chance(s.odd) ? [value, key] : [key, value]));
}

/** A CheckRequest with only `context`, holding these Struct bytes. */
function contextRequest(struct: Uint8Array): Buffer {
  return lengthDelimited(4, struct);
}

function attributesOutcome(read: () => unknown): unknown {
  try {
    return { value: read() };
  } catch (err) {
    if (err instanceof InvalidRequestError) return { error: err.message };
    throw err;
  }
}

function expectSameAsObjectForm(struct: Uint8Array, maxDepth: number): unknown {
  const bytes = contextRequest(struct);
  const ours = attributesOutcome(() => structToAttributes(decodeCheckRequest(bytes).context, 'context', depth(maxDepth)));
  const theirs = attributesOutcome(() => structToAttributes((check.requestDeserialize(bytes) as ProtoCheckRequest).context, 'context', depth(maxDepth)));
  expect(ours).to.deep.equal(theirs);
  return ours;
}

describe('gRPC wire codec: Struct bytes protobufjs would not write', () => {
  it('random attributes with reordered entries, unknown fields and repeated keys: same as the object form', () => {
    const r = new Random(prng(SEED + 11));
    for (let i = 0; i < 800; i++) {
      try {
        const maxDepth = 1 + r.int(5);
        expectSameAsObjectForm(structBytes(r.attributes(maxDepth + 1), { r, odd: 0.3 }), maxDepth);
      } catch (err) {
        (err as Error).message = `WIRE_CODEC_SEED=${SEED}, case ${i}: ${(err as Error).message}`;
        throw err;
      }
    }
  });

  it('a repeated key whose first value is invalid is not refused (the last value wins)', () => {
    const s = { r: new Random(prng(1)), odd: 0 };
    const struct = Buffer.concat([entryBytes('a', Number.NaN, s), entryBytes('a', 2, s)]);
    expect(expectSameAsObjectForm(struct, 3)).to.deep.equal({ value: { a: 2 } });
  });

  it('with several invalid values, names the first in JavaScript key order, like the object form', () => {
    const s = { r: new Random(prng(1)), odd: 0 };
    const struct = Buffer.concat([entryBytes('b', Number.NaN, s), entryBytes('7', Number.POSITIVE_INFINITY, s)]);
    expect(expectSameAsObjectForm(struct, 3)).to.deep.equal({ error: 'context.7: must be a finite number' });
  });

  it('an entry without a value is null; an entry without a key has the key ""', () => {
    const noValue = lengthDelimited(1, stringField(1, 'k'));
    const noKey = lengthDelimited(1, lengthDelimited(2, Buffer.from([0x20, 0x01])));
    const bytes = contextRequest(Buffer.concat([noValue, noKey]));
    // protobufjs cannot convert the first entry (toObject of a null Value throws), so no comparison here.
    expect(structToAttributes(decodeCheckRequest(bytes).context, 'context', depth(3))).to.deep.equal({ k: null, '': true });
  });

  it('a Value with two kinds on the wire: the last one wins (protobufjs would keep both)', () => {
    const value = Buffer.concat([stringField(3, 'first'), Buffer.from([0x20, 0x01])]);
    const bytes = contextRequest(lengthDelimited(1, Buffer.concat([stringField(1, 'k'), lengthDelimited(2, value)])));
    expect(structToAttributes(decodeCheckRequest(bytes).context, 'context', depth(3))).to.deep.equal({ k: true });
  });

  it('an empty struct or list past the depth limit is still refused, as in the object form', () => {
    const s = { r: new Random(prng(1)), odd: 0 };
    expect(expectSameAsObjectForm(structBytes({ a: { b: {} } }, s), 2)).to.deep.equal({ error: 'context.a.b: nests deeper than 2 levels (limits.maxAttributeDepth)' });
    expect(expectSameAsObjectForm(structBytes({ a: { b: [] } }, s), 2)).to.deep.equal({ error: 'context.a.b: nests deeper than 2 levels (limits.maxAttributeDepth)' });
    expect(expectSameAsObjectForm(structBytes({ a: [[]] }, s), 2)).to.deep.equal({ error: 'context.a[0]: nests deeper than 2 levels (limits.maxAttributeDepth)' });
  });

  it('a known field with another wire type is skipped as unknown', () => {
    // Struct.fields (1) as a varint, then a proper entry.
    const s = { r: new Random(prng(1)), odd: 0 };
    const struct = Buffer.concat([Buffer.from([0x08, 0x2a]), entryBytes('k', 'v', s)]);
    expect(structToAttributes(decodeCheckRequest(contextRequest(struct)).context, 'context', depth(3))).to.deep.equal({ k: 'v' });
  });
});
