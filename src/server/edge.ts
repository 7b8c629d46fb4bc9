import type { ServerCredentials, ServiceDefinition } from '@grpc/grpc-js';
import { CallerAllowlist, CallerIdentity } from '../auth/callers.js';
import { readTlsMaterial, ReloadingCertificateProvider, serverCredentials } from '../auth/tls.js';
import { TokenVerifier } from '../auth/tokens.js';
import type { VerdictConfig } from '../config/schema.js';
import type { Caller } from '../engine/request.js';
import { EXT_AUTHZ_PROTO, EXT_AUTHZ_SERVICE, extAuthzService } from '../gateway/ext-authz-service.js';
import { RoutesError } from '../gateway/route-table.js';
import { loadGatewayRoutes } from '../gateway/routes-file.js';
import { loadProtoDefinition } from '../grpc/proto.js';
import { checkHttpFiles } from '../http/check-files.js';
import type { HostedService } from '../grpc/server.js';
import type { TokenMetrics } from '../observability/token-metrics.js';
import type { DecisionService } from '../service/decision-service.js';
import type { Logger } from './logger.js';

/**
 * Reads and checks every file the tls, tokens and gateway settings name (certificates and key,
 * token keys, the routes file) and returns every problem; `verdict serve` runs it before starting
 * (in a cluster, before any worker), so a bad file stops the start with a message naming it.
 */
export function checkEdgeFiles(config: VerdictConfig): string[] {
  const problems: string[] = [];
  if (config.tls) {
    try {
      readTlsMaterial(config.tls);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (config.tokens) problems.push(...TokenVerifier.validateSources(config.tokens));
  problems.push(...checkHttpFiles(config));
  if (config.gateway?.routesFile) {
    try {
      loadGatewayRoutes(config.gateway.routesFile);
    } catch (err) {
      if (!(err instanceof RoutesError)) throw err;
      problems.push(...err.problems.map((p) => `gateway.routesFile: ${p}`));
    }
  }
  return problems;
}

/**
 * What sits at Verdict's edge, built from the tls, tokens and gateway settings: server credentials
 * (mTLS, reloaded on change), the caller allowlist, the subject token verifier and the Envoy
 * ext_authz service. Every file is read and checked here, so a bad one stops the start with a
 * message naming it.
 */
export class Edge {
  readonly tokens: TokenVerifier | undefined;
  readonly credentials: ServerCredentials | undefined;
  readonly services: HostedService[] = [];
  readonly extraProtoFiles: string[] = [];
  private readonly callers: CallerIdentity | undefined;
  /** The tls files, polled; the HTTP listener takes its updates too. */
  readonly certificates: ReloadingCertificateProvider | undefined;

  constructor(config: VerdictConfig, logger: Logger, decisions: DecisionService, tokenMetrics?: TokenMetrics) {
    if (config.tokens) {
      const problems = TokenVerifier.validateSources(config.tokens);
      if (problems.length > 0) throw new Error(`invalid token issuer keys:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
      this.tokens = new TokenVerifier(config.tokens, config.limits, (message) => {
        logger.error({ component: 'tokens' }, message);
        tokenMetrics?.jwksReloadFailed();
      });
      tokenMetrics?.observe(this.tokens);
      logger.info({ issuers: config.tokens.issuers.map((i) => i.issuer) }, 'subject tokens accepted');
    }
    const tls = config.tls;
    if (tls) {
      this.certificates = new ReloadingCertificateProvider(tls, {
        reloaded: (info) => logger.info({ certFile: tls.certFile, validTo: info.validTo }, 'tls certificates reloaded'),
        rejected: (message) => logger.error({ certFile: tls.certFile }, message),
      });
      this.credentials = serverCredentials(tls, this.certificates);
      if (tls.clientCaFile) this.callers = new CallerIdentity(new CallerAllowlist(tls.allowedCallers));
    }
    if (config.gateway?.routesFile) {
      const settings = loadGatewayRoutes(config.gateway.routesFile);
      const implementation = extAuthzService({
        decisions,
        limits: config.limits,
        settings,
        tokens: this.tokens,
        callerOf: this.callerOf,
        onUnexpectedError: (err, method) => logger.error({ err, method }, 'unexpected error while deciding'),
        rateLimitHeadersOnAllow: config.usage.headersOnAllow,
      });
      this.services.push({
        name: EXT_AUTHZ_SERVICE,
        definition: loadProtoDefinition([EXT_AUTHZ_PROTO])[EXT_AUTHZ_SERVICE] as ServiceDefinition,
        implementation: this.guard(implementation, EXT_AUTHZ_SERVICE),
      });
      this.extraProtoFiles.push(EXT_AUTHZ_PROTO);
      logger.info({ routes: settings.table.size, file: settings.file, unmapped: settings.unmapped }, 'envoy ext_authz routes loaded');
    }
  }

  /** The mTLS caller of a call (set by guard); undefined without client certificates. */
  readonly callerOf = (call: object): Caller | undefined => this.callers?.callerOf(call);

  /** Identifies callers and applies the allowlist to every method of a service (identity when mTLS is off). */
  guard<T extends Record<string, unknown>>(implementation: T, service: string): T {
    return this.callers ? this.callers.guard(implementation, service) : implementation;
  }

  close(): void {
    this.tokens?.close();
    this.certificates?.close();
  }
}
