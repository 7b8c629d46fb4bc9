/**
 * The decision publisher's counters as metrics. The threaded publisher keeps them on its own
 * thread: they are asked for once per scrape, shared by every metric below, and a publisher that
 * does not answer within the timeout makes `verdict_events_stats_up` 0 instead of stalling the scrape.
 */
import type { Registry } from 'prom-client';
import type { PublisherStats } from '../service/decision-trail.js';
import { registerCollector, type MetricKind, type Sample } from './metric-table.js';

/** The publisher: the threaded one answers `snapshot()`, the in-thread one keeps `stats`. */
export interface PublisherStatsSource {
  snapshot?(): PublisherStats | Promise<PublisherStats>;
  readonly stats?: PublisherStats;
}

/** PublisherStats field → metric. Fields the publisher does not report are left out. */
const FIELDS: readonly { field: string; name: string; type: MetricKind; help: string; labels?: Record<string, string> }[] = [
  { field: 'recorded', name: 'verdict_events_recorded_total', type: 'counter', help: 'Decisions handed to the decision publisher.' },
  { field: 'spooled', name: 'verdict_events_spooled_total', type: 'counter', help: 'Events written to the spool (every event is, before it is published).' },
  { field: 'sent', name: 'verdict_events_sent_total', type: 'counter', help: 'Events sent to NATS, re-sends after an outage included.' },
  { field: 'published', name: 'verdict_events_published_total', type: 'counter', help: "Events of this process's chain confirmed stored by JetStream (through acknowledged checkpoints)." },
  { field: 'failed', name: 'verdict_events_failed_total', type: 'counter', help: 'Decisions whose events were lost (spool full or failing, or the hand-off bound reached); in audit-required mode such checks were denied.' },
  { field: 'lostSpoolFull', name: 'verdict_events_lost_spool_full_total', type: 'counter', help: 'Events lost because the spool held events.spoolMaxBytes unconfirmed bytes.' },
  { field: 'lostSpoolError', name: 'verdict_events_lost_spool_error_total', type: 'counter', help: 'Events lost because the spool could not be written (ENOSPC, EIO, a file-size limit).' },
  { field: 'lostHandoff', name: 'verdict_events_lost_handoff_total', type: 'counter', help: 'Events never handed to the publisher thread (hand-off bound reached, or the thread down).' },
  { field: 'refused', name: 'verdict_events_refused_total', type: 'counter', help: 'Events NATS refused for good (each named by a verdict.publish-refused.v1 record in the chain).' },
  { field: 'cut', name: 'verdict_events_cut_total', type: 'counter', help: 'Events with a field cut to its byte budget, or their attributes left out.' },
  { field: 'streamDrifts', name: 'verdict_events_stream_drifts_total', type: 'counter', help: "Times the decision stream's configuration was found changed, or the stream missing." },
  { field: 'threadRestarts', name: 'verdict_events_publisher_restarts_total', type: 'counter', help: 'Times the publisher thread died and was started again.' },
  { field: 'checkpoints', name: 'verdict_events_checkpoints_total', type: 'counter', help: 'Chain checkpoints acknowledged by JetStream.' },
  { field: 'checkpointFailures', name: 'verdict_events_checkpoint_failures_total', type: 'counter', help: 'Checkpoints not acknowledged in time (NATS then counts as down; events are replayed).' },
  { field: 'queued', name: 'verdict_events_queued', type: 'gauge', help: 'Events built but not yet written to the spool.' },
  { field: 'unconfirmedBytes', name: 'verdict_events_unconfirmed_bytes', type: 'gauge', help: 'Bytes in the spool not yet confirmed by JetStream (the backlog).' },
  { field: 'connected', name: 'verdict_events_nats_connected', type: 'gauge', help: '1 while the publisher is connected to NATS, else 0.' },
];

/** A scrape's registry reads every metric at once: one snapshot serves them all. */
const SHARE_MS = 1000;

export function registerPublisherMetrics(registry: Registry, source: PublisherStatsSource, timeoutMs: number): void {
  let shared: { at: number; stats: Promise<Record<string, unknown> | undefined> } | undefined;
  const snapshot = (): Promise<Record<string, unknown> | undefined> => {
    const now = performance.now();
    if (shared && now - shared.at < SHARE_MS) return shared.stats;
    const stats = read(source, timeoutMs);
    shared = { at: now, stats };
    return stats;
  };
  registerCollector(registry, 'verdict_events_stats_up', '1 when the decision publisher answered for this scrape in time, else 0 (the verdict_events_* values are then absent).', 'gauge', async () => [
    { value: (await snapshot()) ? 1 : 0, labels: {} },
  ]);
  for (const f of FIELDS) {
    registerCollector(registry, f.name, f.help, f.type, async (): Promise<Sample[]> => {
      const v = (await snapshot())?.[f.field];
      if (typeof v === 'boolean') return [{ value: v ? 1 : 0, labels: {} }];
      return typeof v === 'number' ? [{ value: v, labels: {} }] : [];
    });
  }
}

async function read(source: PublisherStatsSource, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  if (!source.snapshot) return source.stats as unknown as Record<string, unknown> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
  try {
    return (await Promise.race([Promise.resolve(source.snapshot()), timeout])) as unknown as Record<string, unknown> | undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
