import type * as Nats from 'nats';
import type { ConnectionOptions, ConsumerInfo, JetStreamManager, JsMsg, NatsConnection } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import type { Logger } from '../server/logger.js';
import type { Keyring } from '../keys/keyring.js';
import type { SigningKey } from '../keys/signing-key.js';
import { classifyRecord, parseCanonical } from './records.js';
import { loadReceipts, ReceiptsFile } from './receipts.js';
import { describeRejected, RejectsFile, type RejectedMessage } from './rejects.js';
import { formatRejectedLine, formatTrailLine, TrailWriter } from './trail-file.js';
import { ChainVerifier, type Finding } from './verifier.js';

export interface AuditConsumerOptions {
  readonly natsUrl: string;
  /** Credentials and TLS (cli/commands/nats-flags.ts): the keeper needs only read access (docs/events.md). */
  readonly natsAuth?: Partial<ConnectionOptions>;
  readonly stream: string;
  readonly durable: string;
  /** One NATS subject filter (e.g. verdict.decisions.*.deny); absent = everything in the stream. */
  readonly filter: string | undefined;
  /** Output directory for rotating JSONL files; undefined = stdout. */
  readonly outDir: string | undefined;
  readonly rotateBytes: number;
  readonly batch: number;
  /** The keeper's receipts (position, file digests, latest checkpoint per chain); undefined = none (stdout only). */
  readonly receiptsFile: string | undefined;
  /** Where refused messages go in full; undefined = only the log. */
  readonly rejectsFile: string | undefined;
  /** Public keys checkpoints must be signed with; undefined = signatures are not checked. */
  readonly keyring: Keyring | undefined;
  /** The keeper's own key, to sign its receipts. */
  readonly signingKey: SigningKey | undefined;
  /** Stop at the first finding (exit 1) instead of running on and exiting 1 at the end. */
  readonly exitOnFinding: boolean;
  /** NATS must answer within this time at start, else the keeper exits 1. */
  readonly connectTimeoutMs: number;
  /** A chain's newest records may stay unsigned this long before it is a finding. */
  readonly unsignedGraceMs: number;
  /** A gap is reported once no publish-refused record explained it within this time. */
  readonly gapGraceMs: number;
}

export interface AuditConsumerStats {
  received: number;
  written: number;
  rejected: number;
  skippedDuplicates: number;
  findings: number;
}

/** A start failure: the command prints the message and exits 1. */
export class ConsumerStartError extends Error {
  readonly code = 'AUDIT_START_FAILED';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The audit trail keeper: a durable JetStream pull consumer that keeps only valid records. Every
 * message must be one canonical JSON record of a known shape (decision event, checkpoint, or
 * another chained record); anything else goes to the rejects file with the reason, and a
 * placeholder keeps its stream sequence in the trail. Records are verified as they arrive (chains,
 * signatures with a keyring, stream sequence and subject); each finding is an error log line
 * `AUDIT TRAIL PROBLEM`. Lines are fsynced, then the receipts (the position to resume from,
 * file digests, latest checkpoint per chain) are written, then the batch is acknowledged.
 */
export class AuditConsumer {
  private nc: NatsConnection | undefined;
  private stopped = false;
  private readonly writer: TrailWriter | undefined;
  private readonly rejects: RejectsFile | undefined;
  private receipts: ReceiptsFile | undefined;
  private readonly verifier: ChainVerifier;
  readonly stats: AuditConsumerStats = { received: 0, written: 0, rejected: 0, skippedDuplicates: 0, findings: 0 };
  /** Messages up to this stream sequence are already kept (redeliveries are skipped). */
  private keptUpTo = 0;
  private loop: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private finishedResolve!: (reason: string) => void;
  /** Resolves when the keeper stops by itself (a finding with exitOnFinding, or a fatal write error). */
  readonly finished: Promise<string> = new Promise((r) => (this.finishedResolve = r));
  private fatal: string | undefined;

