/**
 * `verdict.policy.v1`: the record of a policy change in an instance's hash chain. One is written
 * for every policy set that goes live (before it decides anything) and for every change that is
 * rejected. Built on the serving thread from a PolicyChange, then held to the byte budgets and
 * chained on the publisher thread (where NATS's message limit is known). Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { cutString } from '../events/budget.js';
import { canonicalJson } from '../events/canonical.js';
import type { CutField } from '../events/event.js';
import { newDecisionId } from '../service/ids.js';
import type { PolicyChange, PolicyFileChange } from '../service/policy-source.js';
import { revisionDigest } from './revision-digest.js';

export const POLICY_SCHEMA = 'verdict.policy.v1';

export type PolicyRecordStatus = 'applied' | 'rejected';

export interface PolicyFileEntry {
  readonly path: string;
  readonly sha256: string;
  /** Changed files: the content hash the file had in the previous revision. */
  readonly previousSha256?: string;
}

export interface PolicyErrorEntry {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly code: string;
  readonly message: string;
}

/** Where the text of an applied revision is kept (see revision-store.ts), and whether that worked. */
export interface RevisionTextOutcome {
  /** `stored`: written now; `present`: already there and intact; `failed`: not stored (`error`); `off`: not configured. */
  readonly status: 'stored' | 'present' | 'failed' | 'off';
  /** The JetStream Object Store bucket ("" when off). */
  readonly bucket: string;
  /** SHA-256 (hex) of the stored object's bytes. */
  readonly digest?: string;
  readonly error?: string;
}

export interface PolicyRecordBody extends Record<string, unknown> {
  readonly schema: typeof POLICY_SCHEMA;
  /** UUIDv7, also the Nats-Msg-Id. */
  readonly id: string;
  readonly instance: string;
  readonly time: string;
  readonly status: PolicyRecordStatus;
  readonly trigger: { readonly kind: string; readonly detail?: string };
  /** The revision live before the change; null for the first set of a process. */
  readonly previousRevision: string | null;
  /** The revision that went live (applied) or that was refused (rejected; the live one when the files could not be read). */
  readonly revision: string;
  /** All 64 hex digits of the revision's digest, when the candidate's files are known. */
  readonly revisionSha256?: string;
  /** How many policy files the candidate set holds, when known. */
  readonly files?: number;
  readonly added: readonly PolicyFileEntry[];
  readonly changed: readonly PolicyFileEntry[];
  readonly removed: readonly PolicyFileEntry[];
  /** Rejected: why, in one line, and every load error. */
  readonly message?: string;
  readonly errors?: readonly PolicyErrorEntry[];
  /** Applied: where the revision's text is kept. */
  readonly text?: RevisionTextOutcome;
  /** Only when something was over its byte budget: field or list → what it held. */
  readonly cut?: Readonly<Record<string, CutField>>;
}

const entry = (f: PolicyFileChange): PolicyFileEntry => (f.previousSha256 !== undefined ? { path: f.path, previousSha256: f.previousSha256, sha256: f.sha256 } : { path: f.path, sha256: f.sha256 });

/** The record of a change that went live (`text`: what storing its text gave) or was rejected. */
export function policyRecordBody(change: PolicyChange, instance: string, now: Date, text?: RevisionTextOutcome): PolicyRecordBody {
  const r = change.result;
  const status: PolicyRecordStatus = r.status === 'rejected' ? 'rejected' : 'applied';
  const body: Record<string, unknown> = {
    schema: POLICY_SCHEMA,
    id: newDecisionId(now.getTime()),
    instance,
    time: now.toISOString(),
    status,
    trigger: change.trigger.detail !== undefined ? { detail: change.trigger.detail, kind: change.trigger.kind } : { kind: change.trigger.kind },
    previousRevision: change.previousRevision,
    revision: change.revision,
    added: change.added.map(entry),
    changed: change.changed.map(entry),
    removed: change.removed.map(entry),
  };
  if (change.files) {
    body.revisionSha256 = revisionDigest(change.files);
    body.files = change.files.length;
  }
  if (r.status === 'rejected') {
    body.message = r.message.split('\n')[0]!.replace(/:$/, ''); // the errors follow, each in full
    body.errors = r.issues.map((i) => ({ code: i.code, column: i.column, file: i.file, line: i.line, message: i.message }));
  }
  if (status === 'applied' && text) body.text = text;
  return body as PolicyRecordBody;
}

export interface PolicyRecordBudgets {
  /** Each string (trigger detail, message, each path, each error's text): events.maxFieldBytes. */
  readonly fieldBytes: number;
  /** The whole published record: events.maxEventBytes, or less if NATS takes less. */
  readonly eventBytes: number;
}

/** Room kept for the chain link ({hash, id, prev, seq}) added after fitting. */
const LINK_ALLOWANCE = 1400;
const LISTS = ['errors', 'added', 'changed', 'removed'] as const;
type ListName = (typeof LISTS)[number];

