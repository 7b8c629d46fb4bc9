/**
 * The hand-written Check/CheckBatch wire codec (src/grpc/wire) against proto-loader (protobufjs):
 * random messages encoded by protobufjs must decode and translate to the same requests (or the
 * same InvalidRequestError); our responses must be the bytes protobufjs writes. Failures name the
 * seed: rerun with WIRE_CODEC_SEED=<seed> to replay.
 */
import { expect } from 'chai';
import type { ServiceLimits } from '../../src/config/schema.js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { InvalidRequestError } from '../../src/engine/input.js';
import { structToAttributes } from '../../src/grpc/struct.js';
import { toBatchRequests, toCheckRequest, type ProtoCheckBatchRequest, type ProtoCheckRequest } from '../../src/grpc/translate.js';
import { WireFormatError } from '../../src/grpc/wire/protobuf-reader.js';
import { decodeCheckBatchRequest, decodeCheckRequest } from '../../src/grpc/wire/verdict-requests.js';
import { encodeCheckBatchResponse, encodeCheckResponse } from '../../src/grpc/wire/verdict-responses.js';
import { protoLoaderMethod, prng, Random, randomCheckBatchRequest, randomCheckRequest, randomCheckResponse, SEED, unknownField } from './wire-random.js';

const check = protoLoaderMethod('Check');
const batch = protoLoaderMethod('CheckBatch');

function limitsFor(r: Random): ServiceLimits {
  return { ...DEFAULT_CONFIG.limits, maxAttributeDepth: 1 + r.int(5), maxRoles: 3, maxIdentifierLength: 40, maxBatchItems: 5, maxMessageBytes: 1 << 20 };
}

type Outcome = { value: unknown } | { error: string };

/** A translation's result, or the InvalidRequestError it refused with; anything else fails the test. */
function outcome(translate: () => unknown): Outcome {
  try {
    return { value: translate() };
  } catch (err) {
    if (err instanceof InvalidRequestError) return { error: err.message };
    throw err;
  }
}

/** What the handlers use of a decoded CheckRequest: the translation plus the plain fields. */
function checkView(msg: ProtoCheckRequest, limits: ServiceLimits): Outcome {
  return outcome(() => ({ request: toCheckRequest(msg, limits), explain: msg.explain, requestId: msg.requestId, token: msg.token }));
}

function batchView(msg: ProtoCheckBatchRequest, limits: ServiceLimits): Outcome {
  return outcome(() => ({ requests: toBatchRequests(msg, limits), explain: msg.explain, requestId: msg.requestId, token: msg.token }));
}

/** Runs `count` seeded cases; a failure names the seed and the case. */
function cases(count: number, salt: number, run: (r: Random, i: number) => void): void {
  const r = new Random(prng(SEED + salt));
  for (let i = 0; i < count; i++) {
    try {
      run(r, i);
    } catch (err) {
      (err as Error).message = `WIRE_CODEC_SEED=${SEED}, case ${i}: ${(err as Error).message}`;
      throw err;
    }
  }
}

/** Our decoding must succeed like protobufjs's, or refuse with a wire error / InvalidRequestError. */
function expectSafeDecode(bytes: Buffer, limits: ServiceLimits, method: 'Check' | 'CheckBatch'): Outcome | 'malformed' {
  let decoded: ProtoCheckRequest | ProtoCheckBatchRequest;
  try {
    decoded = method === 'Check' ? decodeCheckRequest(bytes) : decodeCheckBatchRequest(bytes);
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(WireFormatError);
    return 'malformed';
  }
  return method === 'Check' ? checkView(decoded, limits) : batchView(decoded as ProtoCheckBatchRequest, limits);
}