  constructor(
    private readonly options: AuditConsumerOptions,
    private readonly logger: Logger,
    private readonly out: (text: string) => void = (t) => process.stdout.write(t),
    private readonly onFinding: (f: Finding) => void = () => undefined,
  ) {
    this.writer = options.outDir ? new TrailWriter(options.outDir, options.rotateBytes) : undefined;
    this.rejects = options.rejectsFile ? new RejectsFile(options.rejectsFile) : undefined;
    // A resumed or filtered keeper sees chains mid-way: anchor them instead of reporting a gap.
    this.verifier = new ChainVerifier({
      partial: options.filter !== undefined,
      anchorUnknownChains: true,
      keyring: options.keyring,
      keepFindings: 0,
      onFinding: (f) => this.finding(f),
    });
  }

  private finding(f: Finding): void {
    this.stats.findings++;
    this.logger.error({ kind: f.kind, chain: f.chain, seq: f.seq, where: f.where, detail: f.message }, 'AUDIT TRAIL PROBLEM');
    this.onFinding(f);
    if (this.options.exitOnFinding && !this.fatal) {
      this.fatal = `stopped at the first finding (${f.kind})`;
      this.stopped = true;
      this.finishedResolve(this.fatal);
    }
  }

  /** Opens the trail, connects and binds the durable; throws ConsumerStartError (within a few seconds) if it cannot. */
  async start(): Promise<void> {
    const o = this.options;
    let previous;
    try {
      previous = o.receiptsFile ? loadReceipts(o.receiptsFile) : undefined;
    } catch (err) {
      throw new ConsumerStartError((err as Error).message);
    }
    if (previous && (previous.stream !== o.stream || previous.durable !== o.durable || previous.filter !== (o.filter ?? null))) {
      throw new ConsumerStartError(`receipts ${o.receiptsFile} belong to stream ${previous.stream}, durable ${previous.durable}, filter ${previous.filter ?? '(none)'}; give each keeper its own --receipts file`);
    }
    if (o.receiptsFile) this.receipts = new ReceiptsFile(o.receiptsFile, { stream: o.stream, durable: o.durable, filter: o.filter ?? null }, previous, o.signingKey);
    this.keptUpTo = previous?.streamSeq ?? 0;
    const openProblems = [];
    if (this.writer) {
      try {
        openProblems.push(...this.writer.open(previous?.position ?? undefined, previous ? previous.files.map((f) => f.name) : undefined));
      } catch (err) {
        throw new ConsumerStartError((err as Error).message);
      }
    }
    this.nc = await this.connectWithin(o.connectTimeoutMs);
    let info: ConsumerInfo;
    try {
      info = await this.bindDurable(await this.nc.jetstreamManager({ timeout: 5000 }));
    } catch (err) {
      await this.nc.close().catch(() => undefined);
      throw err instanceof ConsumerStartError ? err : new ConsumerStartError((err as Error).message);
    }
    if (!o.keyring) this.logger.warn('no keyring (--keys): checkpoint signatures are not checked, so a forged chain is not told from a real one');
    for (const p of openProblems) {
      if (p.kind === 'unreceipted') this.logger.warn({ detail: p.message }, 'trail file repaired');
      else {
        this.verifier.report('truncated', '', 0, `trail ${o.outDir}`, p.message);
        // Its receipt now stands among the closed files; the next file becomes the position.
        this.receipts?.dropPosition();
      }
    }
    const acked = info.ack_floor.stream_seq;
    if (this.receipts && acked > this.keptUpTo) {
      this.verifier.report('truncated', '', 0, `durable ${o.durable}`, `the durable acknowledged stream messages up to ${acked}, but the receipts end at ${this.keptUpTo}: messages ${this.keptUpTo + 1}..${acked} were acknowledged without being kept here (another keeper on this durable, or receipts from an older copy)`);
    }
    // Stream sequences must go on from where the keeper stopped: a message missing in between left the stream unread.
    this.verifier.lastStreamSeq = Math.max(this.keptUpTo, acked);
    // So must the chains: each goes on from the last record kept.
    for (const c of this.receipts?.chainReceipts() ?? []) if (c.head) this.verifier.seed(c.chain, c.head.seq, c.head.hash);
    // Receipts from the start: they name this keeper's stream and durable, and keep the receipt of a file set aside.
    try {
      this.receipts?.commit(this.keptUpTo, this.writer?.position(), this.writer?.takeClosed() ?? []);
    } catch (err) {
      await this.nc.close().catch(() => undefined);
      throw new ConsumerStartError(`cannot write the receipts ${o.receiptsFile}: ${(err as Error).message}`);
    }
    this.logger.info({ stream: o.stream, durable: o.durable, filter: o.filter ?? null, out: o.outDir ?? 'stdout', receipts: o.receiptsFile ?? null, resumeAfterSeq: this.keptUpTo, keyring: o.keyring ? o.keyring.size : null }, 'audit consumer started');
    this.sweepTimer = setInterval(() => this.verifier.sweep(Date.now(), o.gapGraceMs, o.unsignedGraceMs), 1000);
    this.sweepTimer.unref();
    this.loop = this.run();
  }

