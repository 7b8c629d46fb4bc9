import { createUsage, type UsageRuntime } from '../usage/runtime.js';
import type { VerdictConfig } from '../config/schema.js';
import { authorizationService } from '../grpc/authorization-service.js';
import { loadProtoDefinition } from '../grpc/proto.js';
import { AUTHORIZATION_SERVICE, GrpcHost, type HostedService } from '../grpc/server.js';
import { saveCodeCache } from '../files/code-cache.js';
import { rateLimitedLimitLog } from '../grpc/transport-guard.js';
import { withWireCodec } from '../grpc/wire/authorization-codec.js';
import type { AuthzenHttpService } from '../http/http-service.js';
import type { Observability } from '../observability/observability.js';
import { formatIssue } from '../policy/index.js';
import { NO_DECLARATIONS_WARNING } from '../policy/declared-check.js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { trailProblems } from '../events/publisher-stats.js';
import { TRAIL_HEALTH_SERVICE, type ClosableSink, type TrailHealth, type TrailStatusView } from '../service/decision-trail.js';
import { DISCARDING_SINK } from '../service/decision-record.js';
import { DecisionService } from '../service/decision-service.js';
import { withDecisionLogging } from './decision-log-sink.js';
import { Edge } from './edge.js';
import type { Logger } from './logger.js';
import type { PolicyChange, PolicyChangeHooks } from '../service/policy-source.js';
import { PolicyStore } from './policy-store.js';
import { createPolicySource, policySourceName } from './policy-source.js';
import type { FleetReporter } from '../bundles/fleet.js';
import { createFleetReporter } from '../bundles/replica-reporter.js';
import type { PolicySource } from '../service/policy-source.js';

/** Compile work during a reload runs in slices of about this many ms, between which checks are answered. */
export const RELOAD_SLICE_MS = 5;

export interface VerdictServerOptions {
  readonly config: VerdictConfig;
  readonly logger: Logger;
  /** Decision stream; default: discard (events disabled). */
  readonly sink?: ClosableSink;
  /**
   * Policies are handed over by a supervisor (cluster worker) through the store's prepare/commit
   * instead of being read and watched here.
   */
  readonly managedPolicies?: boolean;
  /** Metrics, the admin listener and tracing (src/observability); absent = none. */
  readonly observability?: Observability;
  /**
   * Awaited before a new policy set serves its first decision (for example to record the change in
   * the decision chain first); throwing keeps the old set. See PolicyChangeHooks.
   */
  readonly beforePolicySwap?: PolicyChangeHooks['beforeSwap'];
  /** Called synchronously at the swap itself: nothing decides between it and the new set (PolicyChangeHooks.atSwap). */
  readonly atPolicySwap?: PolicyChangeHooks['atSwap'];
  /** Called with every change once final (applied, unchanged, rejected), e.g. to record rejections. */
  readonly afterPolicyChange?: PolicyChangeHooks['afterChange'];
}

/**
 * The running service: policy store with hot reload, the gRPC host, health, and the decision
 * sink, wired together with an orderly start and a graceful stop.
 */
export class VerdictServer {
  readonly store: PolicyStore;
  readonly decisions: DecisionService;
  private readonly host: GrpcHost;
  private readonly sink: ClosableSink;
  /** tls, tokens and the ext_authz gateway; a setup error is kept and thrown by start(). */
  private readonly edge: Edge | undefined;
  private readonly edgeError: Error | undefined;
  private stopping: Promise<void> | undefined;
  private policyLive = false;
  private stopRequested = false;
  private trailHealthy = true;
  /** The AuthZEN HTTP API (http.listen); made at start. */
  private http: AuthzenHttpService | undefined;
  /** Where policies come from (undefined when handed over by a cluster primary). */
  private readonly source: PolicySource | undefined;
  /** Heartbeats for the fleet view (a replica that reads its own policies). */
  private fleet: FleetReporter | undefined;
  port = 0;
  httpPort = 0;
  /** Counters of the policy's rate limits and quotas, and their state file. */
  readonly usage: UsageRuntime;

