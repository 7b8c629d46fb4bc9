import { policyRecordProblem, policySubjectProblem } from './policy-records.js';
import { canonicalJson } from '../events/canonical.js';
import { CHECKPOINT_SCHEMA_V1, CHECKPOINT_SCHEMA_V2 } from '../events/checkpoint.js';
import { EVENT_SCHEMA } from '../events/event.js';
import { checkpointSubject, decisionSubject } from '../events/subjects.js';

/**
 * What the keeper accepts and `verify` re-checks: one stream message = one record in canonical
 * JSON (RFC 8785: one line, sorted keys, no whitespace, no duplicate keys), valid UTF-8, of a
 * known shape. The same checks run online and offline, so a trail file holds nothing the keeper
 * would not have accepted.
 */
export const PUBLISH_REFUSED_SCHEMA = 'verdict.publish-refused.v1';
export const POLICY_SCHEMA = 'verdict.policy.v1';
export const EVENTS_LOST_SCHEMA = 'verdict.events-lost.v1';
/** Chained record kinds whose fields beyond the common ones are not checked here. */
const OPEN_CHAINED_SCHEMAS = new Set([PUBLISH_REFUSED_SCHEMA, POLICY_SCHEMA, EVENTS_LOST_SCHEMA]);

export interface ChainLink {
  readonly id: string;
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
}

export interface ParsedCheckpoint {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly final: boolean;
  readonly instance: string;
  readonly time: string;
  readonly schema: string;
  readonly sig: { readonly alg: string; readonly key: string; readonly value: string } | undefined;
}

export type Classified =
  /** Any record carrying a chain link: decision events, publish refusals, policy changes, unknown kinds. */
  | { readonly type: 'chained'; readonly schema: string; readonly known: boolean; readonly record: Record<string, unknown>; readonly link: ChainLink }
  | { readonly type: 'checkpoint'; readonly record: Record<string, unknown>; readonly checkpoint: ParsedCheckpoint }
  | { readonly type: 'invalid'; readonly reason: string };

