import { createHash } from 'node:crypto';
import type { KV, NatsConnection } from 'nats';
import type { EventsConfig } from '../config/schema.js';
import type { Logger } from '../server/logger.js';
import { loadSigningKey, signText, type SigningKey } from '../keys/signing-key.js';
import { canonicalJson } from './canonical.js';
import { CHECKPOINT_SCHEMA } from './event.js';

/**
 * Chain checkpoints: "chain C holds events 1..seq, the last with hash H", signed by the instance.
 *
 * v2 adds `sig`: an Ed25519 signature (events.signingKeyFile) over the canonical JSON of the
 * checkpoint without `sig.value` — so the signature covers the chain id, seq, head hash, instance,
 * time, the final flag, the schema and the key id. Since every event's hash covers the one before
 * it, one signature authenticates the whole unbroken run of events it ends. v1 (no signature)
 * is still read, as "unsigned". Built here and nowhere else; the publisher only calls
 * buildCheckpoint() and, after JetStream acknowledged one, checkpointAcknowledged().
 */
export const CHECKPOINT_SCHEMA_V1 = CHECKPOINT_SCHEMA;
export const CHECKPOINT_SCHEMA_V2 = 'verdict.chain-checkpoint.v2';

export interface CheckpointSignature {
  readonly alg: 'ed25519';
  /** Key id: first 16 hex digits of the SHA-256 of the raw public key. */
  readonly key: string;
  /** base64url Ed25519 signature of checkpointSigningText(). */
  readonly value: string;
}

/** Keys in sorted order, so JSON.stringify of it is its canonical JSON. */
export interface SignedCheckpoint {
  readonly chain: string;
  readonly final: boolean;
  readonly hash: string;
  readonly instance: string;
  readonly schema: typeof CHECKPOINT_SCHEMA_V2;
  readonly seq: number;
  /** Absent when the instance has no signing key (events.signingKeyFile unset). */
  readonly sig?: CheckpointSignature;
  readonly time: string;
}

/** What is signed: the canonical JSON of the checkpoint with `sig` reduced to {alg, key}. */
export function checkpointSigningText(checkpoint: Record<string, unknown>): string {
  const sig = checkpoint.sig as { alg?: unknown; key?: unknown } | undefined;
  return canonicalJson({ ...checkpoint, sig: { alg: sig?.alg, key: sig?.key } });
}

const signers = new Map<string, SigningKey>();

/** The instance's signing key, loaded once per file (config validation has already checked it). */
export function signingKeyFor(config: Pick<EventsConfig, 'signingKeyFile'>): SigningKey | undefined {
  const file = config.signingKeyFile;
  if (!file) return undefined;
  let key = signers.get(file);
  if (!key) {
    key = loadSigningKey(file).key;
    signers.set(file, key);
  }
  return key;
}

/** Builds (and signs, when the instance has a key) one checkpoint. About 50 µs with a signature. */
export function buildCheckpoint(
  config: Pick<EventsConfig, 'instanceId' | 'signingKeyFile'>,
  head: { readonly chain: string; readonly seq: number; readonly hash: string; readonly final: boolean },
  now: Date = new Date(),
): SignedCheckpoint {
  const body = { chain: head.chain, final: head.final, hash: head.hash, instance: config.instanceId, schema: CHECKPOINT_SCHEMA_V2, seq: head.seq } as const;
  const time = now.toISOString();
  const key = signingKeyFor(config);
  if (!key) return { ...body, time };
  const unsigned = { ...body, sig: { alg: 'ed25519' as const, key: key.id }, time };
  return { ...body, sig: { alg: 'ed25519', key: key.id, value: signText(key, checkpointSigningText(unsigned)) }, time };
}

/** A NATS KV key for an instance id: KV keys allow only [-_=A-Za-z0-9] here; others are replaced, plus a digest. */
export function headKey(instance: string): string {
  const safe = instance.replace(/[^-_=A-Za-z0-9]/g, '_').slice(0, 200);
  return safe === instance && safe !== '' ? safe : `${safe}_${createHash('sha256').update(instance).digest('hex').slice(0, 8)}`;
}

/** The value of a head key: the signed checkpoint and where JetStream stored it. */
export interface ChainHead {
  readonly checkpoint: SignedCheckpoint;
  readonly stream: string;
  readonly streamSeq: number;
}

/**
 * Records the latest acknowledged checkpoint in a NATS KV bucket (events.headsBucket, key per
 * instance, history kept by the bucket): the first of each chain and the final one at once, the
 * others at most once per events.headsIntervalMs — a KV put is a JetStream publish with an ack,
 * too dear for every 100 ms checkpoint. An operator (or `verdict audit verify --heads`) compares it
 * with the trail: a trail that ends before the head was cut.
 */
