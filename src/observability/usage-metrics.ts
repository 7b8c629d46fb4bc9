/** Metrics of the usage counters (docs/operations.md#usage-limits-rates-and-quotas). */
import type { Registry } from 'prom-client';
import { registerCollector } from './metric-table.js';

/** What the usage counters show (src/usage/runtime.ts). */
export interface UsageView {
  keys(): number;
  /** Counters forgotten: `lru` (the table was full), `idle` (nothing left to count). */
  evictions(): { readonly lru: number; readonly idle: number };
  /** scope: cluster: 1 while the fallback applies; syncs that failed. */
  clusterFallback(): boolean;
  clusterSyncFailures(): number;
  /** scope: instance in a worker of `serve --workers N`: 1 while the primary does not answer its syncs. */
  instanceFallback(): boolean;
}

export function registerUsageMetrics(registry: Registry, view: UsageView): void {
  registerCollector(registry, 'verdict_usage_keys', 'Usage-limit counters (limit, key) this process keeps (at most usage.maxKeys).', 'gauge', () => [{ value: view.keys(), labels: {} }]);
  registerCollector(registry, 'verdict_usage_evictions_total', 'Usage-limit counters forgotten: reason lru (usage.maxKeys reached: the key starts afresh) or idle (nothing left to count).', 'counter', () => {
    const e = view.evictions();
    return [
      { value: e.lru, labels: { reason: 'lru' } },
      { value: e.idle, labels: { reason: 'idle' } },
    ];
  });
  registerCollector(registry, 'verdict_usage_cluster_fallback', '1 while the shared counters of scope: cluster limits are unreachable and usage.cluster.fallback applies, else 0.', 'gauge', () => [{ value: view.clusterFallback() ? 1 : 0, labels: {} }]);
  registerCollector(registry, 'verdict_usage_instance_fallback', 'serve --workers N: workers whose syncs of scope: instance counters with the primary stopped (each counts alone with 1/N of each limit).', 'gauge', () => [{ value: view.instanceFallback() ? 1 : 0, labels: {} }]);
  registerCollector(registry, 'verdict_usage_cluster_sync_failures_total', 'Syncs of scope: cluster counters with NATS KV that failed.', 'counter', () => [{ value: view.clusterSyncFailures(), labels: {} }]);
}
