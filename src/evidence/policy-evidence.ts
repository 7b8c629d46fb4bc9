/**
 * Policy changes as evidence, in a process that decides (a single process, or each cluster worker):
 * before a new policy set serves its first decision, its text is stored (revision-store.ts, bounded
 * wait) and a `verdict.policy.v1` record saying what changed, why, and where the text is kept is put
 * in this process's hash chain, ahead of every decision the new set makes. A rejected change is
 * recorded too. A revision whose text cannot be stored is served all the same: the failure is in
 * its record, logged at error level, counted, and storing is retried in the background.
 */
import type { Logger } from '../server/logger.js';
import type { PolicyChange, PolicyFile } from '../service/policy-source.js';
import { policyRecordBody, type PolicyRecordBody, type RevisionTextOutcome } from './policy-record.js';
import type { StoredText, TextMeta } from './revision-store.js';

/** Where policy records go: the decision publisher (DecisionPublisher, ThreadedPublisher). */
export interface PolicyRecordSink {
  /** Chains the record after every decision recorded so far; resolves once it is durable in the spool. */
  recordPolicyChange(body: PolicyRecordBody): Promise<boolean>;
}

/** Where the text of a revision is stored (NatsRevisionStore). */
export interface RevisionWriter {
  readonly bucket: string;
  put(files: readonly PolicyFile[], meta: TextMeta): Promise<StoredText>;
  close(): Promise<void>;
}

export interface PolicyEvidenceOptions {
  /** events.instanceId (a worker's, with its -wN). */
  readonly instance: string;
  /** events.revisionsTimeoutMs: how long a change waits for its text to be stored. */
  readonly textTimeoutMs: number;
  /** After this long without its record in the spool, the record counts as failed (events.ackTimeoutMs). */
  readonly recordTimeoutMs: number;
  /** Background retries of text that could not be stored (ms; tests shorten it). */
  readonly retryMs?: number;
}

export interface PolicyEvidenceStats {
  textStored: number;
  textPresent: number;
  textFailed: number;
  recorded: number;
  recordFailures: number;
}

/** Revisions whose text is retried at most; older ones are given up (and said so). */
const MAX_PENDING_TEXT = 16;
const DEFAULT_RETRY_MS = 30_000;

