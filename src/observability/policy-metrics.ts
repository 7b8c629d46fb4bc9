/**
 * Which policy set serves (`verdict_policy_info{revision}`, its load time and size) and how
 * reloads went. A cluster worker reports what it serves; the process that reads the policy
 * directory (single process, or the cluster primary) counts reloads, so a reload counts once.
 */
import type { Registry } from 'prom-client';
import { registerCollector, type Sample } from './metric-table.js';

/** The parts of the policy store the metrics read (at scrape time). */
export interface PolicyView {
  current(): { readonly set: { readonly revision: string; readonly ruleCount: number; readonly resourceTypes: readonly string[] }; readonly loadedAt: Date } | undefined;
  lastFailure(): { readonly at: Date } | undefined;
}

export type ReloadStatus = 'loaded' | 'unchanged' | 'rejected';
const STATUSES: readonly ReloadStatus[] = ['loaded', 'unchanged', 'rejected'];

export class PolicyMetrics {
  private readonly reloads = new Map<ReloadStatus, number>(STATUSES.map((s) => [s, 0]));

  /** One reload of the policy directory (the first load at start included). */
  reloaded(status: ReloadStatus): void {
    this.reloads.set(status, (this.reloads.get(status) ?? 0) + 1);
  }

  /** The set this process serves. */
  registerServing(registry: Registry, view: PolicyView): void {
    const live = (f: (l: NonNullable<ReturnType<PolicyView['current']>>) => Sample[]) => () => {
      const l = view.current();
      return l ? f(l) : [];
    };
    registerCollector(registry, 'verdict_policy_info', 'The policy set revision this process serves (value 1); absent until a set is loaded.', 'gauge', live((l) => [{ value: 1, labels: { revision: l.set.revision } }]));
    registerCollector(registry, 'verdict_policy_loaded_timestamp_seconds', 'When the serving revision went live (Unix seconds).', 'gauge', live((l) => [{ value: l.loadedAt.getTime() / 1000, labels: {} }]));
    registerCollector(registry, 'verdict_policy_rules', 'Rules in the serving policy set.', 'gauge', live((l) => [{ value: l.set.ruleCount, labels: {} }]));
    registerCollector(registry, 'verdict_policy_resource_types', 'Resource types with a policy of their own in the serving set.', 'gauge', live((l) => [{ value: l.set.resourceTypes.length, labels: {} }]));
  }

  /** Reloads, and whether a rejected change stands: in the process that reads the directory. */
  registerOwner(registry: Registry, view: Pick<PolicyView, 'lastFailure'>): void {
    registerCollector(registry, 'verdict_policy_reloads_total', 'Loads of the policy directory by result: loaded (a new revision went live), unchanged (same content), rejected (did not load; the last good set keeps serving).', 'counter', () =>
      STATUSES.map((result) => ({ value: this.reloads.get(result) ?? 0, labels: { result } })),
    );
    registerCollector(registry, 'verdict_policy_change_rejected', '1 while the last change to the policy files was rejected and the last good set keeps serving (GetPolicySet.last_failure), else 0.', 'gauge', () => [
      { value: view.lastFailure() ? 1 : 0, labels: {} },
    ]);
  }
}
