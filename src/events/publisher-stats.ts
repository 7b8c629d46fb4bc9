import type { PublisherStats, TrailHealth } from '../service/decision-trail.js';

export function emptyStats(): PublisherStats {
  return {
    recorded: 0, spooled: 0, sent: 0, published: 0, failed: 0, lostSpoolFull: 0, lostSpoolError: 0, lostHandoff: 0, refused: 0, cut: 0,
    checkpoints: 0, checkpointFailures: 0, streamDrifts: 0, threadRestarts: 0, queued: 0, unconfirmedBytes: 0, connected: false,
  };
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