const HEX64 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const MAX_CHAIN_ID = 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes → canonical JSON value, or why not. */
export function parseCanonical(payload: Uint8Array | string): { ok: true; value: unknown; text: string } | { ok: false; reason: string } {
  let text: string;
  if (typeof payload === 'string') text = payload;
  else {
    try {
      text = utf8.decode(payload);
    } catch {
      return { ok: false, reason: 'not valid UTF-8' };
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message.slice(0, 120)})` };
  }
  let canonical: string;
  try {
    canonical = canonicalJson(value);
  } catch (err) {
    return { ok: false, reason: `not canonical JSON (${(err as Error).message})` };
  }
  if (canonical !== text) {
    const at = firstDifference(canonical, text);
    return { ok: false, reason: `not canonical JSON (RFC 8785: one line, sorted keys, no whitespace, no duplicate keys); differs at character ${at}` };
  }
  return { ok: true, value, text };
}

function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return i;
  return n;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** Problems with a decision event's fields (unknown extra fields are allowed: later v1 events may add some). */
function decisionProblems(r: Obj): string[] {
  const p: string[] = [];
  for (const k of ['action', 'id', 'instance', 'policy', 'reason', 'requestId', 'revision', 'rule', 'source']) if (!isStr(r[k])) p.push(`${k} must be a string`);
  if (r.decision !== 'ALLOW' && r.decision !== 'DENY') p.push('decision must be ALLOW or DENY');
  if (!isStr(r.time) || !TIME.test(r.time)) p.push('time must be an RFC 3339 UTC time');
  if (typeof r.evaluationUs !== 'number') p.push('evaluationUs must be a number');
  const c = r.caller;
  if (!isObj(c) || !isStr(c.id) || !isStr(c.kind)) p.push('caller must be {id, kind} strings');
  const res = r.resource;
  if (!isObj(res) || !isStr(res.id) || !isStr(res.type)) p.push('resource must be {id, type} strings');
  const s = r.subject;
  if (!isObj(s) || !isStr(s.id) || !isStr(s.type) || !Array.isArray(s.roles) || !s.roles.every(isStr)) p.push('subject must be {id, roles, type}');
  if (r.attributes !== undefined && !isObj(r.attributes)) p.push('attributes must be an object');
  if (r.errors !== undefined && (!Array.isArray(r.errors) || !r.errors.every((e) => isObj(e) && isStr(e.message) && isStr(e.policy) && isStr(e.rule)))) {
    p.push('errors must be a list of {message, policy, rule}');
  }
  return p;
}

function linkOf(r: Obj): ChainLink | string {
  const c = r.chain;
  if (!isObj(c)) return 'chain must be {hash, id, prev, seq}';
  if (!isStr(c.id) || c.id.length === 0 || c.id.length > MAX_CHAIN_ID || !c.id.includes('/')) return 'chain.id must be "<instance>/<boot id>"';
  if (typeof c.seq !== 'number' || !Number.isSafeInteger(c.seq) || c.seq < 1) return 'chain.seq must be an integer ≥ 1';
  if (!isStr(c.prev) || !HEX64.test(c.prev)) return 'chain.prev must be 64 lowercase hex digits';
  if (!isStr(c.hash) || !HEX64.test(c.hash)) return 'chain.hash must be 64 lowercase hex digits';
  const keys = Object.keys(c);
  if (keys.length !== 4) return `chain has unexpected fields (${keys.filter((k) => !['hash', 'id', 'prev', 'seq'].includes(k)).join(', ')})`;
  return { id: c.id, seq: c.seq, prev: c.prev, hash: c.hash };
}

/** The instance part of a chain id ("<instance>/<boot id>"). */
export function chainInstance(chainId: string): string {
  const i = chainId.lastIndexOf('/');
  return i === -1 ? chainId : chainId.slice(0, i);
}

function checkpointOf(r: Obj): ParsedCheckpoint | string {
  const v2 = r.schema === CHECKPOINT_SCHEMA_V2;
  if (!isStr(r.chain) || r.chain.length === 0 || r.chain.length > MAX_CHAIN_ID || !r.chain.includes('/')) return 'chain must be a chain id';
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) return 'seq must be an integer ≥ 1';
  if (!isStr(r.hash) || !HEX64.test(r.hash)) return 'hash must be 64 lowercase hex digits';
  if (typeof r.final !== 'boolean') return 'final must be true or false';
  if (!isStr(r.instance) || r.instance === '') return 'instance must be a string';
  if (!isStr(r.time) || !TIME.test(r.time)) return 'time must be an RFC 3339 UTC time';
  let sig: ParsedCheckpoint['sig'];
  if (r.sig !== undefined) {
    const s = r.sig;
    if (!v2) return 'a v1 checkpoint has no sig';
    if (!isObj(s) || s.alg !== 'ed25519' || !isStr(s.key) || !KEY_ID.test(s.key) || !isStr(s.value) || Object.keys(s).length !== 3) return 'sig must be {alg: "ed25519", key: <16 hex digits>, value}';
    sig = { alg: s.alg, key: s.key, value: s.value };
  }
  const known = v2 ? ['chain', 'final', 'hash', 'instance', 'schema', 'seq', 'sig', 'time'] : ['chain', 'final', 'hash', 'instance', 'schema', 'seq', 'time'];
  const extra = Object.keys(r).filter((k) => !known.includes(k));
  if (extra.length > 0) return `unexpected fields ${extra.join(', ')}`;
  return { chain: r.chain, seq: r.seq, hash: r.hash, final: r.final, instance: r.instance, time: r.time, schema: r.schema as string, sig };
}

/** Sorts a parsed record into chained record, checkpoint or invalid (with the reason). */
export function classifyRecord(value: unknown): Classified {
  if (!isObj(value)) return { type: 'invalid', reason: 'not a JSON object' };
  const schema = value.schema;
  if (schema === CHECKPOINT_SCHEMA_V1 || schema === CHECKPOINT_SCHEMA_V2) {
    const cp = checkpointOf(value);
    return typeof cp === 'string' ? { type: 'invalid', reason: `${schema}: ${cp}` } : { type: 'checkpoint', record: value, checkpoint: cp };
  }
  if (!isStr(schema)) return { type: 'invalid', reason: 'not a Verdict record: no "schema"' };
  if (value.chain === undefined) {
    return { type: 'invalid', reason: schema === EVENT_SCHEMA || OPEN_CHAINED_SCHEMAS.has(schema) ? `${schema}: record without a chain link` : `unknown schema "${schema.slice(0, 100)}" without a chain link` };
  }
  const link = linkOf(value);
  if (typeof link === 'string') return { type: 'invalid', reason: `${schema.slice(0, 100)}: ${link}` };
  if (!isStr(value.instance) || value.instance === '') return { type: 'invalid', reason: `${schema.slice(0, 100)}: instance must be a string` };
  if (chainInstance(link.id) !== value.instance) return { type: 'invalid', reason: `${schema.slice(0, 100)}: chain ${link.id} does not belong to instance "${value.instance}"` };
  if (!isStr(value.time) || !TIME.test(value.time)) return { type: 'invalid', reason: `${schema.slice(0, 100)}: time must be an RFC 3339 UTC time` };
  const policyProblem = schema === POLICY_SCHEMA ? policyRecordProblem(value) : undefined;
  if (policyProblem) return { type: 'invalid', reason: `${POLICY_SCHEMA}: ${policyProblem}` };
  if (schema === EVENT_SCHEMA) {
    const problems = decisionProblems(value);
    if (problems.length > 0) return { type: 'invalid', reason: `${EVENT_SCHEMA}: ${problems.join('; ')}` };
    return { type: 'chained', schema, known: true, record: value, link };
  }
  return { type: 'chained', schema, known: OPEN_CHAINED_SCHEMAS.has(schema), record: value, link };
}

/**
 * Whether a record sits on the subject Verdict publishes it on: decision events on
 * `<prefix>.<type>.<allow|deny>`, checkpoints on `<prefix>._chain.<instance>.checkpoint`. The prefix
 * is not checked (it may change; spooled events are re-addressed), the record-derived tail is.
 * Returns the problem, or undefined.
 */
export function subjectProblem(subject: string, c: Classified): string | undefined {
  let tail: string;
  if (c.type === 'chained' && c.schema === POLICY_SCHEMA) return policySubjectProblem(subject, c.record);
  if (c.type === 'checkpoint') tail = checkpointSubject('', c.checkpoint.instance);
  else if (c.type === 'chained' && c.schema === EVENT_SCHEMA) {
    const r = c.record as { resource: { type: string }; decision: 'ALLOW' | 'DENY' };
    tail = decisionSubject('', r.resource.type, r.decision);
  } else return undefined;
  // tail starts with "." (empty prefix): the subject must end with it, after a non-empty prefix.
  if (subject.length > tail.length && subject.endsWith(tail)) return undefined;
  return `stored on subject "${subject.slice(0, 200)}", but such a record is published on "<prefix>${tail.slice(0, 200)}"`;
}

/** What a publish-refused or events-lost record explains: seq ranges (of `chain`, else its own chain), or decisions that never got a seq. */
export type ExplainedLoss =
  | { readonly kind: 'refused' | 'spool'; readonly chain: string | undefined; readonly ranges: readonly (readonly [number, number])[]; readonly count: number; readonly reason: string }
  | { readonly kind: 'handoff'; readonly count: number; readonly span: string; readonly reason: string };

const seqOk = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/**
 * Reads a `verdict.publish-refused.v1` record ({refused: {chain, seq, reason, …}}; older forms: a
 * seq list, `refusedSeq`) or a `verdict.events-lost.v1` record ({lost: {stage, chain, fromSeq,
 * toSeq, count, reason}} or stage handoff {count, from, to, reason}); undefined if it names nothing.
 */
export function explainedLoss(record: Record<string, unknown>): ExplainedLoss | undefined {
  if (record.schema === EVENTS_LOST_SCHEMA) {
    const l = record.lost;
    if (!isObj(l)) return undefined;
    const reason = (isStr(l.reason) ? l.reason : 'no reason given').slice(0, 500);
    const count = typeof l.count === 'number' && Number.isSafeInteger(l.count) && l.count >= 0 ? l.count : 0;
    if (l.stage === 'handoff') return { kind: 'handoff', count, span: isStr(l.from) && isStr(l.to) ? `${l.from.slice(0, 40)} to ${l.to.slice(0, 40)}` : '', reason };
    if (!seqOk(l.fromSeq) || !seqOk(l.toSeq) || l.toSeq < l.fromSeq) return undefined;
    return { kind: 'spool', chain: isStr(l.chain) && l.chain !== '' ? l.chain.slice(0, MAX_CHAIN_ID) : undefined, ranges: [[l.fromSeq, l.toSeq]], count, reason };
  }
  const seqs: number[] = [];
  const take = (v: unknown): void => {
    if (seqOk(v)) seqs.push(v);
    else if (isObj(v)) take(v.seq);
    else if (Array.isArray(v)) v.slice(0, 1000).forEach(take);
  };
  take(record.refused);
  take(record.refusedSeq);
  if (seqs.length === 0) return undefined;
  const r = record.refused as { reason?: unknown; chain?: unknown } | undefined;
  const reason = isStr(record.reason) ? record.reason : isObj(r) && isStr(r.reason) ? r.reason : 'no reason given';
  const chain = isObj(r) && isStr(r.chain) && r.chain !== '' ? r.chain.slice(0, MAX_CHAIN_ID) : undefined;
  return { kind: 'refused', chain, ranges: seqs.map((n) => [n, n] as const), count: seqs.length, reason: reason.slice(0, 500) };
}
