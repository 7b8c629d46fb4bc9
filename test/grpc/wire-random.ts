/**
 * Seeded random verdict.v1 messages for the wire codec tests (proto-loader object form), and a
 * few raw protobuf writing helpers for hand-built bytes. Set WIRE_CODEC_SEED to replay a run.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadProtoDefinition } from '../../src/grpc/proto.js';
import { attributesToStruct } from '../../src/grpc/struct.js';
import type { ProtoCheckResponse, ProtoEffect, ProtoLimitState, ProtoRuleOutcome, ProtoRuleTrace } from '../../src/grpc/translate.js';
import { prng } from '../../bench/generate/large-policy-set.js';
export { prng };

export const SEED = process.env.WIRE_CODEC_SEED ? Number(process.env.WIRE_CODEC_SEED) : Date.now() % 2 ** 31;


type Method = MethodDefinition<unknown, unknown>;
let service: ServiceDefinition | undefined;
/** proto-loader's own serializers and deserializers (protobufjs), the reference. */
export function protoLoaderMethod(name: 'Check' | 'CheckBatch'): Method {
  service ??= loadProtoDefinition()['verdict.v1.Authorization'] as ServiceDefinition;
  return service[name] as Method;
}

export class Random {
  constructor(readonly next: () => number) {}

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Empty, ASCII, non-ASCII (2-, 3- and 4-byte UTF-8), and now and then long. */
  string(): string {
    const roll = this.next();
    if (roll < 0.1) return '';
    if (roll < 0.15) return 'x'.repeat(100 + this.int(200));
    if (roll < 0.18) return 'é'.repeat(60 + this.int(100));
    // Around the encoder's short-ASCII cut-off (42 UTF-16 units).
    if (roll < 0.23) return 'abcdefghij'.repeat(5).slice(0, 36 + this.int(12));
    const alphabet = ['a', 'b', 'z', 'Q', '0', '9', '-', '_', ' ', ':', '.', 'é', 'ß', 'ü', '日', '本', '€', '😀', '\u0000', '\n'];
    let s = '';
    const n = 1 + this.int(12);
    for (let i = 0; i < n; i++) s += this.pick(alphabet);
    return s;
  }

  /** An id, type, action or role: mostly valid (non-empty, short), so most requests get past them. */
  ident(): string {
    if (this.chance(0.03)) return this.string();
    let s = '';
    const n = 1 + this.int(10);
    for (let i = 0; i < n; i++) s += this.pick(['a', 'k', 'z', '0', ':', '-', 'é', '本', '😀']);
    return s;
  }

  /** A map key: like string(), plus integer-like keys (JavaScript orders those first). */
  key(): string {
    return this.chance(0.15) ? String(this.int(20)) : this.string();
  }

  number(): number {
    const roll = this.next();
    if (roll < 0.3) return this.int(1000);
    if (roll < 0.5) return -this.int(1_000_000);
    if (roll < 0.8) return (this.next() - 0.5) * 10 ** this.int(12);
    if (roll < 0.97) return this.pick([0, -0, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, -1e-300]);
    return this.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  }

  /** Attribute JSON nesting up to `levels` struct/list levels (a top-level map is one). */
  attributes(levels: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const n = this.int(5);
    for (let i = 0; i < n; i++) out[this.key()] = this.value(levels - 1);
    return out;
  }

  value(levels: number): unknown {
    const roll = this.next();
    if (levels > 0 && roll < 0.15) return this.attributes(levels);
    if (levels > 0 && roll < 0.3) return Array.from({ length: this.int(4) }, () => this.value(levels - 1));
    if (roll < 0.4) return null;
    if (roll < 0.5) return this.chance(0.5);
    if (roll < 0.75) return this.number();
    return this.string();
  }