class HeadRecorder {
  private kv: Promise<KV> | undefined;
  private kvConnection: NatsConnection | undefined;
  private lastWrite = 0;
  private lastChain = '';
  private writing: Promise<void> | undefined;
  private pending: ChainHead | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastFailureLog = 0;

  constructor(
    private readonly config: Pick<EventsConfig, 'headsBucket' | 'headsIntervalMs' | 'instanceId' | 'ackTimeoutMs'>,
    private readonly logger: Logger,
  ) {}

  /** Returns a promise that settles once a final head is stored (or failed); other heads are written in the background. */
  record(head: ChainHead, nc: NatsConnection): Promise<void> {
    if (nc !== this.kvConnection) {
      this.kvConnection = nc;
      this.kv = undefined;
    }
    const urgent = head.checkpoint.final || head.checkpoint.chain !== this.lastChain;
    this.pending = head;
    if (urgent || Date.now() - this.lastWrite >= this.config.headsIntervalMs) return this.flush();
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, Math.max(0, this.lastWrite + this.config.headsIntervalMs - Date.now()));
      this.timer.unref();
    }
    return Promise.resolve();
  }

  private async flush(): Promise<void> {
    while (this.writing) await this.writing;
    const head = this.pending;
    if (!head || !this.kvConnection || this.kvConnection.isClosed()) return;
    this.pending = undefined;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.lastWrite = Date.now();
    this.lastChain = head.checkpoint.chain;
    const nc = this.kvConnection;
    this.writing = (async () => {
      try {
        this.kv ??= nc.jetstream().views.kv(this.config.headsBucket, { history: 64, timeout: this.config.ackTimeoutMs });
        const kv = await this.kv;
        await kv.put(headKey(this.config.instanceId), canonicalJson(head));
      } catch (err) {
        this.kv = undefined;
        if (Date.now() - this.lastFailureLog > 60_000) {
          this.lastFailureLog = Date.now();
          this.logger.warn({ err: (err as Error).message, bucket: this.config.headsBucket }, 'chain head not recorded in NATS KV');
        }
      }
    })();
    const done = this.writing;
    await done;
    if (this.writing === done) this.writing = undefined;
  }
}

const recorders = new WeakMap<object, HeadRecorder>();
const announced = new WeakSet<object>();

/** Once per publisher: which key signs (so the log names the key id to put in keyrings), or that none does. */
function announceSigning(config: EventsConfig, logger: Logger): void {
  if (!config.signingKeyFile) {
    logger.warn('checkpoints are not signed (events.signingKeyFile is not set): `verdict audit verify --keys` will reject this instance\'s chains');
    return;
  }
  const { key, warning } = loadSigningKey(config.signingKeyFile);
  logger.info({ key: key.id, file: config.signingKeyFile }, 'checkpoints are signed');
  if (warning) logger.warn({ file: config.signingKeyFile }, `signing key: ${warning}`);
}

/**
 * Called by the publisher after JetStream acknowledged a checkpoint. Never throws. Resolves at once,
 * except for a final checkpoint, whose KV head is awaited (at most 2 s) before the
 * publisher closes its connection. While the publisher is closing, each acknowledged head is also
 * logged (`decision chain head`), so the log holds the last signed head of every graceful stop.
 */
export async function checkpointAcknowledged(
  config: EventsConfig,
  checkpoint: SignedCheckpoint,
  ack: { readonly stream: string; readonly seq: number },
  nc: NatsConnection | undefined,
  logger: Logger,
  closing: boolean,
): Promise<void> {
  try {
    if (!announced.has(config)) {
      announced.add(config);
      announceSigning(config, logger);
    }
    const head: ChainHead = { checkpoint, stream: ack.stream, streamSeq: ack.seq };
    if (closing) logger.info({ head }, 'decision chain head');
    if (!config.headsBucket || !nc) return;
    let recorder = recorders.get(config);
    if (!recorder) {
      recorder = new HeadRecorder(config, logger);
      recorders.set(config, recorder);
    }
    const stored = recorder.record(head, nc);
    if (!checkpoint.final) return;
    // Bounded: shutdown must not wait long for a bucket NATS is slow to answer.
    await Promise.race([stored, new Promise<void>((r) => setTimeout(r, Math.min(config.ackTimeoutMs, 2000)).unref())]);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'chain head not recorded');
  }
}