describe('gRPC wire codec: hand-written Check/CheckBatch codec vs proto-loader', () => {
  it('decodes random CheckRequests to the same requests (or the same refusal)', () => {
    cases(1500, 1, (r) => {
      const limits = limitsFor(r);
      const bytes = check.requestSerialize(randomCheckRequest(r, limits.maxAttributeDepth + 1));
      expect(checkView(decodeCheckRequest(bytes), limits)).to.deep.equal(checkView(check.requestDeserialize(bytes) as ProtoCheckRequest, limits));
    });
  });

  it('decodes random CheckBatchRequests to the same requests (or the same refusal)', () => {
    cases(600, 2, (r) => {
      const limits = limitsFor(r);
      const bytes = batch.requestSerialize(randomCheckBatchRequest(r, limits.maxAttributeDepth + 1));
      expect(batchView(decodeCheckBatchRequest(bytes), limits)).to.deep.equal(batchView(batch.requestDeserialize(bytes) as ProtoCheckBatchRequest, limits));
    });
  });

  it('takes fields in any order, with unknown fields of every wire type among them', () => {
    cases(400, 3, (r) => {
      const limits = limitsFor(r);
      const msg = randomCheckRequest(r, limits.maxAttributeDepth);
      // A message is the concatenation of its fields: encode each alone, shuffle, add unknown ones.
      const parts = Object.entries(msg).map(([k, v]) => check.requestSerialize({ [k]: v }));
      for (let n = r.int(4); n > 0; n--) parts.push(unknownField(r));
      for (let i = parts.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [parts[i], parts[j]] = [parts[j]!, parts[i]!];
      }
      const expected = checkView(check.requestDeserialize(check.requestSerialize(msg)) as ProtoCheckRequest, limits);
      expect(checkView(decodeCheckRequest(Buffer.concat(parts)), limits)).to.deep.equal(expected);
    });
  });

  it('refuses every truncation with a wire error, or decodes it exactly as protobufjs does', () => {
    cases(150, 4, (r) => {
      const limits = limitsFor(r);
      const method = r.chance(0.5) ? 'Check' : 'CheckBatch';
      const def = method === 'Check' ? check : batch;
      const msg = method === 'Check' ? randomCheckRequest(r, 3) : randomCheckBatchRequest(r, 3);
      const bytes = def.requestSerialize(msg);
      for (let cut = 0; cut < bytes.length; cut += 1 + r.int(4)) {
        const prefix = bytes.subarray(0, cut);
        const ours = expectSafeDecode(prefix, limits, method);
        // Ours decodes only prefixes that end between top-level fields, which protobufjs reads alike.
        if (ours !== 'malformed') {
          const theirs = def.requestDeserialize(prefix);
          expect(ours).to.deep.equal(method === 'Check' ? checkView(theirs as ProtoCheckRequest, limits) : batchView(theirs as ProtoCheckBatchRequest, limits));
        }
      }
    });
  });

  it('survives corrupted bytes: a value, an InvalidRequestError or a wire error, nothing else', () => {
    cases(1500, 5, (r) => {
      const limits = limitsFor(r);
      const bytes = Buffer.from(check.requestSerialize(randomCheckRequest(r, 4)));
      for (let n = 1 + r.int(3); n > 0 && bytes.length > 0; n--) bytes[r.int(bytes.length)] = r.int(256);
      expectSafeDecode(bytes, limits, 'Check');
    });
  });

  it('refuses a request whose Struct is cut short, naming the field', () => {
    // context = Struct{ fields: { "a": <a Value whose string claims 5 bytes but has 1> } } with consistent outer lengths.
    const value = Buffer.from([0x1a, 0x05, 0x78]);
    const entry = Buffer.concat([Buffer.from([0x0a, 0x01, 0x61, 0x12, value.length]), value]);
    const struct = Buffer.concat([Buffer.from([0x0a, entry.length]), entry]);
    const bytes = Buffer.concat([check.requestSerialize({ subject: { id: 'a' }, action: { name: 'r' }, resource: { type: 't' } }), Buffer.from([0x22, struct.length]), struct]);
    const limits: ServiceLimits = { ...DEFAULT_CONFIG.limits, maxAttributeDepth: 5, maxRoles: 3, maxIdentifierLength: 40, maxBatchItems: 5, maxMessageBytes: 1 << 20 };
    const result = checkView(decodeCheckRequest(bytes), limits);
    expect(result).to.have.property('error').that.matches(/^context: not a valid google\.protobuf\.Struct \(.*runs past the end/);
  });

  it('encodes random CheckResponses to the bytes protobufjs writes', () => {
    cases(1500, 6, (r) => {
      const response = randomCheckResponse(r);
      const ours = encodeCheckResponse(response);
      expect(ours.equals(check.responseSerialize(response)), 'same bytes').to.equal(true);
      expect(check.responseDeserialize(ours)).to.deep.equal(check.responseDeserialize(check.responseSerialize(response)));
    });
  });

  it('encodes random CheckBatchResponses to the bytes protobufjs writes', () => {
    cases(400, 7, (r) => {
      const response = { results: Array.from({ length: r.int(31) }, () => randomCheckResponse(r)), revision: r.string() };
      const ours = encodeCheckBatchResponse(response);
      expect(ours.equals(batch.responseSerialize(response)), 'same bytes').to.equal(true);
      expect(batch.responseDeserialize(ours)).to.deep.equal(batch.responseDeserialize(batch.responseSerialize(response)));
    });
  });

  it('writes a lone surrogate as U+FFFD (valid UTF-8; protobufjs writes an invalid sequence)', () => {
    const response = { decision: 'EFFECT_DENY', allowed: false, policy: 'p\ud800q', rule: '', reason: '', revision: '', decisionId: '' } as const;
    const decoded = check.responseDeserialize(encodeCheckResponse(response)) as { policy: string };
    expect(decoded.policy).to.equal('p\ufffdq');
  });

  it('keeps a __proto__ attribute key as an own property, in both Struct forms', () => {
    const bytes = check.requestSerialize({ context: { fields: JSON.parse('{"__proto__": {"structValue": {"fields": {"polluted": {"boolValue": true}}}}}') } });
    const theirs = structToAttributes((check.requestDeserialize(bytes) as ProtoCheckRequest).context, 'context', { ...DEFAULT_CONFIG.limits, maxAttributeDepth: 5 });
    const ours = structToAttributes(decodeCheckRequest(bytes).context, 'context', { ...DEFAULT_CONFIG.limits, maxAttributeDepth: 5 });
    for (const attributes of [ours, theirs]) {
      expect(Object.getPrototypeOf(attributes)).to.equal(Object.prototype);
      expect(Object.keys(attributes)).to.deep.equal(['__proto__']);
      expect((attributes as Record<string, unknown>).polluted).to.equal(undefined);
    }
    expect(ours).to.deep.equal(theirs);
  });
});
