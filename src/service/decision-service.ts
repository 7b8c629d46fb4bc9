import type { Decision } from '../engine/decision.js';
import { decideMetered } from '../engine/evaluate.js';
import { DEFAULT_COST_LIMITS, type CostLimits } from '../engine/limits.js';
import type { CheckRequest } from '../engine/request.js';
import type { CallHooks, CallTrace, DecisionHooks, DecisionTracer, TraceParent } from './decision-hooks.js';
import type { DecisionRecord, DecisionSink } from './decision-record.js';
import { newDecisionId } from './ids.js';
import { applyUsage, type UsageCounters } from './usage.js';
import type { LivePolicy } from './live-policy.js';

export interface CheckOptions {
  readonly explain: boolean;
  readonly requestId: string;
  readonly source: string;
  /**
   * True once the caller has given up on the call (cancelled it, or its deadline passed): the
   * answer will not reach it. Asked once the decision is made; such a decision is recorded with
   * `delivered: false` (and not waited for in required mode: nobody receives it).
   */
  readonly abandoned?: () => boolean;
  /** performance.now() when the adapter received the call (pass it when `timed`): the call's latency and span start. */
  readonly receivedAt?: number;
  /** The caller's trace context (tracer.parentFrom), when tracing is on. */
  readonly trace?: TraceParent | undefined;
}

export interface CheckOutcome {
  readonly decisionId: string;
  readonly decision: Decision;
}

/** No policy set is loaded: every check is a deny, and the health service says NOT_SERVING. */
export class NotReadyError extends Error {
  readonly code = 'NOT_READY';
}

/**
 * The use case every API shares: take the live policy set, decide, hand the decision to the sink.
 * In audit-required mode a decision the sink cannot make durable becomes a DENY with reason
 * AUDIT_UNAVAILABLE: an unrecorded allow must never reach the caller.
 */
export class DecisionService implements CallHooks {
  /** Metrics or tracing on: adapters time their calls (`receivedAt`). */
  readonly timed: boolean;
  readonly tracer: DecisionTracer | undefined;

  constructor(
    private readonly policy: LivePolicy,
    private readonly sink: DecisionSink,
    private readonly costs: Pick<CostLimits, 'maxDecisionCost' | 'maxBatchCost'> = DEFAULT_COST_LIMITS,
    private readonly hooks: DecisionHooks = {},
    /** Usage counters (src/usage); without them a request a limit applies to is denied (LIMIT_ERROR). */
    private readonly counters?: UsageCounters,
  ) {
    this.timed = hooks.observer !== undefined || hooks.tracer !== undefined;
    this.tracer = hooks.tracer;
  }

  /**
   * A request refused by a limit before anything was decided (rate limits): counted by the metrics
   * (verdict_requests_refused_total) under the limit's name. Call it where the limit refuses.
   */
  refusedByLimit(limit: string, source: string): void {
    this.hooks.observer?.refused(limit, source);
  }

  /** Metrics and trace of an answered call; returns `outcomes`. */
  private answered(records: readonly DecisionRecord[], outcomes: CheckOutcome[], options: CheckOptions, trace: CallTrace | undefined, evaluated: boolean): CheckOutcome[] {
    trace?.answered(records, outcomes);
    this.hooks.observer?.answered(options.source, records, outcomes, evaluated, options.receivedAt ?? 0);
    return outcomes;
  }

