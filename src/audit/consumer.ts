import { AckPolicy, connect, DeliverPolicy, type NatsConnection } from 'nats';
import type { Logger } from '../server/logger.js';
import { TrailWriter, formatTrailLine } from './trail-file.js';
import { ChainVerifier, type Finding } from './verifier.js';

export interface AuditConsumerOptions {
  readonly natsUrl: string;
  readonly stream: string;
  readonly durable: string;
  /** One NATS subject filter (e.g. verdict.decisions.*.deny); absent = everything in the stream. */
  readonly filter: string | undefined;
  /** Output directory for rotating JSONL files; undefined = stdout. */
  readonly outDir: string | undefined;
  readonly rotateBytes: number;
  readonly batch: number;
}

export interface AuditConsumerStats {
  received: number;
  written: number;
  skippedDuplicates: number;
  findings: number;
}

/**
 * The audit trail keeper: a durable JetStream pull consumer that writes every message to rotating
 * JSONL files (or stdout), acknowledges only after the write is fsynced, resumes where it stopped
 * (skipping what it had written but not yet acknowledged before a crash) and verifies every
 * instance's hash chain as it goes, reporting gaps, duplicates and broken links loudly.
 */
export class AuditConsumer {
  private nc: NatsConnection | undefined;
  private stopped = false;
  private readonly writer: TrailWriter | undefined;
  private readonly verifier: ChainVerifier;
  readonly stats: AuditConsumerStats = { received: 0, written: 0, skippedDuplicates: 0, findings: 0 };
  private lastWritten = 0;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly options: AuditConsumerOptions,
    private readonly logger: Logger,
    private readonly out: (text: string) => void = (t) => process.stdout.write(t),
    private readonly onFinding: (f: Finding) => void = () => undefined,
  ) {
    this.writer = options.outDir ? new TrailWriter(options.outDir, options.rotateBytes) : undefined;
    // A resumed or filtered consumer sees chains mid-way: anchor them instead of reporting a gap.
    this.verifier = new ChainVerifier(options.filter !== undefined, true);
  }

  async start(): Promise<void> {
    this.lastWritten = this.writer?.open() ?? 0;
    this.nc = await connect({ servers: this.options.natsUrl, name: `verdict audit ${this.options.durable}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    const jsm = await this.nc.jetstreamManager();
    const config = {
      durable_name: this.options.durable,
      ack_policy: AckPolicy.All,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 10_000,
      ack_wait: 30_000_000_000,
      ...(this.options.filter ? { filter_subject: this.options.filter } : {}),
    };
    try {
      const existing = await jsm.consumers.info(this.options.stream, this.options.durable);
      if ((existing.config.filter_subject ?? undefined) !== this.options.filter) {
        throw new Error(`durable consumer "${this.options.durable}" exists with filter ${existing.config.filter_subject ?? '(none)'}; use another --durable name for a different filter`);
      }
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
      await jsm.consumers.add(this.options.stream, config);
    }
    this.logger.info({ stream: this.options.stream, durable: this.options.durable, filter: this.options.filter ?? null, out: this.options.outDir ?? 'stdout', resumeAfterSeq: this.lastWritten }, 'audit consumer started');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const js = this.nc!.jetstream();
    const consumer = await js.consumers.get(this.options.stream, this.options.durable);
    while (!this.stopped) {
      let last: { ack(): void } | undefined;
      const lines: string[] = [];
      try {
        const batch = await consumer.fetch({ max_messages: this.options.batch, expires: 1000 });
        for await (const m of batch) {
          this.stats.received++;
          last = m;
          if (m.seq <= this.lastWritten) {
            this.stats.skippedDuplicates++;
            continue;
          }
          const payload = m.string();
          this.check(payload, `stream seq ${m.seq}`);
          if (this.writer) this.writer.add(m.seq, m.subject, payload);
          else lines.push(formatTrailLine(m.seq, m.subject, payload));
          this.lastWritten = m.seq;
          this.stats.written++;
        }
      } catch (err) {
        if (this.stopped) break;
        this.logger.warn({ err: (err as Error).message }, 'fetch failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
      // Durable first, acknowledge second: a crash in between only causes a redelivery we skip.
      if (this.writer) this.writer.flush();
      else if (lines.length > 0) this.out(lines.join(''));
      last?.ack();
    }
  }

  private check(payload: string, where: string): void {
    let data: unknown;
    try {
      data = JSON.parse(payload);
    } catch {
      data = undefined;
    }
    for (const f of this.verifier.accept(data, where)) {
      this.stats.findings++;
      this.logger.error({ finding: f }, `AUDIT TRAIL PROBLEM: ${f.kind}: ${f.message}`);
      this.onFinding(f);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop?.catch(() => undefined);
    this.writer?.close();
    await this.nc?.close();
    this.logger.info({ stats: this.stats }, 'audit consumer stopped');
  }
}
