import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';
import type { EventsConfig } from '../config/schema.js';

const NANOS_PER_SECOND = 1_000_000_000;

/** The stream settings Verdict requires for an evidence-grade decision log. */
export function desiredStream(config: EventsConfig): Partial<StreamConfig> & { name: string } {
  return {
    name: config.stream,
    subjects: [`${config.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: config.maxAgeSeconds * NANOS_PER_SECOND,
    duplicate_window: config.duplicateWindowSeconds * NANOS_PER_SECOND,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
  };
}

/**
 * Creates the stream, or checks an existing one: it must capture our subjects with file storage
 * and deny deletes and purges. Mismatches that can be updated are; others fail with a message.
 */
export async function ensureStream(jsm: JetStreamManager, config: EventsConfig): Promise<'created' | 'updated' | 'ok'> {
  const want = desiredStream(config);
  let info;
  try {
    info = await jsm.streams.info(config.stream);
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
    await jsm.streams.add(want);
    return 'created';
  }
  const have = info.config;
  if (have.storage !== StorageType.File) {
    throw new Error(`stream ${config.stream} exists with ${have.storage} storage; decision events need file storage (recreate it or set events.stream to another name)`);
  }
  const subjectOk = have.subjects?.some((s) => s === `${config.subjectPrefix}.>` || s === '>' );
  const needsUpdate = !subjectOk || !have.deny_delete || !have.deny_purge || have.duplicate_window !== want.duplicate_window || have.max_age !== want.max_age;
  if (!needsUpdate) return 'ok';
  await jsm.streams.update(config.stream, {
    ...have,
    subjects: subjectOk ? have.subjects : [...(have.subjects ?? []), `${config.subjectPrefix}.>`],
    deny_delete: true,
    deny_purge: true,
    duplicate_window: want.duplicate_window!,
    max_age: want.max_age!,
  });
  return 'updated';
}