  /**
   * Decides many requests in order against ONE policy set snapshot, so a batch never straddles a
   * reload. With `stopAfter`, deciding stops after the first decision it accepts (AuthZEN's
   * short-circuit semantics): the requests after it are neither decided nor recorded, and the
   * result is shorter than `requests`.
   */
  async checkMany(requests: readonly CheckRequest[], options: CheckOptions, stopAfter?: (decision: Decision) => boolean): Promise<CheckOutcome[]> {
    const live = this.policy.current();
    if (!live) throw new NotReadyError('no policy set is loaded yet');
    // An unexpected exception below (the engine itself answers INTERNAL_ERROR) leaves the span unended: not exported.
    const trace = this.tracer?.startCall(options.source, options.trace, options.receivedAt);
    const traceId = trace?.traceId;
    const now = new Date();
    const { maxDecisionCost, maxBatchCost } = this.costs;
    // The items of one call (a CheckBatch) share one budget: each may spend up to maxDecisionCost
    // of what is left. (maxBatchCost >= maxDecisionCost, so a single Check is bound by the latter.)
    let left = maxBatchCost;
    const records: DecisionRecord[] = [];
    // Per call, not per item: the evaluation options while the batch budget does not bind, the
    // set's limits, the decision ids' time.
    const { set } = live;
    const usage = set.usage;
    const nowMs = now.getTime();
    const perDecision = { now, explain: options.explain, costLimit: maxDecisionCost, costSetting: 'limits.maxDecisionCost' };
    for (const request of requests) {
      // performance.now() is a double: no BigInt allocation per decision, sub-microsecond resolution.
      const start = performance.now();
      const metered = decideMetered(
        set,
        request,
        left < maxDecisionCost ? { now, explain: options.explain, costLimit: left, costSetting: 'limits.maxBatchCost' } : perDecision,
      );
      left -= metered.cost;
      // Limits apply to what the rules allow, item by item in order (a batch consumes in order).
      const decision = usage === undefined || metered.decision.effect !== 'ALLOW' ? metered.decision : applyUsage(metered.decision, usage, request, now, this.counters, Math.max(0, Math.min(left, maxDecisionCost)));
      const evaluationNs = Math.round((performance.now() - start) * 1e6);
      records.push({ decisionId: newDecisionId(nowMs), time: now, request, decision, requestId: options.requestId, source: options.source, evaluationNs, traceId });
      if (stopAfter?.(decision)) break;
    }
    if (options.abandoned?.() === true) {
      // Recorded as made but never received: the caller is gone, nobody waits for durability.
      for (const r of records) this.sink.record({ ...r, delivered: false });
      return this.answered(records, records.map((r) => ({ decisionId: r.decisionId, decision: r.decision })), options, trace, true);
    }
    if (!this.sink.requiresDurability) {
      for (const r of records) this.sink.record(r);
      return this.answered(records, records.map((r) => ({ decisionId: r.decisionId, decision: r.decision })), options, trace, true);
    }
    const durable = await Promise.all(records.map((r) => this.sink.recordDurably(r)));
    return this.answered(
      records,
      records.map((r, i) =>
        durable[i]
          ? { decisionId: r.decisionId, decision: r.decision }
          : { decisionId: r.decisionId, decision: auditUnavailable(r.decision) },
      ),
      options,
      trace,
      true,
    );
  }

  async check(request: CheckRequest, options: CheckOptions): Promise<CheckOutcome> {
    return (await this.checkMany([request], options))[0]!;
  }

  /**
   * A DENY that adapters decide without the engine (a missing or invalid subject token, an unmapped
   * gateway route), recorded like any other decision with the live revision.
   */
  async refuse(request: CheckRequest, reason: Decision['reason'], options: CheckOptions): Promise<CheckOutcome> {
    const live = this.policy.current();
    if (!live) throw new NotReadyError('no policy set is loaded yet');
    const trace = this.tracer?.startCall(options.source, options.trace, options.receivedAt);
    const now = new Date();
    const decision: Decision = { effect: 'DENY', reason, policy: '', rule: '', revision: live.set.revision, errors: [] };
    const record: DecisionRecord = { decisionId: newDecisionId(now.getTime()), time: now, request, decision, requestId: options.requestId, source: options.source, evaluationNs: 0, traceId: trace?.traceId };
    if (options.abandoned?.() === true) this.sink.record({ ...record, delivered: false });
    else if (this.sink.requiresDurability) await this.sink.recordDurably(record);
    else this.sink.record(record);
    return this.answered([record], [{ decisionId: record.decisionId, decision }], options, trace, false)[0]!;
  }
}

function auditUnavailable(decision: Decision): Decision {
  return { ...decision, effect: 'DENY', reason: 'AUDIT_UNAVAILABLE', policy: '', rule: '' };
}