  /** Sometimes absent: proto-loader leaves absent fields out, so must we. */
  maybe<T>(p: number, make: () => T): T | undefined {
    return this.chance(p) ? make() : undefined;
  }
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function subject(r: Random, levels: number): Record<string, unknown> {
  return defined({
    type: r.maybe(0.6, () => r.ident()),
    id: r.maybe(0.98, () => r.ident()),
    roles: r.maybe(0.7, () => Array.from({ length: r.int(4) }, () => r.ident())),
    attributes: r.maybe(0.7, () => attributesToStruct(r.attributes(levels))),
  });
}

function target(r: Random, levels: number): Record<string, unknown> {
  return defined({
    action: r.maybe(0.98, () => defined({ name: r.maybe(0.98, () => r.ident()) })),
    resource: r.maybe(0.98, () =>
      defined({ type: r.maybe(0.98, () => r.ident()), id: r.maybe(0.7, () => r.ident()), attributes: r.maybe(0.7, () => attributesToStruct(r.attributes(levels))) }),
    ),
  });
}

/** A CheckRequest in proto-loader object form, with attribute nesting up to `levels`. */
export function randomCheckRequest(r: Random, levels: number): Record<string, unknown> {
  return defined({
    subject: r.maybe(0.98, () => subject(r, levels)),
    ...target(r, levels),
    context: r.maybe(0.7, () => attributesToStruct(r.attributes(levels))),
    explain: r.maybe(0.5, () => r.chance(0.5)),
    requestId: r.maybe(0.5, () => r.string()),
    token: r.maybe(0.1, () => r.string()),
  });
}

export function randomCheckBatchRequest(r: Random, levels: number): Record<string, unknown> {
  return defined({
    subject: r.maybe(0.98, () => subject(r, levels)),
    items: r.maybe(0.98, () => Array.from({ length: r.chance(0.1) ? r.int(7) : 1 + r.int(4) }, () => target(r, levels))),
    context: r.maybe(0.7, () => attributesToStruct(r.attributes(levels))),
    explain: r.maybe(0.5, () => r.chance(0.5)),
    requestId: r.maybe(0.5, () => r.string()),
    token: r.maybe(0.1, () => r.string()),
  });
}

const EFFECTS: ProtoEffect[] = ['EFFECT_UNSPECIFIED', 'EFFECT_ALLOW', 'EFFECT_DENY'];
const OUTCOMES: ProtoRuleOutcome[] = [
  'RULE_OUTCOME_UNSPECIFIED',
  'RULE_OUTCOME_APPLIED',
  'RULE_OUTCOME_ACTION_MISMATCH',
  'RULE_OUTCOME_ROLE_MISMATCH',
  'RULE_OUTCOME_CONDITION_FALSE',
  'RULE_OUTCOME_CONDITION_ERROR',
];

function trace(r: Random): ProtoRuleTrace {
  return {
    policy: r.string(),
    rule: r.string(),
    effect: r.pick(['allow', 'deny', '']),
    outcome: r.pick(OUTCOMES),
    detail: r.chance(0.1) ? 'detail '.repeat(3000) : r.string(),
    derivedRoles: Array.from({ length: r.int(3) }, () => r.string()),
  };
}

const UINT32S = [0, 1, 127, 128, 16_383, 16_384, 2_097_152, 268_435_456, 2_678_400_000, 4_294_967_295];

function limitState(r: Random): ProtoLimitState {
  const u = () => (r.chance(0.5) ? r.pick(UINT32S) : r.int(1_000_000));
  return { name: r.string(), policy: r.string(), kind: r.pick(['rate', 'quota']), mode: r.pick(['enforce', 'shadow']), scope: r.pick(['instance', 'cluster']), outcome: r.pick(['ok', 'over', 'error']), limit: u(), remaining: u(), retryAfterMs: u(), resetMs: u(), windowMs: u() };
}

/** What toCheckResponse builds, with random content (explanation and errors sometimes). */
export function randomCheckResponse(r: Random): ProtoCheckResponse {
  const response: ProtoCheckResponse = {
    decision: r.pick(EFFECTS),
    allowed: r.chance(0.5),
    policy: r.string(),
    rule: r.string(),
    reason: r.pick(['RULE_ALLOW', 'RULE_DENY', 'NO_POLICY', '']),
    revision: r.string(),
    decisionId: r.string(),
  };
  if (r.chance(0.4)) response.explanation = Array.from({ length: r.int(5) }, () => trace(r));
  if (r.chance(0.3)) response.errors = Array.from({ length: 1 + r.int(3) }, () => ({ policy: r.string(), rule: r.string(), message: r.string() }));
  if (r.chance(0.3)) response.limits = Array.from({ length: 1 + r.int(3) }, () => limitState(r));
  return response;
}

// ---- raw protobuf writing, for bytes protobufjs would never produce ---------------------------

export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

export function lengthDelimited(field: number, body: Uint8Array | number[]): Buffer {
  const bytes = Buffer.from(body);
  return Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length), ...bytes]);
}

export function stringField(field: number, s: string): Buffer {
  return lengthDelimited(field, Buffer.from(s, 'utf8'));
}

/** One unknown field of each kind protobufjs skips (field numbers 100+, unused by verdict.v1). */
export function unknownField(r: Random): Buffer {
  const field = 100 + r.int(1000);
  switch (r.int(5)) {
    case 0:
      return Buffer.from([...varint((field << 3) | 0), ...varint(r.int(2 ** 31) * 1000)]);
    case 1:
      return Buffer.from([...varint((field << 3) | 1), 1, 2, 3, 4, 5, 6, 7, 8]);
    case 2:
      return lengthDelimited(field, [0x0a, 0x01, 0x61, 0xff]);
    case 3:
      // A group holding a varint and a nested empty group.
      return Buffer.from([...varint((field << 3) | 3), 0x08, 0x05, ...varint((7 << 3) | 3), ...varint((7 << 3) | 4), ...varint((field << 3) | 4)]);
    default:
      return Buffer.from([...varint((field << 3) | 5), 9, 9, 9, 9]);
  }
}
