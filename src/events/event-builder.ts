import type { EventsConfig } from '../config/schema.js';
import { fitFields, MINIMAL_BUDGETS, payloadFits, withoutAttributes, type EventBudgets } from './budget.js';
import { HashChain } from './chain.js';
import type { UnchainedEvent } from './event.js';
import { eventsLost, publishRefused, type EventsLostRecord, type PublishRefusedRecord } from './records.js';
import { DecisionSubjects, policySubject, recordSubject } from './subjects.js';
import { fitPolicyRecord, type PolicyRecordBody } from '../evidence/policy-record.js';
import type { WalEntry } from './wal.js';

/** Events are never cut below this, whatever NATS says its limit is (a record of the refusal follows instead). */
const FLOOR_EVENT_BYTES = 4096;

/**
 * The first stage of the decision stream: turns event bodies into chained, publishable spool
 * entries. Each string field is held to its byte budget, then the whole event to the event budget
 * (events.maxEventBytes, or less if NATS or the stream accept less): first by leaving out the
 * attributes, then, for an event that is still too big, by cutting every field to a minimal
 * budget. Cut values keep a marker and the event's `cut` map says what they held (size, SHA-256).
 * The subject is always built from safe, bounded tokens. No I/O.
 */
export class EventBuilder {
  readonly chain: HashChain;
  private readonly subjects: DecisionSubjects;
  private readonly budgets: Omit<EventBudgets, 'eventBytes'>;
  private readonly refusedSubject: string;
  private readonly lostSubject: string;
  /** What NATS accepts now (server max_payload, stream max_msg_size), once known. */
  messageLimit: number | undefined;

  constructor(private readonly config: EventsConfig) {
    this.chain = new HashChain(config.instanceId);
    this.subjects = new DecisionSubjects(config.subjectPrefix);
    this.budgets = { fieldBytes: config.maxFieldBytes, listBytes: config.maxListBytes };
    this.refusedSubject = recordSubject(config.subjectPrefix, config.instanceId, 'refused');
    this.lostSubject = recordSubject(config.subjectPrefix, config.instanceId, 'lost');
  }

  eventBytes(): number {
    const limit = this.messageLimit ?? Infinity;
    return Math.max(FLOOR_EVENT_BYTES, Math.min(this.config.maxEventBytes, limit));
  }

  /** Chains one decision event; `cut` says whether anything had to be cut or left out. */
  event(body: UnchainedEvent): { entry: WalEntry; cut: boolean } {
    let fitted = fitFields(body, this.budgets);
    let { link, payload } = this.chain.append(fitted);
    const limit = this.eventBytes();
    if (!payloadFits(payload, limit)) {
      // Built again in the same place of the chain, so no seq is lost.
      this.chain.rewind(link.seq, link.prev);
      fitted = withoutAttributes(fitted);
      ({ link, payload } = this.chain.append(fitted));
      if (!payloadFits(payload, limit)) {
        this.chain.rewind(link.seq, link.prev);
        fitted = withoutAttributes(fitFields(body, MINIMAL_BUDGETS));
        ({ link, payload } = this.chain.append(fitted));
      }
    }
    return {
      entry: { subject: this.subjects.of(body.resource.type, body.decision), msgId: body.id, chain: link.id, seq: link.seq, hash: link.hash, payload },
      cut: fitted !== body,
    };
  }

  /** Chains a publish-refused record naming `refused` (an entry that NATS will not take). */
  refused(refused: WalEntry, bytes: number, reason: string): WalEntry {
    return this.record(publishRefused(this.config.instanceId, new Date(), { bytes, chain: refused.chain, seq: refused.seq, hash: refused.hash, id: refused.msgId, reason, subject: refused.subject }), this.refusedSubject);
  }

  /** Chains an events-lost record. */
  lost(lost: EventsLostRecord['lost']): WalEntry {
    return this.record(eventsLost(this.config.instanceId, new Date(), lost), this.lostSubject);
  }

  /** Chains a policy change record (verdict.policy.v1), held to the field and event budgets. */
  policy(body: PolicyRecordBody): WalEntry {
    const fitted = fitPolicyRecord({ ...body, instance: this.config.instanceId }, { fieldBytes: this.config.maxFieldBytes, eventBytes: this.eventBytes() });
    return this.record(fitted, policySubject(this.config.subjectPrefix, this.config.instanceId, body.status));
  }

  private record(record: PublishRefusedRecord | EventsLostRecord | PolicyRecordBody, subject: string): WalEntry {
    const { link, payload } = this.chain.appendRecord(record);
    return { subject, msgId: record.id, chain: link.id, seq: link.seq, hash: link.hash, payload };
  }

  /** Where a spooled entry goes now (see DecisionSubjects.current). */
  subjectOf(entry: WalEntry): string {
    return this.subjects.current(entry);
  }
}

/** Records about records are not written: a refused refusal record would otherwise refuse forever. */
export function isChainRecord(entry: WalEntry): boolean {
  // By subject: decision subjects end in .allow/.deny, and a caller cannot choose either token.
  return entry.subject.endsWith('.refused') || entry.subject.endsWith('.lost');
}
