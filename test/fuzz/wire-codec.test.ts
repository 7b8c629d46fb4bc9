/**
 * Property-based fuzzing of the gRPC wire codec (Check and CheckBatch), with fast-check:
 *
 *  - generated requests (hostile strings and keys, NaN, deep and wide attributes around every
 *    request limit) are decoded by Verdict's codec exactly as proto-loader's object form is, and
 *    refused with the same INVALID_ARGUMENT message as the same request sent as JSON;
 *  - a request that is accepted gets the same decision from the example policies as its JSON form
 *    (the reference): the wire path never allows what the JSON path denies;
 *  - mutated bytes (flipped, cut, spliced, repeated) decode to a request or are refused with a wire
 *    or request error, nothing else, and quickly.
 *
 * VERDICT_FUZZ_RUNS sets the number of cases per property (`make fuzz` runs many more).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import type { ServiceLimits } from '../../src/config/schema.js';
import { decide, type CompiledPolicySet, type Decision } from '../../src/engine/index.js';
import { parseCheckRequest } from '../../src/engine/input.js';
import { InvalidRequestError } from '../../src/engine/validate.js';
import { toProtoCheckRequest, type JsonCheckRequest } from '../../src/grpc/client.js';
import { toBatchRequests, toCheckRequest, type ProtoCheckBatchRequest, type ProtoCheckRequest } from '../../src/grpc/translate.js';
import { WireFormatError } from '../../src/grpc/wire/protobuf-reader.js';
import { decodeCheckBatchRequest, decodeCheckRequest } from '../../src/grpc/wire/verdict-requests.js';
import { loadPolicyDirectory } from '../../src/policy/index.js';
import { protoLoaderMethod } from '../grpc/wire-random.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 300);
/** Slowest a single case may take (decode, translate and decide), whatever the input. */
const CASE_MS = 500;

const check = protoLoaderMethod('Check');
const batch = protoLoaderMethod('CheckBatch');

// Small limits, so generated requests cross each of them often.
const LIMITS: ServiceLimits = {
  ...DEFAULT_CONFIG.limits,
  maxAttributeDepth: 4,
  maxRoles: 4,
  maxIdentifierLength: 32,
  maxAttributes: 6,
  maxAttributeItems: 12,
  maxStringBytes: 48,
  maxAttributeBytes: 160,
  maxBatchItems: 4,
};

const text = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('alice', 'bob', 'employee', 'admin', 'editor', 'document', 'folder', 'read', 'edit', 'delete', 'eng', 'published', '10.1.2.3', '') },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', '€'.repeat(16), '€'.repeat(17), 'x'.repeat(33), 'y'.repeat(49)) },
);

const { value: attributeValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.constantFrom(0, 1, 2, 3, -0, 1.5, Number.NaN, Infinity, -Infinity, 1e308),
    text,
    fc.array(tie('value'), { maxLength: 14 }),
    fc.dictionary(text, tie('value'), { maxKeys: 8 }),
  ),
}));

const attributes = fc.dictionary(text, attributeValue, { maxKeys: 8 }) as fc.Arbitrary<Record<string, unknown>>;

const target = fc.record({
  action: text,
  resource: fc.record({ type: fc.oneof(fc.constantFrom('document', 'folder', 'report'), text), id: text, attributes }),
});

const jsonRequest: fc.Arbitrary<JsonCheckRequest> = fc
  .record({
    subject: fc.record({ type: fc.option(text, { nil: undefined }), id: text, roles: fc.array(text, { maxLength: 6 }), attributes }),
    target,
    context: attributes,
  })
  .map(({ subject, target: t, context }) => ({ subject, action: t.action, resource: t.resource, context }) as JsonCheckRequest);

type Outcome = { value: unknown } | { error: string };

function outcome(run: () => unknown): Outcome {
  try {
    return { value: run() };
  } catch (err) {
    if (err instanceof InvalidRequestError) return { error: err.message };
    throw err;
  }
}

/** The JSON form names the action `action`; the proto form `action.name`. */
const jsonPath = (message: string) => message.replace(/^(items\[\d+\]\.)?action\.name:/, '$1action:');

const effect = (d: Decision) => ({ effect: d.effect, reason: d.reason, rule: d.rule });

function timed<T>(run: () => T): T {
  const start = performance.now();
  const result = run();
  const ms = performance.now() - start;
  if (ms > CASE_MS) throw new Error(`one case took ${ms.toFixed(0)} ms (more than ${CASE_MS})`);
  return result;
}

/** A few byte-level mutations of a valid message. */
const mutation = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  ),
  { minLength: 1, maxLength: 4 },
);

