/**
 * The decision service's metrics (DecisionObserver): decisions by API, effect and reason, the
 * whole-call latency by API, the engine's evaluation time, and requests refused by a limit. Every
 * label value comes from a fixed list made at start (unknown values count as "other"), so the
 * number of series is bounded whatever callers send: no subject, resource or action is a label.
 */
import type { Registry } from 'prom-client';
import type { DecisionReason } from '../engine/decision.js';
import type { DecisionObserver } from '../service/decision-hooks.js';
import type { DecisionRecord } from '../service/decision-record.js';
import type { CheckOutcome } from '../service/decision-service.js';
import { CounterTable, HistogramTable, registerCollector, type Labels, type Sample } from './metric-table.js';

/** The APIs that decide (DecisionRecord.source); anything else is "other". */
export const SOURCES = ['check', 'check_batch', 'ext_authz', 'authzen_evaluation', 'authzen_evaluations', 'other'] as const;
const REASONS: readonly (DecisionReason | 'other')[] = [
  'RULE_ALLOW',
  'RULE_DENY',
  'RULE_ERROR',
  'NO_MATCHING_RULE',
  'NO_POLICY',
  'UNAUTHENTICATED',
  'NO_ROUTE',
  'AUDIT_UNAVAILABLE',
  'INTERNAL_ERROR',
  'other',
];
const EFFECTS = ['allow', 'deny'] as const;

/** Whole-call latency (seconds): a Check takes ~0.1–0.5 ms of server time, more under load or with audit required. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Engine time per decision (seconds): a few µs for a typical rule set. */
export const EVALUATION_BUCKETS = [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1];

/** Most distinct limit names counted on their own; further names count as "other". */
const MAX_LIMIT_NAMES = 32;
const LIMIT_NAME = /^[a-z][a-z0-9_.]{0,63}$/;

export class DecisionMetrics implements DecisionObserver {
  private readonly sourceIndex = new Map<string, number>(SOURCES.map((s, i) => [s, i]));
  private readonly reasonIndex = new Map<string, number>(REASONS.map((r, i) => [r, i]));
  private readonly decisions: CounterTable;
  private readonly latency: HistogramTable;
  private readonly evaluation: HistogramTable;
  /** limit name → source → count; cold path (a refused request). */
  private readonly refusals = new Map<string, Map<string, number>>();

  constructor() {
    const decisionLabels: Labels[] = [];
    for (const source of SOURCES) for (const effect of EFFECTS) for (const reason of REASONS) decisionLabels.push({ source, effect, reason });
    this.decisions = new CounterTable(decisionLabels);
    this.latency = new HistogramTable('verdict_decision_duration_seconds', LATENCY_BUCKETS, SOURCES.map((source) => ({ source })));
    this.evaluation = new HistogramTable('verdict_evaluation_duration_seconds', EVALUATION_BUCKETS, [{}]);
  }

  answered(source: string, records: readonly DecisionRecord[], outcomes: readonly CheckOutcome[], evaluated: boolean, receivedAt: number): void {
    const s = this.sourceIndex.get(source) ?? SOURCES.length - 1;
    const base = s * EFFECTS.length * REASONS.length;
    for (let i = 0; i < outcomes.length; i++) {
      const d = outcomes[i]!.decision;
      const r = this.reasonIndex.get(d.reason) ?? REASONS.length - 1;
      this.decisions.inc(base + (d.effect === 'ALLOW' ? 0 : REASONS.length) + r);
      if (evaluated) this.evaluation.observe(0, records[i]!.evaluationNs / 1e9);
    }
    if (receivedAt > 0) this.latency.observe(s, (performance.now() - receivedAt) / 1000);
  }

  refused(limit: string, source: string): void {
    let name = LIMIT_NAME.test(limit) ? limit : 'other';
    if (!this.refusals.has(name) && this.refusals.size >= MAX_LIMIT_NAMES) name = 'other';
    const src = this.sourceIndex.has(source) ? source : 'other';
    let bySource = this.refusals.get(name);
    if (!bySource) this.refusals.set(name, (bySource = new Map()));
    bySource.set(src, (bySource.get(src) ?? 0) + 1);
  }

  register(registry: Registry): void {
    registerCollector(registry, 'verdict_decisions_total', 'Decisions answered, by API (source), effect and reason code; each CheckBatch item is one decision.', 'counter', () => this.decisions.samples());
    registerCollector(
      registry,
      'verdict_decision_duration_seconds',
      'Time from receiving a call to having its decisions ready to answer (after the durable write in audit-required mode), by API.',
      'histogram',
      () => this.latency.samples(),
    );
    registerCollector(registry, 'verdict_evaluation_duration_seconds', 'Engine time per decision (policy evaluation only).', 'histogram', () => this.evaluation.samples());
    registerCollector(registry, 'verdict_requests_refused_total', 'Requests refused by a limit before anything was decided, by limit and API; 0 until such limits are configured.', 'counter', () => {
      const out: Sample[] = [];
      for (const [limit, bySource] of this.refusals) for (const [source, value] of bySource) out.push({ value, labels: { limit, source } });
      return out;
    });
  }
}