  /** Connects, retrying every 500 ms until `timeoutMs` has passed. */
  private async connectWithin(timeoutMs: number): Promise<NatsConnection> {
    const deadline = Date.now() + timeoutMs;
    let attempt = 0;
    for (;;) {
      attempt++;
      try {
        return await nats().connect({
          ...this.options.natsAuth,
          servers: this.options.natsUrl,
          name: `verdict audit ${this.options.durable}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          timeout: Math.max(500, Math.min(2000, deadline - Date.now())),
        });
      } catch (err) {
        if (Date.now() + 500 >= deadline) {
          throw new ConsumerStartError(`cannot reach NATS at ${this.options.natsUrl} within ${Math.round(timeoutMs / 1000)} s (${attempt} attempts): ${(err as Error).message}`);
        }
        await sleep(500);
      }
    }
  }

  /** Checks the stream and the durable (created if missing): a durable of another filter, a push consumer or one another keeper is pulling from is refused. */
  private async bindDurable(jsm: JetStreamManager): Promise<ConsumerInfo> {
    const o = this.options;
    try {
      await jsm.streams.info(o.stream);
    } catch (err) {
      if (/not found/i.test((err as Error).message)) throw new ConsumerStartError(`stream ${o.stream} does not exist (Verdict creates it when it first connects; check --stream or VERDICT_EVENTS_STREAM)`);
      throw err;
    }
    let existing: ConsumerInfo | undefined;
    try {
      existing = await jsm.consumers.info(o.stream, o.durable);
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
    }
    if (!existing) {
      return jsm.consumers.add(o.stream, {
        durable_name: o.durable,
        ack_policy: nats().AckPolicy.All,
        deliver_policy: nats().DeliverPolicy.All,
        max_ack_pending: 10_000,
        ack_wait: 30_000_000_000,
        ...(o.filter ? { filter_subject: o.filter } : {}),
      });
    }
    const c = existing.config;
    const filter = c.filter_subject || (c.filter_subjects?.length ? c.filter_subjects.join(',') : undefined);
    if ((filter ?? undefined) !== o.filter) {
      throw new ConsumerStartError(`durable consumer "${o.durable}" exists with filter ${filter ?? '(none)'}, not ${o.filter ?? '(none)'}; use another --durable name for a different filter`);
    }
    if (c.deliver_subject) throw new ConsumerStartError(`durable consumer "${o.durable}" is a push consumer (deliver subject ${c.deliver_subject}); the keeper needs a pull consumer: use another --durable name`);
    if (c.ack_policy === nats().AckPolicy.None) throw new ConsumerStartError(`durable consumer "${o.durable}" does not use acknowledgements; use another --durable name`);
    // A pull request waiting on the durable means another keeper is reading it (a dead one's request expires within a second).
    for (let i = 0; existing.num_waiting > 0 && i < 2; i++) {
      await sleep(1200);
      existing = await jsm.consumers.info(o.stream, o.durable);
    }
    if (existing.num_waiting > 0) throw new ConsumerStartError(`durable consumer "${o.durable}" is in use by another keeper (${existing.num_waiting} pull requests waiting); run one keeper per durable`);
    return existing;
  }

  private async run(): Promise<void> {
    const js = this.nc!.jetstream();
    const consumer = await js.consumers.get(this.options.stream, this.options.durable);
    let lastWarn = 0;
    while (!this.stopped) {
      let last: JsMsg | undefined;
      const lines: string[] = [];
      let seq = 0;
      try {
        const batch = await consumer.fetch({ max_messages: this.options.batch, expires: 1000 });
        for await (const m of batch) {
          this.stats.received++;
          last = m;
          if (m.seq <= this.keptUpTo) {
            this.stats.skippedDuplicates++;
            continue;
          }
          const line = this.keep(m);
          if (!this.writer) lines.push(line);
          seq = m.seq;
        }
      } catch (err) {
        if (this.stopped) break;
        if (Date.now() - lastWarn > 10_000) {
          lastWarn = Date.now();
          this.logger.warn({ err: (err as Error).message }, 'fetch failed; retrying');
        }
        await sleep(500);
      }
      if (!last) continue;
      // Durable first (trail, rejects, receipts), acknowledge second: a crash in between only causes a redelivery we skip.
      try {
        this.writer?.flush();
        this.rejects?.flush();
        if (lines.length > 0) this.out(lines.join(''));
        if (seq > 0) this.keptUpTo = seq;
        this.receipts?.commit(this.keptUpTo, this.writer?.position(), this.writer?.takeClosed() ?? []);
      } catch (err) {
        this.fatal = `cannot write the trail: ${(err as Error).message}`;
        this.logger.fatal({ err: (err as Error).message }, 'audit trail cannot be written; stopping without acknowledging');
        this.stopped = true;
        this.finishedResolve(this.fatal);
        break;
      }
      last.ack();
    }
  }

  /** Checks one message and buffers its trail line (or placeholder); returns the line. */
  private keep(m: JsMsg): string {
    const where = `stream seq ${m.seq}`;
    const parsed = parseCanonical(m.data);
    const c = parsed.ok ? classifyRecord(parsed.value) : ({ type: 'invalid', reason: parsed.reason } as const);
    if (c.type === 'invalid') {
      const r: RejectedMessage = describeRejected(m.seq, m.subject, m.data, c.reason);
      this.stats.rejected++;
      this.rejects?.add(r, m.data);
      if (!this.rejects) this.logger.error({ seq: m.seq, subject: m.subject, bytes: r.bytes, sha256: r.sha256, reason: r.reason }, 'stream message rejected');
      this.verifier.acceptRejected(m.seq, m.subject, r.reason, where);
      const info = { bytes: r.bytes, reason: r.reason, sha256: r.sha256 };
      this.writer?.addRejected(m.seq, m.subject, info);
      return formatRejectedLine(m.seq, m.subject, info);
    }
    const payload = (parsed as { text: string }).text;
    const made = this.verifier.acceptClassified(c, where, { streamSeq: m.seq, subject: m.subject });
    if (this.receipts) {
      if (c.type === 'checkpoint') {
        if (made.length === 0 && this.verifier.lastCheckpointTrusted) this.receipts.noteCheckpoint(c.checkpoint.chain, c.record, m.seq);
      } else {
        const head = this.verifier.head(c.link.id);
        if (head) this.receipts.noteHead(c.link.id, head.seq, head.hash);
      }
    }
    this.stats.written++;
    this.writer?.add(m.seq, m.subject, payload);
    return formatTrailLine(m.seq, m.subject, payload);
  }

  /** Why the keeper stopped by itself, if it did. */
  get failure(): string | undefined {
    return this.fatal;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.loop?.catch(() => undefined);
    // The end of input for pending gaps: report what no refusal explained.
    this.verifier.sweep(Date.now(), 0, Number.POSITIVE_INFINITY);
    this.writer?.close();
    await this.nc?.close().catch(() => undefined);
    this.logger.info({ stats: this.stats }, 'audit consumer stopped');
  }
}