function mutate(bytes: Buffer, steps: readonly { kind: string; at: number; value?: number; bytes?: Uint8Array; length?: number }[]): Buffer {
  let b = Buffer.from(bytes);
  for (const s of steps) {
    const at = b.length === 0 ? 0 : s.at % (b.length + 1);
    if (s.kind === 'flip' && b.length > 0) b[at % b.length] = s.value!;
    else if (s.kind === 'cut') b = b.subarray(0, at);
    else if (s.kind === 'insert') b = Buffer.concat([b.subarray(0, at), s.bytes!, b.subarray(at)]);
    else if (s.kind === 'repeat') b = Buffer.concat([b.subarray(0, at + s.length!), b.subarray(at)]);
  }
  return b;
}

describe('fuzz: gRPC wire codec (fast-check)', function () {
  this.timeout(120_000);
  let set: CompiledPolicySet;

  before(async () => {
    set = await loadPolicyDirectory('policies');
  });

  it(`Check: generated requests decode as proto-loader's do, and decide as their JSON form does (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(jsonRequest, fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }), (json, now) => {
        timed(() => {
          const bytes = check.requestSerialize(toProtoCheckRequest(json));
          const ours = outcome(() => toCheckRequest(decodeCheckRequest(bytes), LIMITS));
          const theirs = outcome(() => toCheckRequest(check.requestDeserialize(bytes) as ProtoCheckRequest, LIMITS));
          expect(ours).to.deep.equal(theirs);
          const reference = outcome(() => parseCheckRequest(JSON.parse(JSON.stringify(json, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? `${v}` : v))), LIMITS));
          if ('error' in ours) {
            // Non-finite numbers cannot be written in JSON: the JSON form holds them as strings.
            if (!/must be a finite number/.test(ours.error)) expect('error' in reference ? reference.error : 'accepted').to.equal(jsonPath(ours.error));
            return;
          }
          if ('error' in reference) throw new Error(`accepted over gRPC, refused as JSON: ${reference.error}`);
          const viaWire = decide(set, ours.value as never, { now });
          const viaJson = decide(set, reference.value as never, { now });
          expect(effect(viaWire)).to.deep.equal(effect(viaJson));
        });
      }),
      { numRuns: RUNS },
    );
  });

  it(`CheckBatch: generated batches decode as proto-loader's do, and every item decides as its JSON form (${RUNS} runs)`, () => {
    const batchRequest = fc.record({
      subject: fc.record({ id: text, roles: fc.array(text, { maxLength: 5 }), attributes }),
      items: fc.array(target, { maxLength: 6 }),
      context: attributes,
    });
    fc.assert(
      fc.property(batchRequest, ({ subject, items, context }) => {
        timed(() => {
          const base = toProtoCheckRequest({ subject, action: 'x', resource: { type: 'x' }, context } as JsonCheckRequest);
          const msg = { subject: base.subject, context: base.context, items: items.map((t) => {
            const p = toProtoCheckRequest({ subject, action: t.action, resource: t.resource } as JsonCheckRequest);
            return { action: p.action, resource: p.resource };
          }) };
          const bytes = batch.requestSerialize(msg);
          const ours = outcome(() => toBatchRequests(decodeCheckBatchRequest(bytes), LIMITS));
          const theirs = outcome(() => toBatchRequests(batch.requestDeserialize(bytes) as ProtoCheckBatchRequest, LIMITS));
          expect(ours).to.deep.equal(theirs);
          if ('value' in ours) {
            const now = new Date('2026-03-01T09:00:00Z');
            (ours.value as never[]).forEach((r, i) => {
              const reference = parseCheckRequest({ subject, action: items[i]!.action, resource: items[i]!.resource, context }, LIMITS);
              expect(effect(decide(set, r, { now }))).to.deep.equal(effect(decide(set, reference, { now })));
            });
          }
        });
      }),
      { numRuns: RUNS },
    );
  });

  it(`mutated bytes: a request or a wire/request error, nothing else, quickly (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(jsonRequest, mutation, fc.boolean(), (json, steps, asBatch) => {
        const proto = toProtoCheckRequest(json);
        const valid = asBatch
          ? batch.requestSerialize({ subject: proto.subject, context: proto.context, items: [{ action: proto.action, resource: proto.resource }] })
          : check.requestSerialize(proto);
        const bytes = mutate(valid, steps);
        timed(() => {
          try {
            if (asBatch) toBatchRequests(decodeCheckBatchRequest(bytes), LIMITS);
            else toCheckRequest(decodeCheckRequest(bytes), LIMITS);
          } catch (err) {
            if (!(err instanceof WireFormatError) && !(err instanceof InvalidRequestError)) throw err;
          }
        });
      }),
      { numRuns: RUNS },
    );
  });
});
