/**
 * Metrics, the admin listener and tracing of one `verdict serve` process, assembled for its role:
 *
 * - `single`: one process decides and reads the policy directory; it serves the admin port.
 * - `worker`: a cluster worker decides; its metrics (labelled worker="N") go to the primary over IPC.
 * - `primary`: the cluster primary reads the policy directory and serves the admin port, merging
 *   every worker's metrics with its own; readiness asks the workers.
 *
 * Metrics exist only with `admin.listen` set; tracing only with OTEL_TRACES_EXPORTER set. Without
 * either, nothing here runs on the decision path.
 */
import type { VerdictConfig } from '../config/schema.js';
import { packageVersion } from '../cli/version.js';
import type { Logger } from '../server/logger.js';
import type { DecisionHooks, DecisionTracer } from '../service/decision-hooks.js';
import { AdminServer, type Readiness } from './admin-server.js';
import { answerPrimary, ClusterMetrics } from './cluster-metrics.js';
import { mergeFamilies, PUBLISHER_STATS_TIMEOUT_MS, VerdictMetrics, type MetricFamilyJson } from './metrics.js';
import type { PolicyView, ReloadStatus } from './policy-metrics.js';
import type { PublisherStatsSource } from './publisher-metrics.js';
import type { TokenMetrics } from './token-metrics.js';
import { startTracing } from './tracing.js';
import { registerUsageMetrics, type UsageView } from './usage-metrics.js';

export type Role = { readonly kind: 'single' } | { readonly kind: 'worker'; readonly index: number } | { readonly kind: 'primary' };

/** How long the primary waits for workers' metrics: longer than a worker waits for its publisher. */
export const WORKER_SCRAPE_TIMEOUT_MS = PUBLISHER_STATS_TIMEOUT_MS + 1000;

/** What a deciding process shows the metrics and the admin listener. */
export interface ServedView {
  readonly policies: PolicyView;
  /** The decision sink: its counters are read when it is the publisher (`snapshot()` or `stats`). */
  readonly publisher?: object | undefined;
  /** The gRPC health status of verdict.v1.Authorization is SERVING. */
  serving(): boolean;
  /** This process reads the policy directory (counts reloads). */
  readonly ownsPolicies: boolean;
  /** The usage counters of the policies' limits. */
  readonly usage?: UsageView;
}

export interface ObservabilityOptions {
  /** A tracer to use instead of one from OTEL_* (tests: an in-memory exporter). */
  readonly tracer?: DecisionTracer;
}

export class Observability {
  private admin: AdminServer | undefined;
  private served: ServedView | undefined;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly config: VerdictConfig,
    private readonly logger: Logger,
    readonly role: Role,
    readonly metrics: VerdictMetrics | undefined,
    readonly tracer: DecisionTracer | undefined,
    private readonly cluster: ClusterMetrics | undefined,
  ) {}

  static async start(config: VerdictConfig, logger: Logger, role: Role, options: ObservabilityOptions = {}): Promise<Observability> {
    const metrics = config.admin ? new VerdictMetrics(role.kind === 'worker' ? role.index : undefined) : undefined;
    // The primary does not decide: no tracing there.
    const tracer = role.kind === 'primary' ? undefined : (options.tracer ?? (await startTracing(config, logger, packageVersion())));
    const cluster = metrics && role.kind === 'primary' ? new ClusterMetrics(config.workers, WORKER_SCRAPE_TIMEOUT_MS) : undefined;
    return new Observability(config, logger, role, metrics, tracer, cluster);
  }

  /** For the DecisionService. */
  get hooks(): DecisionHooks {
    return { observer: this.metrics?.decisions, tracer: this.tracer };
  }

  /** For the token verifier (Edge). */
  get tokens(): TokenMetrics | undefined {
    return this.metrics?.tokens;
  }

  /** A deciding process (single or worker) registers what it serves. */
  attachServer(view: ServedView): void {
    this.served = view;
    if (!this.metrics) return;
    const p = view.publisher as PublisherStatsSource | undefined;
    this.metrics.registerServing(view.policies, p && ('snapshot' in p || 'stats' in p) ? p : undefined);
    if (view.usage) registerUsageMetrics(this.metrics.registry, view.usage);
    if (view.ownsPolicies) this.attachPolicyOwner(view.policies);
    if (this.role.kind === 'worker') {
      const metrics = this.metrics;
      answerPrimary(this.role.index, () => metrics.json(), () => view.serving());
    }
  }

  /** The process that reads the policy directory (single, or the cluster primary). */
  attachPolicyOwner(view: Pick<PolicyView, 'lastFailure'>): void {
    this.metrics?.registerOwner(view);
  }

  /** A load of the policy directory finished (counted where the directory is read). */
  reloaded(status: ReloadStatus): void {
    this.metrics?.policies.reloaded(status);
  }

  /** Opens the admin listener when `admin.listen` is set (not in a worker: the primary serves it). */
  async startAdmin(): Promise<void> {
    if (!this.config.admin || this.role.kind === 'worker' || this.admin) return;
    this.admin = new AdminServer(this.config.admin.listen, { metrics: () => this.scrape(), readiness: () => this.readiness() }, this.logger);
    await this.admin.start();
  }

  get adminPort(): number {
    return this.admin?.port ?? 0;
  }

  private async scrape(): Promise<string> {
    const metrics = this.metrics!;
    if (!this.cluster) return metrics.text();
    const [own, answers] = await Promise.all([metrics.json(), this.cluster.ask(true)]);
    const answered = new Set(answers.map((a) => a.worker));
    const up: MetricFamilyJson = {
      name: 'verdict_worker_up',
      help: '1 when the cluster worker answered this scrape in time (its series are included), else 0.',
      type: 'gauge' as unknown as MetricFamilyJson['type'],
      aggregator: 'sum',
      values: Array.from({ length: this.cluster.configuredWorkers }, (_, i) => ({ value: answered.has(i) ? 1 : 0, labels: { worker: String(i) } })),
    } as unknown as MetricFamilyJson;
    return mergeFamilies([own, [up], ...answers.map((a) => a.families)]);
  }

  private async readiness(): Promise<Readiness> {
    if (this.cluster) {
      const answers = await this.cluster.ask(false);
      const workers = answers.map((a) => ({ worker: a.worker, ready: a.ready }));
      const ready = workers.some((w) => w.ready);
      return { ready, workers, ...(ready ? {} : { reason: answers.length === 0 ? 'no worker is serving yet' : 'no worker serves decisions' }) };
    }
    const served = this.served;
    const live = served?.policies.current();
    if (served?.serving()) return { ready: true, revision: live?.set.revision };
    return { ready: false, reason: live ? 'not serving (stopping)' : 'no policy set is loaded yet' };
  }

  /** Flushes traces and closes the admin listener. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.tracer?.close().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'traces could not be flushed'));
      await this.admin?.close();
    })();
    return this.closed;
  }
}
