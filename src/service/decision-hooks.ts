/**
 * What the decision service tells the outside about its work: metrics (DecisionObserver) and traces
 * (DecisionTracer). The service owns these interfaces; src/observability implements them. Both are
 * optional: when neither is set (no admin listener, tracing off) the service does no extra work.
 */
import type { DecisionRecord } from './decision-record.js';
import type { CheckOutcome } from './decision-service.js';

/** Counts decisions and times calls. Runs once per call on the hot path: must not allocate per decision. */
export interface DecisionObserver {
  /**
   * One call's decisions, as answered (an AUDIT_UNAVAILABLE deny replaces what the engine decided),
   * `evaluated` false when no engine ran (a refused token, an unmapped route), and `receivedAt`
   * (performance.now()) when the adapter received the call.
   */
  answered(source: string, records: readonly DecisionRecord[], outcomes: readonly CheckOutcome[], evaluated: boolean, receivedAt: number): void;
  /** A request refused by a limit before anything was decided (`limit`: the limit's name, bounded). */
  refused(limit: string, source: string): void;
}

/** The caller's trace context (W3C traceparent/tracestate), opaque to the service. */
export interface TraceParent {
  readonly traceParent: true;
}

/** A call being traced: one span for the call, and one per decision when there are several. */
export interface CallTrace {
  /** The trace id (32 hex), recorded with every decision of the call. */
  readonly traceId: string;
  /** The decisions answered; ends the trace of the call. */
  answered(records: readonly DecisionRecord[], outcomes: readonly CheckOutcome[]): void;
}

export interface DecisionTracer {
  /** The parent from W3C trace context headers (`traceparent`, `tracestate`); undefined when absent or malformed. */
  parentFrom(header: (name: string) => string | undefined): TraceParent | undefined;
  /** Starts tracing one call of `source`, continuing `parent` (else a new trace), from `startTime` (performance.now()). */
  startCall(source: string, parent: TraceParent | undefined, startTime: number | undefined): CallTrace;
  /** Flushes what is buffered and stops exporting. */
  close(): Promise<void>;
}

export interface DecisionHooks {
  readonly observer?: DecisionObserver | undefined;
  readonly tracer?: DecisionTracer | undefined;
}

/** What adapters need from the hooks: whether to time calls, and the trace parent of a call. */
export interface CallHooks {
  /** True when calls are timed (metrics or tracing on): adapters then pass `receivedAt`. */
  readonly timed: boolean;
  readonly tracer: DecisionTracer | undefined;
}

/**
 * The trace parent from HTTP-style headers (a Node IncomingHttpHeaders, or Envoy's header map):
 * lower-case names, a value or a list of values. For the ext_authz and HTTP adapters.
 */
export function traceParentFromHeaders(hooks: CallHooks, headers: Readonly<Record<string, string | readonly string[] | undefined>>): TraceParent | undefined {
  if (!hooks.tracer) return undefined;
  return hooks.tracer.parentFrom((name) => {
    const v = headers[name];
    return typeof v === 'string' ? v : v?.[0];
  });
}