  constructor(private readonly options: VerdictServerOptions) {
    const { config, logger } = options;
    const sink = options.sink ?? { ...DISCARDING_SINK, close: async () => undefined };
    this.sink = config.logDecisions ? withDecisionLogging(sink, logger) : sink;
    const source = options.managedPolicies
      ? undefined
      : createPolicySource(config, logger);
    this.source = source;
    this.store = new PolicyStore(source?.name ?? policySourceName(config), source, {
      sliceMs: RELOAD_SLICE_MS,
      compile: { limits: config.limits },
      hooks: {
        beforeSwap: options.beforePolicySwap,
        atSwap: options.atPolicySwap,
        afterChange: (c) => {
          this.onPolicyChange(c);
          options.afterPolicyChange?.(c);
        },
      },
    });
    this.usage = createUsage(config, logger);
    this.decisions = new DecisionService(this.store, this.sink, config.limits, options.observability?.hooks, this.usage.counters);
    try {
      this.edge = new Edge(config, logger, this.decisions, options.observability?.tokens);
    } catch (err) {
      this.edgeError = err as Error;
    }
    const pkg = loadProtoDefinition();
    const services: HostedService[] = [
      {
        name: AUTHORIZATION_SERVICE,
        // Check/CheckBatch on the hand-written wire codec; the rest stays on proto-loader.
        definition: withWireCodec(pkg[AUTHORIZATION_SERVICE] as ServiceDefinition),
        implementation: this.guard(
          authorizationService({
            decisions: this.decisions,
            store: this.store,
            limits: config.limits,
            tokens: this.edge?.tokens,
            callerOf: this.edge?.callerOf,
            trail: () => this.trailStatus(),
            onUnexpectedError: (err, method) => logger.error({ err, method }, 'unexpected error while deciding'),
          }),
        ),
      },
      ...(this.edge?.services ?? []),
    ];
    this.host = new GrpcHost(services, config.limits, this.edge?.extraProtoFiles, {
      transport: config.transport,
      onLimit: rateLimitedLimitLog((fields, msg) => logger.warn(fields, msg)),
    });
    const usage = this.usage;
    options.observability?.attachServer({
      policies: this.store,
      publisher: options.sink,
      serving: () => this.host.serving,
      ownsPolicies: !options.managedPolicies,
      usage: {
        keys: () => usage.counters.size,
        evictions: () => ({ lru: usage.counters.evictions, idle: usage.counters.idleEvictions }),
        clusterFallback: () => usage.cluster.inFallback,
        clusterSyncFailures: () => usage.cluster.failures,
        instanceFallback: () => usage.instance?.inFallback ?? false,
      },
    });
  }

  private guard(implementation: Record<string, unknown>): Record<string, unknown> {
    return this.edge ? this.edge.guard(implementation, AUTHORIZATION_SERVICE) : implementation;
  }

  private onPolicyChange(change: PolicyChange): void {
    if (!this.options.managedPolicies) this.options.observability?.reloaded(change.result.status === 'applied' ? 'loaded' : change.result.status);
    // A cluster's rejections are decided and logged once, by the primary.
    if (!(this.options.managedPolicies && change.result.status === 'rejected')) logPolicyChange(this.options.logger, change, this.store.current()?.set);
    if (change.result.status === 'applied') {
      // One line per load that says which load-time and run-time checks a set without declarations misses.
      if (!change.previousRevision && this.store.current()?.set.declarations === undefined) this.options.logger.warn({ revision: change.revision }, NO_DECLARATIONS_WARNING);
      this.policyLive = true;
      this.updateHealth();
    }
  }

