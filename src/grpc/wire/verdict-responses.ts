/**
 * verdict.v1 CheckResponse / CheckBatchResponse → bytes, byte for byte what proto-loader
 * (protobufjs) writes for the same objects: fields in number order, enums by number, nested
 * messages length-prefixed, and — like protobufjs, unlike canonical proto3 — a scalar field that is
 * present in the object is written even when it holds its default (`allowed: false`, `policy: ""`),
 * because clients decoding with proto-loader's `defaults: false` (our CLI and tests among them) see
 * those fields only if they are on the wire. Repeated fields are written when non-empty.
 *
 * Two passes: the first computes every nested message's and string's byte length into a queue,
 * the second writes into one Buffer.allocUnsafe of the exact size, taking lengths from the queue
 * in the same order.
 */
import type { ProtoCheckBatchResponse, ProtoCheckResponse, ProtoEffect, ProtoEvaluationError, ProtoLimitState, ProtoRuleOutcome, ProtoRuleTrace } from '../translate.js';

const EFFECTS: Record<ProtoEffect, number> = { EFFECT_UNSPECIFIED: 0, EFFECT_ALLOW: 1, EFFECT_DENY: 2 };
const OUTCOMES: Record<ProtoRuleOutcome, number> = {
  RULE_OUTCOME_UNSPECIFIED: 0,
  RULE_OUTCOME_APPLIED: 1,
  RULE_OUTCOME_ACTION_MISMATCH: 2,
  RULE_OUTCOME_ROLE_MISMATCH: 3,
  RULE_OUTCOME_CONDITION_FALSE: 4,
  RULE_OUTCOME_CONDITION_ERROR: 5,
};

// Tags ((field number << 3) | wire type); all below 128, so each is one byte.
const RESPONSE_DECISION = 0x08;
const RESPONSE_ALLOWED = 0x10;
const RESPONSE_POLICY = 0x1a;
const RESPONSE_RULE = 0x22;
const RESPONSE_REASON = 0x2a;
const RESPONSE_REVISION = 0x32;
const RESPONSE_DECISION_ID = 0x3a;
const RESPONSE_EXPLANATION = 0x42;
const RESPONSE_ERRORS = 0x4a;
const RESPONSE_LIMITS = 0x52;
// LimitState: strings 1-6, uint32 7-11.
const LIMIT_STRING_TAGS = [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32] as const;
const LIMIT_LIMIT = 0x38;
const LIMIT_REMAINING = 0x40;
const LIMIT_RETRY_AFTER = 0x48;
const LIMIT_RESET = 0x50;
const LIMIT_WINDOW = 0x58;
const TRACE_POLICY = 0x0a;
const TRACE_RULE = 0x12;
const TRACE_EFFECT = 0x1a;
const TRACE_OUTCOME = 0x20;
const TRACE_DETAIL = 0x2a;
const TRACE_DERIVED_ROLES = 0x32;
const ERROR_POLICY = 0x0a;
const ERROR_RULE = 0x12;
const ERROR_MESSAGE = 0x1a;
const BATCH_RESULTS = 0x0a;
const BATCH_REVISION = 0x12;

/** Strings this short (in UTF-16 units) fit a one-byte length prefix whatever their content. */
const SHORT_STRING = 42;

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** First pass: byte sizes, with each length-prefixed part's length queued in write order. */
class Sizer {
  readonly lengths: number[] = [];

  /** Tag + length + bytes of a string field, 0 when absent. */
  string(s: string | null | undefined): number {
    if (s == null) return 0;
    const n = Buffer.byteLength(s, 'utf8');
    this.lengths.push(n);
    return 1 + varintSize(n) + n;
  }

  /** Reserves the queue slot of a nested message; fill it with `close` once its size is known. */
  open(): number {
    this.lengths.push(0);
    return this.lengths.length - 1;
  }

  /** Tag + length + body of the nested message opened at `slot`. */
  close(slot: number, bodySize: number): number {
    this.lengths[slot] = bodySize;
    return 1 + varintSize(bodySize) + bodySize;
  }
}

/** Second pass: writes into a buffer of the exact size. */
class Writer {
  pos = 0;
  private next = 0;

  constructor(
    readonly buf: Buffer,
    private readonly lengths: readonly number[],
  ) {}

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    const buf = this.buf;
    while (n >= 0x80) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  string(tag: number, s: string | null | undefined): void {
    if (s == null) return;
    const n = this.lengths[this.next++]!;
    this.buf[this.pos++] = tag;
    this.varint(n);
    if (n === s.length && n < SHORT_STRING) {
      // ASCII (byte length equals UTF-16 length only then) and short: a loop beats a native call.
      const buf = this.buf;
      const pos = this.pos;
      for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    } else {
      this.buf.write(s, this.pos, n, 'utf8');
    }
    this.pos += n;
  }

  /** Tag + length of the nested message whose slot comes next. */
  message(tag: number): void {
    this.buf[this.pos++] = tag;
    this.varint(this.lengths[this.next++]!);
  }
}

function traceSize(t: ProtoRuleTrace, s: Sizer): number {
  let size = s.string(t.policy) + s.string(t.rule) + s.string(t.effect);
  if (t.outcome != null) size += 2;
  size += s.string(t.detail);
  const roles = t.derivedRoles;
  if (roles != null) for (let i = 0; i < roles.length; i++) size += s.string(roles[i]);
  return size;
}

