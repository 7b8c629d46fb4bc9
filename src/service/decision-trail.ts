/**
 * The decision trail as the service layer sees it: the interfaces a decision sink that records a
 * trail implements (the NATS publisher, its thread), and what the adapters report about it
 * (GetPolicySet's `trail`, the DecisionTrail health check). The functions over these types live in
 * src/events/publisher-stats.ts.
 */
import type { DecisionSink } from './decision-record.js';

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

/** A component with work to flush on shutdown (the decision publisher). */
export interface ClosableSink extends DecisionSink {
  start?(): Promise<void>;
  close(): Promise<void>;
  /** The decision trail's health (the NATS publisher): for health checks and GetPolicySet. */
  trailHealth?(): TrailHealth;
  subscribeHealth?(listener: (health: TrailHealth) => void): void;
  snapshot?(): PublisherStats | Promise<PublisherStats>;
}

/** Health check name of the decision trail: NOT_SERVING while decisions are being lost or put at risk. */
export const TRAIL_HEALTH_SERVICE = 'verdict.v1.DecisionTrail';

/** GetPolicySet's `trail` (proto TrailStatus, camelCase as proto-loader takes it). */
export interface TrailStatusView {
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly problems: readonly string[];
  readonly connected: boolean;
  readonly publisherRunning: boolean;
  readonly stream: string;
  readonly streamDrift: readonly string[];
  readonly lastStreamIncident?: { at: Date; problems: readonly string[]; repaired: boolean };
  readonly spoolError: string;
  readonly counters: Record<string, number>;
}
