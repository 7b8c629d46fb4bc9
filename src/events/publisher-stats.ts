/** Counters an operator reads in logs, GetPolicySet and tests. Every event dropped or refused is counted by name. */
export interface PublisherStats {
  /** Decisions handed to the publisher. */
  recorded: number;
  /** Chained records written to the spool (every event is, before it is published; refusal and loss records too). */
  spooled: number;
  /** Sent to NATS (including re-sends after an outage). */
  sent: number;
  /** Highest seq of this process's chain confirmed stored by JetStream through an acknowledged checkpoint. */
  published: number;
  /** Decisions whose events were lost: lostSpoolFull + lostSpoolError + lostHandoff. */
  failed: number;
  /** Lost because the spool held events.spoolMaxBytes of unconfirmed events. */
  lostSpoolFull: number;
  /** Lost because writing the spool failed (ENOSPC, EIO, a file-size limit). */
  lostSpoolError: number;
  /** Never handed to the publisher thread: the hand-off bound was reached or the thread was down. */
  lostHandoff: number;
  /** Events NATS refused for good (each named by a verdict.publish-refused.v1 record). */
  refused: number;
  /** Events with at least one field cut to its byte budget (or their attributes left out). */
  cut: number;
  checkpoints: number;
  checkpointFailures: number;
  /** Times the stream's configuration was found changed or the stream missing. */
  streamDrifts: number;
  /** Times the publisher thread died and was started again. */
  threadRestarts: number;
  /** Events built but not yet written to the spool. */
  queued: number;
  /** Bytes in the spool not yet confirmed by JetStream. */
  unconfirmedBytes: number;
  connected: boolean;
}

export function emptyStats(): PublisherStats {
  return {
    recorded: 0, spooled: 0, sent: 0, published: 0, failed: 0, lostSpoolFull: 0, lostSpoolError: 0, lostHandoff: 0, refused: 0, cut: 0,
    checkpoints: 0, checkpointFailures: 0, streamDrifts: 0, threadRestarts: 0, queued: 0, unconfirmedBytes: 0, connected: false,
  };
}

/** What the trail looks like now: GetPolicySet's `trail`, the DecisionTrail health status, and logs. */
export interface TrailHealth {
  /** NATS is connected and the stream is usable (events are being published). */
  readonly connected: boolean;
  /** The publisher (thread) is running. */
  readonly publisherRunning: boolean;
  /** Why the stream is not as required right now (empty: fine). Events wait in the spool meanwhile. */
  readonly streamDrift: readonly string[];
  /** The last time the stream was found changed or deleted, even if it was put back since. */
  readonly lastStreamIncident?: { readonly at: string; readonly problems: readonly string[]; readonly repaired: boolean } | undefined;
  /** The last spool write failed with this (cleared by the next good write). */
  readonly spoolError?: string | undefined;
}

export const STARTING_HEALTH: TrailHealth = { connected: false, publisherRunning: true, streamDrift: [] };

/** Healthy: nothing recorded is being lost or put at risk (a NATS outage alone is not: events wait in the spool). */
export function trailProblems(h: TrailHealth): string[] {
  const p: string[] = [];
  if (!h.publisherRunning) p.push('the decision publisher thread is down (restarting)');
  if (h.spoolError) p.push(`the spool refuses writes: ${h.spoolError}`);
  for (const d of h.streamDrift) p.push(`stream: ${d}`);
  return p;
}