function writeTrace(t: ProtoRuleTrace, w: Writer): void {
  w.string(TRACE_POLICY, t.policy);
  w.string(TRACE_RULE, t.rule);
  w.string(TRACE_EFFECT, t.effect);
  if (t.outcome != null) {
    w.byte(TRACE_OUTCOME);
    w.byte(OUTCOMES[t.outcome]);
  }
  w.string(TRACE_DETAIL, t.detail);
  const roles = t.derivedRoles;
  if (roles != null) for (let i = 0; i < roles.length; i++) w.string(TRACE_DERIVED_ROLES, roles[i]);
}

function errorSize(e: ProtoEvaluationError, s: Sizer): number {
  return s.string(e.policy) + s.string(e.rule) + s.string(e.message);
}

function writeError(e: ProtoEvaluationError, w: Writer): void {
  w.string(ERROR_POLICY, e.policy);
  w.string(ERROR_RULE, e.rule);
  w.string(ERROR_MESSAGE, e.message);
}

function limitSize(l: ProtoLimitState, s: Sizer): number {
  return (
    s.string(l.name) + s.string(l.policy) + s.string(l.kind) + s.string(l.mode) + s.string(l.scope) + s.string(l.outcome) +
    5 + varintSize(l.limit) + varintSize(l.remaining) + varintSize(l.retryAfterMs) + varintSize(l.resetMs) + varintSize(l.windowMs)
  );
}

function writeLimit(l: ProtoLimitState, w: Writer): void {
  const t = LIMIT_STRING_TAGS;
  w.string(t[0], l.name);
  w.string(t[1], l.policy);
  w.string(t[2], l.kind);
  w.string(t[3], l.mode);
  w.string(t[4], l.scope);
  w.string(t[5], l.outcome);
  w.byte(LIMIT_LIMIT);
  w.varint(l.limit);
  w.byte(LIMIT_REMAINING);
  w.varint(l.remaining);
  w.byte(LIMIT_RETRY_AFTER);
  w.varint(l.retryAfterMs);
  w.byte(LIMIT_RESET);
  w.varint(l.resetMs);
  w.byte(LIMIT_WINDOW);
  w.varint(l.windowMs);
}

function responseSize(r: ProtoCheckResponse, s: Sizer): number {
  let size = 0;
  if (r.decision != null) size += 2;
  if (r.allowed != null) size += 2;
  size += s.string(r.policy) + s.string(r.rule) + s.string(r.reason) + s.string(r.revision) + s.string(r.decisionId);
  const explanation = r.explanation;
  if (explanation != null) {
    for (let i = 0; i < explanation.length; i++) {
      const slot = s.open();
      size += s.close(slot, traceSize(explanation[i]!, s));
    }
  }
  const errors = r.errors;
  if (errors != null) {
    for (let i = 0; i < errors.length; i++) {
      const slot = s.open();
      size += s.close(slot, errorSize(errors[i]!, s));
    }
  }
  const limits = r.limits;
  if (limits != null) {
    for (let i = 0; i < limits.length; i++) {
      const slot = s.open();
      size += s.close(slot, limitSize(limits[i]!, s));
    }
  }
  return size;
}

function writeResponse(r: ProtoCheckResponse, w: Writer): void {
  if (r.decision != null) {
    w.byte(RESPONSE_DECISION);
    w.byte(EFFECTS[r.decision]);
  }
  if (r.allowed != null) {
    w.byte(RESPONSE_ALLOWED);
    w.byte(r.allowed ? 1 : 0);
  }
  w.string(RESPONSE_POLICY, r.policy);
  w.string(RESPONSE_RULE, r.rule);
  w.string(RESPONSE_REASON, r.reason);
  w.string(RESPONSE_REVISION, r.revision);
  w.string(RESPONSE_DECISION_ID, r.decisionId);
  const explanation = r.explanation;
  if (explanation != null) {
    for (let i = 0; i < explanation.length; i++) {
      w.message(RESPONSE_EXPLANATION);
      writeTrace(explanation[i]!, w);
    }
  }
  const errors = r.errors;
  if (errors != null) {
    for (let i = 0; i < errors.length; i++) {
      w.message(RESPONSE_ERRORS);
      writeError(errors[i]!, w);
    }
  }
  const limits = r.limits;
  if (limits != null) {
    for (let i = 0; i < limits.length; i++) {
      w.message(RESPONSE_LIMITS);
      writeLimit(limits[i]!, w);
    }
  }
}

function finish(size: number, s: Sizer, write: (w: Writer) => void): Buffer {
  const w = new Writer(Buffer.allocUnsafe(size), s.lengths);
  write(w);
  if (w.pos !== size) throw new Error(`response encoder wrote ${w.pos} bytes, expected ${size}`);
  return w.buf;
}

export function encodeCheckResponse(response: ProtoCheckResponse): Buffer {
  const s = new Sizer();
  return finish(responseSize(response, s), s, (w) => writeResponse(response, w));
}

export function encodeCheckBatchResponse(response: ProtoCheckBatchResponse): Buffer {
  const s = new Sizer();
  let size = 0;
  const results = response.results;
  if (results != null) {
    for (let i = 0; i < results.length; i++) {
      const slot = s.open();
      size += s.close(slot, responseSize(results[i]!, s));
    }
  }
  size += s.string(response.revision);
  return finish(size, s, (w) => {
    if (results != null) {
      for (let i = 0; i < results.length; i++) {
        w.message(BATCH_RESULTS);
        writeResponse(results[i]!, w);
      }
    }
    w.string(BATCH_REVISION, response.revision);
  });
}
