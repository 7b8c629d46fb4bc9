/**
 * Wires policy evidence into a deciding process (`verdict serve`, single or cluster worker): the
 * change hooks for the server, the revision store on the events NATS, and the metrics.
 */
import type { VerdictConfig } from '../config/schema.js';
import { natsAuthOptions } from '../events/nats-options.js';
import type { Observability } from '../observability/observability.js';
import { registerCollector } from '../observability/metric-table.js';
import type { Logger } from '../server/logger.js';
import { PolicyEvidence, type PolicyRecordSink } from './policy-evidence.js';
import { NatsRevisionStore } from './revision-store.js';

function isRecordSink(sink: unknown): sink is PolicyRecordSink {
  return typeof (sink as Partial<PolicyRecordSink> | undefined)?.recordPolicyChange === 'function';
}

/** Policy evidence for a process whose decisions go to `sink`; undefined with events off (no chain to record in). */
export function createPolicyEvidence(config: VerdictConfig, logger: Logger, sink: unknown, observability?: Observability): PolicyEvidence | undefined {
  const events = config.events;
  if (!events.enabled || !isRecordSink(sink)) return undefined;
  const writer = events.revisionsBucket
    ? new NatsRevisionStore({ url: events.natsUrl, bucket: events.revisionsBucket, auth: natsAuthOptions(events), timeoutMs: events.revisionsTimeoutMs, create: events.manageStream, replicas: events.replicas })
    : undefined;
  const evidence = new PolicyEvidence(
    { instance: events.instanceId, textTimeoutMs: events.revisionsTimeoutMs, recordTimeoutMs: events.ackTimeoutMs },
    logger,
    sink,
    writer,
  );
  const registry = observability?.metrics?.registry;
  if (registry) {
    const s = evidence.stats;
    registerCollector(registry, 'verdict_policy_revision_text_total', 'Policy revisions that went live, by what storing their text gave: stored, present (already stored), failed (served without its text kept; retried).', 'counter', () => [
      { value: s.textStored, labels: { result: 'stored' } },
      { value: s.textPresent, labels: { result: 'present' } },
      { value: s.textFailed, labels: { result: 'failed' } },
    ]);
    registerCollector(registry, 'verdict_policy_revision_text_missing', 'Revisions served whose text is not stored yet (alert when above 0).', 'gauge', () => [{ value: evidence.textMissing, labels: {} }]);
    registerCollector(registry, 'verdict_policy_records_failed_total', 'Policy change records that could not be written to the decision spool.', 'counter', () => [{ value: s.recordFailures, labels: {} }]);
  }
  return evidence;
}
