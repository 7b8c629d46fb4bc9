import { hash as oneShotHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { CutField, UnchainedEvent } from './event.js';

/**
 * Byte budgets of a decision event, so that every event can be published: NATS refuses a message
 * over its max_payload (and a stream one over its max_msg_size), and a caller controls most of an
 * event's strings. Budgets count UTF-8 bytes of the value, not UTF-16 units.
 */
export interface EventBudgets {
  /** Each string a caller or a policy can make long: requestId, action, ids, types, caller id, each role, policy, rule, each error message. */
  readonly fieldBytes: number;
  /** The roles list and the errors list, each as canonical JSON (after each item's own budget). */
  readonly listBytes: number;
  /** The whole published event (canonical JSON, UTF-8). */
  readonly eventBytes: number;
}

/** Appended to a cut string; the event's `cut` map (not the marker) says which fields were cut. */
export const CUT_MARKER = '…[cut]';
const MARKER_BYTES = Buffer.byteLength(CUT_MARKER);
/** Budgets of the last resort, when an event is still too big without its attributes. */
export const MINIMAL_BUDGETS: Omit<EventBudgets, 'eventBytes'> = { fieldBytes: 64, listBytes: 512 };
/** Smallest allowed events.maxEventBytes: an event cut to MINIMAL_BUDGETS always fits. */
export const MIN_EVENT_BYTES = 16 * 1024;

function sha256Hex(bytes: Buffer | string): string {
  return oneShotHash('sha256', bytes, 'hex');
}

/** `value` cut to at most `budget` UTF-8 bytes (marker included, on a character boundary), and what it held. */
export function cutString(value: string, budget: number): { value: string; cut: CutField } {
  const bytes = Buffer.from(value, 'utf8');
  let end = Math.max(0, budget - MARKER_BYTES);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // never split a UTF-8 sequence
  return { value: bytes.toString('utf8', 0, end) + CUT_MARKER, cut: { bytes: bytes.length, sha256: sha256Hex(bytes) } };
}

/** UTF-8 length without encoding when the UTF-16 length already proves it fits (≤ 3 bytes per unit). */
function fits(value: string, budget: number): boolean {
  return value.length * 3 <= budget || Buffer.byteLength(value, 'utf8') <= budget;
}

/**
 * Applies the field and list budgets. Returns `body` itself when nothing is over budget (the usual
 * case: a few length comparisons, nothing allocated); otherwise a copy with the long values cut and
 * a `cut` map naming each cut field with the size and SHA-256 of what it held.
 */
export function fitFields(body: UnchainedEvent, budgets: Omit<EventBudgets, 'eventBytes'>): UnchainedEvent {
  const f = budgets.fieldBytes;
  const b = body;
  let over =
    !fits(b.requestId, f) || !fits(b.action, f) || !fits(b.subject.id, f) || !fits(b.subject.type, f) || !fits(b.resource.id, f) ||
    !fits(b.resource.type, f) || !fits(b.caller.id, f) || !fits(b.caller.kind, f) || !fits(b.policy, f) || !fits(b.rule, f);
  let rolesChars = 0;
  for (const r of b.subject.roles) {
    rolesChars += r.length + 3;
    if (!fits(r, f)) over = true;
  }
  if (rolesChars * 3 > budgets.listBytes) over = true; // exact check below
  if (b.errors !== undefined) over = true; // rare: checked in full below
  if (b.limits !== undefined && b.limits.length * (64 + 80) > budgets.listBytes) over = true; // many limits: checked in full below
  if (!over) return body;

  const cut: Record<string, CutField> = { ...(b.cut ?? {}) };
  const str = (path: string, value: string): string => {
    if (fits(value, f)) return value;
    const c = cutString(value, f);
    cut[path] = c.cut;
    return c.value;
  };
  const list = <T>(path: string, items: readonly T[], fitItem: (item: T, i: number) => T): T[] => {
    const fitted = items.map(fitItem);
    const whole = canonicalJson(fitted);
    if (fits(whole, budgets.listBytes)) return fitted;
    // Keep leading items while the list fits; the digest covers the list as it was given.
    const original = Buffer.from(canonicalJson(items), 'utf8');
    cut[path] = { bytes: original.length, sha256: sha256Hex(original), count: items.length };
    const kept: T[] = [];
    let size = 2;
    for (const item of fitted) {
      const n = Buffer.byteLength(canonicalJson(item), 'utf8') + 1;
      if (size + n > budgets.listBytes) break;
      kept.push(item);
      size += n;
    }
    return kept;
  };

  const out: Record<string, unknown> = {
    ...b,
    action: str('action', b.action),
    caller: { id: str('caller.id', b.caller.id), kind: str('caller.kind', b.caller.kind) },
    policy: str('policy', b.policy),
    requestId: str('requestId', b.requestId),
    resource: { id: str('resource.id', b.resource.id), type: str('resource.type', b.resource.type) },
    rule: str('rule', b.rule),
    subject: {
      id: str('subject.id', b.subject.id),
      roles: list('subject.roles', b.subject.roles, (r, i) => str(`subject.roles.${i}`, r)),
      type: str('subject.type', b.subject.type),
    },
  };
  if (b.errors !== undefined) {
    out.errors = list('errors', b.errors, (e, i) => ({ message: str(`errors.${i}.message`, e.message), policy: str(`errors.${i}.policy`, e.policy), rule: str(`errors.${i}.rule`, e.rule) }));
  }
  if (b.limits !== undefined) out.limits = list('limits', b.limits, (l) => l);
  if (Object.keys(cut).length === 0) return body;
  out.cut = cut;
  return out as unknown as UnchainedEvent;
}

/** The event without its attributes, saying so (`truncated`) and what they held (`cut.attributes`). */
export function withoutAttributes(body: UnchainedEvent): UnchainedEvent {
  const { attributes, ...rest } = body;
  if (attributes === undefined) return body;
  const original = Buffer.from(canonicalJson(attributes), 'utf8');
  return { ...rest, cut: { ...(body.cut ?? {}), attributes: { bytes: original.length, sha256: sha256Hex(original) } }, truncated: 'attributes' };
}

/** Whether a published payload fits `eventBytes` (UTF-8), without encoding it when its length proves it. */
export function payloadFits(payload: string, eventBytes: number): boolean {
  return fits(payload, eventBytes);
}
