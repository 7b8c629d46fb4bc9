import type { VerdictConfig } from '../config/schema.js';
import { authorizationService } from '../grpc/authorization-service.js';
import { loadProtoDefinition } from '../grpc/proto.js';
import { AUTHORIZATION_SERVICE, GrpcHost, type HostedService } from '../grpc/server.js';
import { withWireCodec } from '../grpc/wire/authorization-codec.js';
import { AuthzenHttpService } from '../http/http-service.js';
import type { Observability } from '../observability/observability.js';
import { formatIssue } from '../policy/index.js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { DISCARDING_SINK, type DecisionSink } from '../service/decision-record.js';
import { DecisionService } from '../service/decision-service.js';
import { withDecisionLogging } from './decision-log-sink.js';
import { Edge } from './edge.js';
import type { Logger } from './logger.js';
import { PolicyStore, type ReloadResult } from './policy-store.js';

/** A component with work to flush on shutdown (the decision publisher). */
export interface ClosableSink extends DecisionSink {
  start?(): Promise<void>;
  close(): Promise<void>;
}

export interface VerdictServerOptions {
  readonly config: VerdictConfig;
  readonly logger: Logger;
  /** Decision stream; default: discard (events disabled). */
  readonly sink?: ClosableSink;
  /**
   * Policies are handed over by a supervisor (cluster worker) through `store.loadSources` instead
   * of being read and watched here.
   */
  readonly managedPolicies?: boolean;
  /** Metrics, the admin listener and tracing (src/observability); absent = none. */
  readonly observability?: Observability;
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
  /** The AuthZEN HTTP API (http.listen); made at start. */
  private http: AuthzenHttpService | undefined;
  port = 0;
  httpPort = 0;

  constructor(private readonly options: VerdictServerOptions) {
    const { config, logger } = options;
    const sink = options.sink ?? { ...DISCARDING_SINK, close: async () => undefined };
    this.sink = config.logDecisions ? withDecisionLogging(sink, logger) : sink;
    this.store = new PolicyStore(config.policies, { onReload: (r) => this.onReload(r) });
    this.decisions = new DecisionService(this.store, this.sink, options.observability?.hooks);
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
            onUnexpectedError: (err, method) => logger.error({ err, method }, 'unexpected error while deciding'),
          }),
        ),
      },
      ...(this.edge?.services ?? []),
    ];
    this.host = new GrpcHost(services, config.limits, this.edge?.extraProtoFiles);
    options.observability?.attachServer({ policies: this.store, publisher: options.sink, serving: () => this.host.serving, ownsPolicies: !options.managedPolicies });
  }

  private guard(implementation: Record<string, unknown>): Record<string, unknown> {
    return this.edge ? this.edge.guard(implementation, AUTHORIZATION_SERVICE) : implementation;
  }

  private onReload(result: ReloadResult): void {
    const log = this.options.logger;
    if (!this.options.managedPolicies) this.options.observability?.reloaded(result.status);
    if (result.status === 'loaded') {
      const set = this.store.current()!.set;
      log.info({ revision: result.revision, previous: result.previous, policies: set.policies.length, rules: set.ruleCount }, result.previous ? 'policy set reloaded' : 'policy set loaded');
      this.host.setServing(true);
    } else if (result.status === 'rejected') {
      log.error(
        { errors: result.failure.issues.map(formatIssue), keptRevision: this.store.current()?.set.revision ?? null },
        this.store.current() ? 'policy change rejected; the last good policy set keeps serving' : 'policy set rejected; not serving',
      );
    } else {
      log.debug({ revision: result.revision }, 'policy files touched; revision unchanged');
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
      const first = await this.store.reload();
      if (first.status === 'rejected') {
        throw new Error(`cannot start: ${first.failure.message}`);
      }
    }
    await this.sink.start?.();
    if (config.reload.watch && !this.options.managedPolicies) this.store.watch(config.reload.debounceMs, config.reload.pollIntervalMs);
    this.port = await this.host.bind(config.listen, this.edge?.credentials);
    const httpListen = await this.startHttp();
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    logger.info({ listen: `${host}:${this.port}`, ...(httpListen ? { http: httpListen } : {}), policies: config.policies, revision: this.store.current()?.set.revision, events: config.events.enabled }, 'verdict serving');
    return this.port;
  }

  /** The AuthZEN HTTP API beside gRPC when http.listen is set; returns its HOST:PORT. */
  private async startHttp(): Promise<string | undefined> {
    const { config, logger } = this.options;
    if (!config.http) return undefined;
    this.http = new AuthzenHttpService({
      config: { ...config, http: config.http },
      decisions: this.decisions,
      logger,
      tokens: this.edge?.tokens,
      certificates: this.edge?.certificates,
      loaded: () => this.store.current() !== undefined,
    });
    this.httpPort = await this.http.start();
    return `${config.http.listen.slice(0, config.http.listen.lastIndexOf(':'))}:${this.httpPort}`;
  }

  setServing(serving: boolean): void {
    this.host.setServing(serving);
  }

  /** SIGHUP: reload now. */
  reload(): Promise<ReloadResult> {
    return this.store.reload();
  }

  /** Graceful stop: health NOT_SERVING, finish in-flight calls, flush the sink. Idempotent. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      const { config, logger } = this.options;
      logger.info({ reason }, 'verdict stopping');
      this.host.setServing(false);
      this.store.close();
      const [grpc, http] = await Promise.all([this.host.shutdown(config.shutdown.graceMs), this.http?.stop(config.shutdown.graceMs)]);
      const how = grpc === 'forced' || http === 'forced' ? 'forced' : 'graceful';
      await this.sink.close();
      this.edge?.close();
      await this.options.observability?.close();
      logger.info({ reason, shutdown: how }, 'verdict stopped');
    })();
    return this.stopping;
  }
}