  /** Loads policies, starts the sink, binds the port. Fails if the initial policy set is invalid. */
  async start(): Promise<number> {
    const { config, logger } = this.options;
    if (this.edgeError) throw this.edgeError;
    // First, so /healthz answers and /readyz says why not while the policies load.
    await this.options.observability?.startAdmin();
    if (this.options.managedPolicies) {
      if (!this.store.current()) throw new Error('cannot start: no policy set was handed over');
    } else {
      const first = await this.store.start();
      if (first.result.status === 'rejected') {
        throw new Error(`cannot start: ${first.result.message}`);
      }
    }
    await this.usage.start(this.store.current()?.set.usage);
    await this.sink.start?.();
    if (this.options.sink?.subscribeHealth && this.options.sink.trailHealth) {
      this.options.sink.subscribeHealth((h) => this.onTrailHealth(h));
      this.onTrailHealth(this.options.sink.trailHealth());
    }
    // A bundle label is always watched: reload.watch is about the directory's file events.
    if ((config.reload.watch || config.policySource.url !== '') && !this.options.managedPolicies) this.store.watch();
    // Stopped while starting (a worker's SIGTERM): binding now would fail with a grpc-js error.
    if (this.stopRequested) throw new Error('cannot start: stopped while starting');
    this.port = await this.host.bind(config.listen, this.edge?.credentials);
    const httpListen = await this.startHttp();
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    if (!this.options.managedPolicies) {
      this.fleet = createFleetReporter(config, logger, this.source, () => ({ revision: this.store.current()?.set.revision, loadedAt: this.store.current()?.loadedAt, lastFailure: this.store.lastFailure() }), `${host}:${this.port}`);
      this.fleet?.start();
    }
    logger.info({ listen: `${host}:${this.port}`, ...(httpListen ? { http: httpListen } : {}), policies: this.store.sourceName, revision: this.store.current()?.set.revision, events: config.events.enabled }, 'verdict serving');
    // The schema validators left for first use (declarations.ts), before requests need them: loading
    // ajv is ~30 ms once per process. After a reload they compile as requests first need them.
    setImmediate(() => this.store.current()?.set.declarations?.warm());
    // Off the start path (after the above, so ajv's modules are in it): the next start of this
    // installation compiles its modules from this (bin/verdict.js).
    setImmediate(saveCodeCache);
    return this.port;
  }

  /** The AuthZEN HTTP API beside gRPC when http.listen is set; returns its HOST:PORT. */
  private async startHttp(): Promise<string | undefined> {
    const { config, logger } = this.options;
    if (!config.http) return undefined;
    // Loaded only with http.listen (docs/performance.md, "Cold start").
    const { AuthzenHttpService } = await import('../http/http-service.js');
    this.http = new AuthzenHttpService({
      config: { ...config, http: config.http },
      decisions: this.decisions,
      logger,
      tokens: this.edge?.tokens,
      certificates: this.edge?.certificates,
      // /healthz and /readyz answer as the gRPC health's own status: with events.healthRequiresTrail, unhealthy trail = 503.
      loaded: () => this.store.current() !== undefined && (!config.events.healthRequiresTrail || this.trailHealthy),
    });
    this.httpPort = await this.http.start();
    return `${config.http.listen.slice(0, config.http.listen.lastIndexOf(':'))}:${this.httpPort}`;
  }

  setServing(serving: boolean): void {
    this.policyLive = serving;
    this.updateHealth();
  }

  /**
   * Health: every service SERVING once a policy set is live, until the stop; with
   * events.healthRequiresTrail, NOT_SERVING too while the decision trail is unhealthy. The trail
   * has its own name (verdict.v1.DecisionTrail) either way.
   */
  private updateHealth(): void {
    const { config } = this.options;
    const stopping = this.stopRequested;
    this.host.setServing(this.policyLive && !stopping && (!config.events.healthRequiresTrail || this.trailHealthy));
    if (config.events.enabled && this.options.sink?.trailHealth) this.host.health.setStatus(TRAIL_HEALTH_SERVICE, this.trailHealthy && !stopping ? 'SERVING' : 'NOT_SERVING');
  }

