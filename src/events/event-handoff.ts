import type { DecisionRecord } from '../service/decision-record.js';
import { EVENT_SCHEMA, type AttributeSelector, type UnchainedEvent } from './event.js';

/**
 * How the serving thread hands decision events to the publisher thread: one flat array of
 * primitives per group, a fixed number of slots per event. Structured cloning an array of strings
 * and numbers costs a fraction of cloning one object tree per event (measured: about 1 µs against
 * 4 µs per event, and far less garbage), and what is left to build — the event object, the ISO
 * time, parsing the rare attribute and error sections — happens on the publisher thread.
 */
export type PackedEvents = (string | number)[];

export const SLOTS = 25;
/** Where an event's id is among its slots (the restart de-duplication reads it). */
export const ID_SLOT = 7;
const TRACE_SLOT = 22;
const WAIT_SLOT = 23;
const NO_WAIT = -1;
const LIMITS_SLOT = 24;
/** What an event's fixed-size slots weigh, roughly, in the hand-off bound. */
const FIXED_CHARS = 160;

/**
 * Appends one event to `out`. `wait` is the durability waiter's id, or undefined. Returns the
 * event's weight for the hand-off bound: the length of its strings (bytes for ASCII), counted from
 * values at hand, so the bound costs a few additions and no allocation.
 */
export function packEvent(out: PackedEvents, record: DecisionRecord, instance: string, selector: AttributeSelector, wait: number | undefined): number {
  const { request, decision } = record;
  const selected = selector.select(record);
  const caller = request.caller;
  const attributes = selected === undefined ? '' : JSON.stringify(selected);
  const errors = decision.errors.length === 0 ? '' : JSON.stringify(decision.errors.map((e) => ({ message: e.message, policy: e.policy, rule: e.rule })));
  // Roles as one JSON string: a single string slot clones cheaper than an array.
  const roles = JSON.stringify(request.subject.roles);
  const limits = decision.usage === undefined ? '' : JSON.stringify(decision.usage.map((u) => ({ mode: u.mode, name: u.name, outcome: u.outcome, remaining: u.remaining, retryAfterMs: u.retryAfterMs })));
  out.push(
    request.action,
    attributes,
    caller ? caller.id : '',
    caller ? caller.kind : 'anonymous',
    decision.effect,
    errors,
    Math.round(record.evaluationNs / 10) / 100,
    record.decisionId,
    instance,
    decision.policy,
    decision.reason,
    record.requestId,
    request.resource.id,
    request.resource.type,
    decision.revision,
    decision.rule,
    record.source,
    request.subject.id,
    roles,
    request.subject.type,
    record.time.getTime(),
    record.delivered === false ? 0 : 1,
    record.traceId ?? '',
    wait ?? NO_WAIT,
    limits,
  );
  return (
    FIXED_CHARS + request.action.length + attributes.length + (caller ? caller.id.length : 0) + errors.length + decision.policy.length + record.requestId.length +
    request.resource.id.length + request.resource.type.length + decision.rule.length + request.subject.id.length + roles.length + request.subject.type.length +
    (record.traceId ? record.traceId.length : 0) + limits.length
  );
}

/** The time (ms) of the event at `index` of a packed group, and its id. */
export function packedTime(packed: PackedEvents, index: number): number {
  return packed[index * SLOTS + 20] as number;
}

export function packedId(packed: PackedEvents, index: number): string {
  return packed[index * SLOTS + ID_SLOT] as string;
}

export function packedWait(packed: PackedEvents, index: number): number | undefined {
  const w = packed[index * SLOTS + WAIT_SLOT] as number;
  return w === NO_WAIT ? undefined : w;
}

/** The publisher thread's side: the event bodies buildUnchainedEvent would have made. */
export function unpackEvents(packed: PackedEvents): { body: UnchainedEvent; wait?: number }[] {
  const out: { body: UnchainedEvent; wait?: number }[] = [];
  if (packed.length % SLOTS !== 0) throw new Error(`packed decision events: ${packed.length} slots is not a multiple of ${SLOTS}`);
  for (let i = 0; i < packed.length; i += SLOTS) {
    const s = (k: number) => packed[i + k] as string;
    // Typed, so a field the schema gains cannot be forgotten here; hashing does not depend on key order.
    const body: UnchainedEvent = {
      action: s(0),
      ...(s(1) !== '' ? { attributes: JSON.parse(s(1)) as UnchainedEvent['attributes'] } : {}),
      caller: { id: s(2), kind: s(3) },
      decision: s(4) as UnchainedEvent['decision'],
      ...(s(5) !== '' ? { errors: JSON.parse(s(5)) as UnchainedEvent['errors'] } : {}),
      evaluationUs: packed[i + 6] as number,
      id: s(7),
      instance: s(8),
      ...(s(LIMITS_SLOT) !== '' ? { limits: JSON.parse(s(LIMITS_SLOT)) as UnchainedEvent['limits'] } : {}),
      policy: s(9),
      reason: s(10),
      requestId: s(11),
      resource: { id: s(12), type: s(13) },
      revision: s(14),
      rule: s(15),
      schema: EVENT_SCHEMA,
      source: s(16),
      subject: { id: s(17), roles: JSON.parse(s(18)) as string[], type: s(19) },
      time: new Date(packed[i + 20] as number).toISOString(),
      ...(s(TRACE_SLOT) !== '' ? { traceId: s(TRACE_SLOT) } : {}),
    };
    if (packed[i + 21] === 0) (body as { delivered?: false }).delivered = false;
    const wait = packed[i + WAIT_SLOT] as number;
    out.push(wait === NO_WAIT ? { body } : { body, wait });
  }
  return out;
}
