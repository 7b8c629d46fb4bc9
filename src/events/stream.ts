import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';
import type { EventsConfig } from '../config/schema.js';

const NANOS_PER_SECOND = 1_000_000_000;
/** Room for the Nats-Msg-Id header and the rest of a message's framing within a size limit. */
export const HEADER_ALLOWANCE = 1024;

type StreamSettings = Pick<EventsConfig, 'stream' | 'subjectPrefix' | 'maxAgeSeconds' | 'duplicateWindowSeconds' | 'replicas' | 'maxEventBytes'>;

/** The stream Verdict creates, and the settings it requires of any stream it publishes into. */
export function desiredStream(config: StreamSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: config.stream,
    subjects: [`${config.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_msgs: -1,
    max_bytes: -1,
    max_msgs_per_subject: -1,
    max_msg_size: -1,
    max_age: config.maxAgeSeconds * NANOS_PER_SECOND,
    duplicate_window: config.duplicateWindowSeconds * NANOS_PER_SECOND,
    num_replicas: config.replicas,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    sealed: false,
  };
}

const unlimited = (v: number | undefined) => v === undefined || v <= 0;

/**
 * Every way `have` differs from what an evidence-grade decision stream needs, one line each
 * ("max_msgs is 1, must be -1 (unlimited)"); empty when it is fine. Any of these can destroy or
 * refuse events (limits that discard, a retention that deletes on ack, a seal, a missing subject),
 * let others do so (deny flags off, rollups), or weaken what an ack means (replicas, storage).
 */
export function streamDrift(have: Partial<StreamConfig>, config: StreamSettings): string[] {
  const want = desiredStream(config);
  const d: string[] = [];
  const subject = `${config.subjectPrefix}.>`;
  if (!have.subjects?.some((s) => s === subject || s === '>')) d.push(`subjects ${JSON.stringify(have.subjects ?? [])} do not include ${subject}`);
  if (have.storage !== StorageType.File) d.push(`storage is ${have.storage}, must be file`);
  if (have.retention !== RetentionPolicy.Limits) d.push(`retention is ${have.retention}, must be limits (other policies delete events once consumed)`);
  if (have.discard !== DiscardPolicy.Old) d.push(`discard is ${have.discard}, must be old`);
  for (const k of ['max_msgs', 'max_bytes', 'max_msgs_per_subject'] as const) {
    if (!unlimited(have[k])) d.push(`${k} is ${have[k]}, must be -1 (unlimited): the stream would discard events`);
  }
  if (!unlimited(have.max_msg_size) && have.max_msg_size! < config.maxEventBytes + HEADER_ALLOWANCE) {
    d.push(`max_msg_size is ${have.max_msg_size}, must be -1 or at least events.maxEventBytes + ${HEADER_ALLOWANCE} (${config.maxEventBytes + HEADER_ALLOWANCE})`);
  }
  if ((have.max_age ?? 0) !== want.max_age) d.push(`max_age is ${(have.max_age ?? 0) / NANOS_PER_SECOND} s, must be ${config.maxAgeSeconds} s (events.maxAgeSeconds)`);
  if (have.duplicate_window !== want.duplicate_window) d.push(`duplicate_window is ${(have.duplicate_window ?? 0) / NANOS_PER_SECOND} s, must be ${config.duplicateWindowSeconds} s (events.duplicateWindowSeconds)`);
  if ((have.num_replicas ?? 1) < config.replicas) d.push(`num_replicas is ${have.num_replicas ?? 1}, must be at least ${config.replicas} (events.replicas)`);
  if (have.deny_delete !== true) d.push('deny_delete is off: single events could be deleted');
  if (have.deny_purge !== true) d.push('deny_purge is off: the stream could be purged');
  if (have.allow_rollup_hdrs === true) d.push('allow_rollup_hdrs is on: a rollup message could purge a subject');
  if (have.sealed === true) d.push('the stream is sealed: it takes no new events');
  if ((have as { no_ack?: boolean }).no_ack === true) d.push('no_ack is on: checkpoints would never be acknowledged');
  if (have.mirror) d.push('the stream is a mirror: it takes no publishes');
  return d;
}

export interface StreamCheck {
  /** `created` (was missing; made now), `updated` (drift repaired), `ok`, or `drifted` (not repaired). */
  readonly result: 'created' | 'updated' | 'ok' | 'drifted';
  /** What differed when checked (before any repair); empty for `ok` and `created`. */
  readonly drift: readonly string[];
  /** The stream's max_msg_size (-1 = unlimited), to keep events under it. */
  readonly maxMsgSize: number;
  readonly missing: boolean;
}

export function isNotFound(err: unknown): boolean {
  return /not found/i.test((err as Error).message ?? '');
}

/**
 * Checks the stream's whole configuration. With `manage`, a missing stream is created and a
 * drifted one is put back (`updated`); otherwise drift is only reported (`drifted`), and so is a
 * missing stream (thrown). An update that NATS refuses (permissions, a setting it cannot change)
 * leaves it `drifted` with the reason appended.
 */
export async function checkStream(jsm: JetStreamManager, config: StreamSettings, manage: boolean): Promise<StreamCheck> {
  const want = desiredStream(config);
  let have: StreamConfig;
  try {
    have = (await jsm.streams.info(config.stream)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    if (!manage) throw new Error(`stream ${config.stream} does not exist and events.manageStream is false: an operator must create it (docs/events.md)`);
    await jsm.streams.add(want);
    return { result: 'created', drift: [], maxMsgSize: -1, missing: true };
  }
  const drift = streamDrift(have, config);
  if (drift.length === 0) return { result: 'ok', drift, maxMsgSize: have.max_msg_size ?? -1, missing: false };
  if (!manage) return { result: 'drifted', drift, maxMsgSize: have.max_msg_size ?? -1, missing: false };
  if (have.storage !== StorageType.File || have.retention !== RetentionPolicy.Limits || have.mirror) {
    return { result: 'drifted', drift: [...drift, 'JetStream cannot change this on an existing stream: recreate it or set events.stream to another name'], maxMsgSize: have.max_msg_size ?? -1, missing: false };
  }
  const subjectOk = have.subjects?.some((s) => s === `${config.subjectPrefix}.>` || s === '>');
  try {
    await jsm.streams.update(config.stream, {
      ...have,
      ...want,
      subjects: subjectOk ? have.subjects : [...(have.subjects ?? []), `${config.subjectPrefix}.>`],
      num_replicas: Math.max(have.num_replicas ?? 1, config.replicas),
    } as StreamConfig);
  } catch (err) {
    return { result: 'drifted', drift: [...drift, `restoring it failed: ${(err as Error).message}`], maxMsgSize: have.max_msg_size ?? -1, missing: false };
  }
  return { result: 'updated', drift, maxMsgSize: -1, missing: false };
}