class Timeout extends Error {}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`${what} took longer than ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class PolicyEvidence {
  readonly stats: PolicyEvidenceStats = { textStored: 0, textPresent: 0, textFailed: 0, recorded: 0, recordFailures: 0 };
  /** Revisions that went live without their text stored, retried in the background. */
  private readonly pendingText = new Map<string, { files: readonly PolicyFile[]; meta: TextMeta }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: PolicyEvidenceOptions,
    private readonly logger: Logger,
    private readonly sink: PolicyRecordSink,
    private readonly writer: RevisionWriter | undefined,
  ) {}

  /** Revisions served whose text is not stored (a gauge: alert when above 0). */
  get textMissing(): number {
    return this.pendingText.size;
  }

  /** The record of the change being applied, built before its swap and handed over at it. */
  private prepared: { change: PolicyChange; body: PolicyRecordBody } | undefined;

  /**
   * PolicyChangeHooks.beforeSwap: stores the text (bounded wait) and builds the change's record.
   * Never throws: a revision whose text cannot be stored is served all the same.
   */
  readonly beforeSwap = async (change: PolicyChange): Promise<void> => {
    const text = await this.storeText(change);
    this.prepared = { change, body: policyRecordBody(change, this.options.instance, new Date(), text) };
  };

  /**
   * PolicyChangeHooks.atSwap: hands the record to the publisher in the turn of the swap, behind every
   * decision of the old set and ahead of every decision of the new one. Whether it reached the spool
   * is known later: a failure is logged and counted (in required mode the new set's decisions,
   * spooled after it, are denied while the spool fails, and a loss is explained in the chain).
   */
  readonly atSwap = (change: PolicyChange): void => {
    try {
      const body = this.prepared?.change === change ? this.prepared.body : policyRecordBody(change, this.options.instance, new Date(), { status: 'failed', bucket: this.writer?.bucket ?? '', error: 'not stored before the swap' });
      this.prepared = undefined;
      const recorded = this.sink.recordPolicyChange(body);
      // A process's first set is recorded before its publisher starts: it is written when it starts.
      (change.previousRevision === null ? recorded : within(recorded, this.options.recordTimeoutMs, 'writing the policy change record to the spool')).then(
        (ok) => this.recordOutcome(ok, body),
        () => this.recordOutcome(false, body),
      );
    } catch (err) {
      this.stats.recordFailures++;
      this.logger.error({ revision: change.revision, err: (err as Error).message }, 'policy change could not be recorded in the decision trail');
    }
  };

  /** PolicyChangeHooks.afterChange: a rejected change is recorded (an applied one was, before its swap). */
  readonly afterChange = (change: PolicyChange): void => {
    if (change.result.status !== 'rejected' || this.closed) return;
    const body = policyRecordBody(change, this.options.instance, new Date());
    void this.sink.recordPolicyChange(body).then((ok) => this.recordOutcome(ok, body));
  };

  private recordOutcome(ok: boolean, body: PolicyRecordBody): void {
    if (ok) {
      this.stats.recorded++;
      return;
    }
    this.stats.recordFailures++;
    if (!this.closed) this.logger.error({ revision: body.revision, status: body.status, recordId: body.id }, 'policy change could not be recorded in the decision trail (see the trail status)');
  }

  private async storeText(change: PolicyChange): Promise<RevisionTextOutcome> {
    if (!this.writer) return { status: 'off', bucket: '' };
    const bucket = this.writer.bucket;
    if (!change.files) return this.textFailed(change, bucket, 'the text of the set was not at hand', undefined);
    const detail = change.trigger.detail ? `: ${change.trigger.detail}` : '';
    const meta: TextMeta = { createdBy: this.options.instance, message: `went live on ${this.options.instance} (${change.trigger.kind}${detail})`, at: new Date() };
    try {
      const stored = await within(this.writer.put(change.files, meta), this.options.textTimeoutMs, 'storing the policy text');
      if (stored.status === 'stored') this.stats.textStored++;
      else this.stats.textPresent++;
      this.pendingText.delete(change.revision);
      return { status: stored.status, bucket, digest: stored.digest };
    } catch (err) {
      return this.textFailed(change, bucket, (err as Error).message, { files: change.files, meta });
    }
  }

  private textFailed(change: PolicyChange, bucket: string, error: string, retry: { files: readonly PolicyFile[]; meta: TextMeta } | undefined): RevisionTextOutcome {
    this.stats.textFailed++;
    this.logger.error({ revision: change.revision, bucket, err: error }, 'policy revision text not stored; the revision is served, but its text is not kept with the evidence (retried in the background)');
    if (retry) {
      this.pendingText.delete(change.revision);
      this.pendingText.set(change.revision, retry);
      if (this.pendingText.size > MAX_PENDING_TEXT) {
        const [oldest] = this.pendingText.keys();
        this.pendingText.delete(oldest!);
        this.logger.error({ revision: oldest }, 'policy revision text given up: too many revisions wait to be stored');
      }
      this.scheduleRetry();
    }
    return { status: 'failed', bucket, error: error.slice(0, 512) };
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed || !this.writer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryText();
    }, this.options.retryMs ?? DEFAULT_RETRY_MS);
    this.retryTimer.unref();
  }

  private async retryText(): Promise<void> {
    for (const [revision, { files, meta }] of [...this.pendingText]) {
      if (this.closed) return;
      try {
        const stored = await within(this.writer!.put(files, meta), this.options.textTimeoutMs, 'storing the policy text');
        this.pendingText.delete(revision);
        if (stored.status === 'stored') this.stats.textStored++;
        else this.stats.textPresent++;
        this.logger.info({ revision, bucket: this.writer!.bucket, result: stored.status }, 'policy revision text stored after an earlier failure');
      } catch (err) {
        this.logger.warn({ revision, err: (err as Error).message }, 'policy revision text still not stored; retrying');
      }
    }
    if (this.pendingText.size > 0) this.scheduleRetry();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.writer?.close();
  }
}
