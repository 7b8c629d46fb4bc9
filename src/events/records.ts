import { newDecisionId } from '../service/ids.js';
import { EVENTS_LOST_SCHEMA, PUBLISH_REFUSED_SCHEMA } from './event.js';

/** Longest reason kept in a record (UTF-8 bytes); NATS's own error texts are far shorter. */
const MAX_REASON_BYTES = 512;

function boundedReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= MAX_REASON_BYTES) return reason;
  let end = MAX_REASON_BYTES - 3;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return `${bytes.toString('utf8', 0, end)}…`;
}

/**
 * `verdict.publish-refused.v1`: NATS refused a chained event (or record) for good, so it is not in
 * the stream. This record takes the next place in the chain and names the refused one, so a
 * verifier reports "refused by NATS: reason" for that seq instead of an unexplained gap.
 */
export interface PublishRefusedRecord extends Record<string, unknown> {
  readonly id: string;
  readonly instance: string;
  readonly refused: {
    /** UTF-8 bytes of the refused message's payload. */
    readonly bytes: number;
    /** Chain id and seq of the refused record (an earlier run's chain when it came from the spool). */
    readonly chain: string;
    readonly seq: number;
    /** Its `chain.hash` and its id (= its Nats-Msg-Id). */
    readonly hash: string;
    readonly id: string;
    /** NATS's reason, e.g. "MAX_PAYLOAD_EXCEEDED", or why Verdict did not send it. */
    readonly reason: string;
    readonly subject: string;
  };
  readonly schema: typeof PUBLISH_REFUSED_SCHEMA;
  readonly time: string;
}

export function publishRefused(instance: string, now: Date, refused: PublishRefusedRecord['refused']): PublishRefusedRecord {
  return { id: newDecisionId(now.getTime()), instance, refused: { ...refused, reason: boundedReason(refused.reason) }, schema: PUBLISH_REFUSED_SCHEMA, time: now.toISOString() };
}

/**
 * `verdict.events-lost.v1`: decisions that were made but whose events never reached the spool.
 * - stage `spool`: the spool refused the write (full, ENOSPC, I/O error): events `fromSeq`..`toSeq`
 *   of `chain` had their place in the chain but exist nowhere. Written once the spool takes writes again.
 * - stage `handoff`: the serving thread could not hand them to the publisher thread (its bound was
 *   reached, or the thread was down and being restarted): they never got a seq; `from`/`to` are the
 *   decision times of the first and last of them.
 */
export interface EventsLostRecord extends Record<string, unknown> {
  readonly id: string;
  readonly instance: string;
  readonly lost: {
    readonly count: number;
    readonly reason: string;
    readonly stage: 'spool' | 'handoff';
    readonly chain?: string;
    readonly fromSeq?: number;
    readonly toSeq?: number;
    readonly from?: string;
    readonly to?: string;
  };
  readonly schema: typeof EVENTS_LOST_SCHEMA;
  readonly time: string;
}

export function eventsLost(instance: string, now: Date, lost: EventsLostRecord['lost']): EventsLostRecord {
  return { id: newDecisionId(now.getTime()), instance, lost: { ...lost, reason: boundedReason(lost.reason) }, schema: EVENTS_LOST_SCHEMA, time: now.toISOString() };
}
