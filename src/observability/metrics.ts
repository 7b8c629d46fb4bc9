/**
 * Every metric of one process, in one prom-client Registry: the decision service's (hot path,
 * typed arrays), the policy set's, the publisher's, tokens', and prom-client's default process
 * metrics. A cluster worker labels all of its series `worker="<index>"`; the primary merges the
 * workers' series with its own into one scrape (cluster-metrics.ts).
 */
import type * as PromClient from 'prom-client';
import type { Registry } from 'prom-client';
import { lazyModule } from '../files/lazy-module.js';
import { DecisionMetrics } from './decision-metrics.js';
import { PolicyMetrics, type PolicyView } from './policy-metrics.js';
import { registerPublisherMetrics, type PublisherStatsSource } from './publisher-metrics.js';
import { TokenMetrics } from './token-metrics.js';

/** How long a scrape waits for the publisher thread's counters. */
export const PUBLISHER_STATS_TIMEOUT_MS = 1000;

// Loaded with the first VerdictMetrics (--admin): prom-client also loads @opentelemetry/api.
const prom = lazyModule<typeof PromClient>('prom-client');

/** One metric family as prom-client's getMetricsAsJSON gives it (what workers send the primary). */
export type MetricFamilyJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

export class VerdictMetrics {
  readonly registry: Registry = new (prom().Registry)();
  readonly decisions = new DecisionMetrics();
  readonly policies = new PolicyMetrics();
  readonly tokens = new TokenMetrics();

  /** @param worker the cluster worker index; its series are labelled worker="<index>". */
  constructor(worker?: number) {
    if (worker !== undefined) this.registry.setDefaultLabels({ worker: String(worker) });
    prom().collectDefaultMetrics({ register: this.registry });
  }

  /** A process that decides: decisions, tokens, the set it serves and its decision publisher. */
  registerServing(policies: PolicyView, publisher: PublisherStatsSource | undefined): void {
    this.decisions.register(this.registry);
    this.tokens.register(this.registry);
    this.policies.registerServing(this.registry, policies);
    if (publisher) registerPublisherMetrics(this.registry, publisher, PUBLISHER_STATS_TIMEOUT_MS);
  }

  /** The process that reads the policy directory: reload counts. */
  registerOwner(policies: Pick<PolicyView, 'lastFailure'>): void {
    this.policies.registerOwner(this.registry, policies);
  }

  /** The exposition text of this process alone. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  json(): Promise<MetricFamilyJson[]> {
    return this.registry.getMetricsAsJSON();
  }
}

/**
 * One exposition from several processes' families. Every process's series carry distinct labels
 * (worker="N", none for the primary), so nothing is summed: the merge groups each family's series
 * under one HELP/TYPE. Summing would turn a restarted worker's counter reset into a drop of the
 * total; as separate series, Prometheus sees an ordinary reset of that worker's counter.
 */
export function mergeFamilies(parts: readonly MetricFamilyJson[][]): Promise<string> {
  // 'omit' (process_start_time_seconds) or 'first' (nodejs_version_info) would drop workers' series.
  const families = parts.map((p) => p.map((f) => ({ ...f, aggregator: 'sum' as const })));
  return prom().AggregatorRegistry.aggregate(families).metrics();
}
