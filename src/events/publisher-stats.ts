/** Counters an operator reads in logs (and tests read directly). */
export interface PublisherStats {
  /** Decisions handed to the publisher. */
  recorded: number;
  /** Written to the spool (every event is, before it is published). */
  spooled: number;
  /** Sent to NATS (including re-sends after an outage). */
  sent: number;
  /** Confirmed stored by JetStream through an acknowledged checkpoint. */
  published: number;
  /** Lost: the spool was full or failing (counted, logged; in required mode the check was denied). */
  failed: number;
  checkpoints: number;
  checkpointFailures: number;
  /** Events built but not yet written to the spool. */
  queued: number;
  /** Bytes in the spool not yet confirmed by JetStream. */
  unconfirmedBytes: number;
  connected: boolean;
}
