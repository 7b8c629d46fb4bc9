import { readFileSync } from 'node:fs';
import type * as Nats from 'nats';
import type { ConnectionOptions } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import { natsServers } from '../events/nats-options.js';
import type { HeadClaim } from './verify-files.js';

/**
 * Chain heads recorded by Verdict outside the trail: the NATS KV bucket (events.headsBucket, one
 * key per instance, latest value = the last recorded signed checkpoint and its stream sequence) or
 * a file of JSON lines — `decision chain head` log lines of graceful stops, the KV values, or bare
 * checkpoints.
 */
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function claimOf(value: unknown, source: string): HeadClaim | undefined {
  if (!isObj(value)) return undefined;
  const head = isObj(value.head) ? value.head : value;
  if (isObj(head.checkpoint)) {
    return { source, checkpoint: head.checkpoint, streamSeq: typeof head.streamSeq === 'number' ? head.streamSeq : undefined, stream: typeof head.stream === 'string' ? head.stream : undefined };
  }
  if (typeof head.schema === 'string' && head.schema.startsWith('verdict.chain-checkpoint.')) return { source, checkpoint: head, streamSeq: undefined, stream: undefined };
  return undefined;
}

/** The latest head of every key of the KV bucket; `auth`: credentials and TLS (the --nats-* flags). */
export async function readKvHeads(natsUrl: string, bucket: string, timeoutMs = 5000, auth: Partial<ConnectionOptions> = {}): Promise<HeadClaim[]> {
  const nc = await nats().connect({ servers: natsServers(natsUrl), ...auth, timeout: timeoutMs, maxReconnectAttempts: 0, name: 'verdict audit verify' });
  try {
    const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true, timeout: timeoutMs });
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const claims: HeadClaim[] = [];
    for (const key of keys.sort()) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      let value: unknown;
      try {
        value = JSON.parse(entry.string());
      } catch {
        value = undefined;
      }
      const claim = claimOf(value, `KV head ${bucket}/${key} (revision ${entry.revision})`);
      if (claim) claims.push(claim);
      else claims.push({ source: `KV head ${bucket}/${key}`, checkpoint: {}, streamSeq: undefined, stream: undefined });
    }
    return claims;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export function readHeadsFile(file: string): HeadClaim[] {
  const claims: HeadClaim[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return;
    }
    const claim = claimOf(value, `${file}:${i + 1}`);
    if (claim) claims.push(claim);
  });
  return claims;
}