  private onTrailHealth(health: TrailHealth): void {
    const problems = trailProblems(health);
    const healthy = problems.length === 0;
    if (healthy !== this.trailHealthy) {
      if (healthy) this.options.logger.info('decision trail healthy again');
      else this.options.logger.error({ problems }, 'decision trail unhealthy: decisions are being lost or put at risk');
    }
    this.trailHealthy = healthy;
    this.updateHealth();
  }

  /** GetPolicySet's view of the decision trail. */
  async trailStatus(): Promise<TrailStatusView> {
    const { config } = this.options;
    const sink = this.options.sink;
    if (!config.events.enabled || !sink?.trailHealth) {
      return { enabled: false, healthy: true, problems: [], connected: false, publisherRunning: false, stream: '', streamDrift: [], spoolError: '', counters: {} };
    }
    const h = sink.trailHealth();
    const stats = sink.snapshot ? await sink.snapshot() : undefined;
    const counters: Record<string, number> = {};
    for (const [k, v] of Object.entries(stats ?? {})) if (typeof v === 'number') counters[k] = v;
    const problems = trailProblems(h);
    return {
      enabled: true,
      healthy: problems.length === 0,
      problems,
      connected: h.connected,
      publisherRunning: h.publisherRunning,
      stream: config.events.stream,
      streamDrift: h.streamDrift,
      ...(h.lastStreamIncident ? { lastStreamIncident: { at: new Date(h.lastStreamIncident.at), problems: h.lastStreamIncident.problems, repaired: h.lastStreamIncident.repaired } } : {}),
      spoolError: h.spoolError ?? '',
      counters,
    };
  }

  /** SIGHUP: reload now. */
  reload(): Promise<PolicyChange> {
    return this.store.reload({ kind: 'sighup' });
  }

  /** Graceful stop: health NOT_SERVING, finish in-flight calls, flush the sink. Idempotent. */
  stop(reason: string): Promise<void> {
    this.stopRequested = true;
    this.stopping ??= (async () => {
      const { config, logger } = this.options;
      logger.info({ reason }, 'verdict stopping');
      this.updateHealth();
      await this.fleet?.close();
      this.store.close();
      const [grpc, http] = await Promise.all([this.host.shutdown(config.shutdown.graceMs), this.http?.stop(config.shutdown.graceMs)]);
      const how = grpc === 'forced' || http === 'forced' ? 'forced' : 'graceful';
      await this.usage.stop();
      await this.sink.close();
      this.edge?.close();
      await this.options.observability?.close();
      logger.info({ reason, shutdown: how }, 'verdict stopped');
    })();
    return this.stopping;
  }
}

/** The log lines of a policy change (one process, or the cluster primary for all workers). */
export function logPolicyChange(log: Logger, change: PolicyChange, live: { readonly policyCount: number; readonly ruleCount: number } | undefined, extra: Record<string, unknown> = {}): void {
  const r = change.result;
  const files = { trigger: change.trigger.kind, added: change.added.length, changed: change.changed.length, removed: change.removed.length, ...extra };
  if (r.status === 'applied') {
    log.info(
      { revision: change.revision, previous: change.previousRevision ?? undefined, policies: live?.policyCount, rules: live?.ruleCount, ...files },
      change.previousRevision ? 'policy set reloaded' : 'policy set loaded',
    );
  } else if (r.status === 'rejected') {
    const kept = change.previousRevision;
    log.error(
      { errors: r.issues.length > 0 ? r.issues.map(formatIssue) : [r.message], keptRevision: kept, ...files },
      kept ? 'policy change rejected; the last good policy set keeps serving' : 'policy set rejected; not serving',
    );
  } else {
    log.debug({ revision: change.revision, ...files }, 'policy files touched; revision unchanged');
  }
}