const bytesOf = (s: string) => Buffer.byteLength(s, 'utf8');
const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * Holds a policy record to its budgets, so that any change, however many files or errors it has,
 * can be published. Strings over `fieldBytes` are cut with the marker `…[cut]`. A list with a cut
 * item, or too long for the record, keeps its leading items and gets a `cut` entry with the size,
 * SHA-256 and item count of the list as it was (canonical JSON), so the original can be checked
 * against it. The lists share what the record's budget leaves after everything else. Returns
 * `body` itself when nothing is over.
 */
export function fitPolicyRecord(body: PolicyRecordBody, budgets: PolicyRecordBudgets): PolicyRecordBody {
  if (bytesOf(canonicalJson(body)) + LINK_ALLOWANCE <= budgets.eventBytes && !overField(body, budgets.fieldBytes)) return body;
  let fitted = fit(body, budgets.fieldBytes, budgets.eventBytes);
  // Field budgets set so high that the strings alone fill the record: every string to 64 bytes.
  if (bytesOf(canonicalJson(fitted)) + LINK_ALLOWANCE > budgets.eventBytes) fitted = fit(body, 64, budgets.eventBytes);
  return fitted;
}

function overField(body: PolicyRecordBody, fieldBytes: number): boolean {
  const long = (s: string | undefined) => s !== undefined && s.length * 3 > fieldBytes && bytesOf(s) > fieldBytes;
  if (long(body.trigger.detail) || long(body.message) || long(body.text?.error)) return true;
  for (const name of LISTS) for (const item of listOf(body, name)) if (Object.values(item).some((v) => typeof v === 'string' && long(v))) return true;
  return false;
}

function listOf(body: PolicyRecordBody, name: ListName): readonly Record<string, unknown>[] {
  return (body[name] as readonly Record<string, unknown>[] | undefined) ?? [];
}

/** The record's own strings (not the lists) cut to `fieldBytes`; entries added to `cut`. */
function fitScalars(body: PolicyRecordBody, fieldBytes: number, cut: Record<string, CutField>): PolicyRecordBody {
  const str = (path: string, value: string): string => {
    if (value.length * 3 <= fieldBytes || bytesOf(value) <= fieldBytes) return value;
    const c = cutString(value, fieldBytes);
    cut[path] = c.cut;
    return c.value;
  };
  const out: Record<string, unknown> = { ...body };
  if (body.trigger.detail !== undefined) out.trigger = { ...body.trigger, detail: str('trigger.detail', body.trigger.detail) };
  if (body.message !== undefined) out.message = str('message', body.message);
  if (body.text?.error !== undefined) out.text = { ...body.text, error: str('text.error', body.text.error) };
  return out as PolicyRecordBody;
}

function fit(body: PolicyRecordBody, fieldBytes: number, eventBytes: number): PolicyRecordBody {
  const cut: Record<string, CutField> = { ...(body.cut ?? {}) };
  const out = fitScalars(body, fieldBytes, cut) as Record<string, unknown>;
  // Each list: its items' strings cut, then as many leading items as its share of the budget holds.
  const lists = new Map<ListName, { items: Record<string, unknown>[]; sizes: number[]; total: number; itemCut: boolean }>();
  for (const name of LISTS) {
    const original = listOf(body, name);
    if (original.length === 0) continue;
    let itemCut = false;
    const items = original.map((item) => {
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item)) {
        if (typeof v === 'string' && v.length * 3 > fieldBytes && bytesOf(v) > fieldBytes) {
          copy[k] = cutString(v, fieldBytes).value;
          itemCut = true;
        } else copy[k] = v;
      }
      return copy;
    });
    const sizes = items.map((i) => bytesOf(canonicalJson(i)) + 1);
    lists.set(name, { items, sizes, total: sizes.reduce((a, b) => a + b, 1), itemCut });
    out[name] = [];
  }
  const base = bytesOf(canonicalJson({ ...out, cut: { ...cut, ...Object.fromEntries(LISTS.map((n) => [n, { bytes: 0, count: 0, sha256: '0'.repeat(64) }])) } }));
  let remaining = Math.max(0, eventBytes - LINK_ALLOWANCE - base - 64);
  // Smallest lists first: what one does not need is left to the others.
  const order = [...lists.entries()].sort((a, b) => a[1].total - b[1].total);
  order.forEach(([name, l], i) => {
    const share = Math.floor(remaining / (order.length - i));
    let kept = l.items.length;
    let used = l.total;
    if (l.total > share) {
      kept = 0;
      used = 2;
      while (kept < l.items.length && used + l.sizes[kept]! <= share) used += l.sizes[kept++]!;
    }
    remaining -= used;
    out[name] = l.items.slice(0, kept);
    if (kept < l.items.length || l.itemCut) {
      const text = canonicalJson(listOf(body, name));
      cut[name] = { bytes: bytesOf(text), count: l.items.length, sha256: sha256Hex(text) };
    }
  });
  if (Object.keys(cut).length > 0) out.cut = cut;
  return out as PolicyRecordBody;
}
