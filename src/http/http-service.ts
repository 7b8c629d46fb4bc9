import { readTlsMaterial, type ReloadingCertificateProvider } from '../auth/tls.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { HttpConfig, VerdictConfig } from '../config/schema.js';
import type { Logger } from '../server/logger.js';
import type { DecisionService } from '../service/decision-service.js';
import { AuthzenApi } from './authzen-api.js';
import { createRequestHandler } from './handler.js';
import { PepAuthenticator } from './pep-auth.js';
import { HttpHost, type HttpTls } from './server.js';
import { TlsCallers } from './tls-callers.js';

export { checkHttpFiles } from './check-files.js';

export interface HttpServiceDeps {
  readonly config: VerdictConfig & { readonly http: HttpConfig };
  readonly decisions: DecisionService;
  readonly logger: Logger;
  /** Subject-token issuers (tokens section), for PEP JWTs (http.auth.jwtIssuers). */
  readonly tokens: TokenVerifier | undefined;
  /** The tls files, polled by the gRPC side: new material is handed to this listener too. */
  readonly certificates: ReloadingCertificateProvider | undefined;
  /** True while a policy set is loaded (health). */
  readonly loaded: () => boolean;
}

/**
 * The AuthZEN API over HTTP, on its own port beside gRPC: the same DecisionService (events, audit),
 * the same tls files and caller allowlist, and a graceful stop alongside the gRPC server's.
 */
export class AuthzenHttpService {
  private readonly host: HttpHost;
  private readonly auth: PepAuthenticator;
  private stopping = false;

  constructor(deps: HttpServiceDeps) {
    const { config, logger } = deps;
    const http = config.http;
    this.auth = new PepAuthenticator(http.auth, deps.tokens, (message) => logger.error({ component: 'http' }, message));
    const tlsConfig = config.tls;
    let tls: HttpTls | undefined;
    if (tlsConfig) {
      const m = readTlsMaterial(tlsConfig);
      tls = { certificate: m.certificate, privateKey: m.privateKey, ca: m.ca, requestClientCert: tlsConfig.clientCaFile !== undefined, requireClientCert: tlsConfig.requireClientCert };
    }
    const api = new AuthzenApi({ decisions: deps.decisions, limits: config.limits, rolesProperty: http.rolesProperty, maxEvaluations: config.limits.maxBatchItems });
    const handler = createRequestHandler({
      api,
      maxBodyBytes: config.limits.maxMessageBytes,
      maxRequestIdLength: config.limits.maxIdentifierLength,
      requestTimeoutMs: http.requestTimeoutMs,
      publicBaseUrl: http.publicBaseUrl,
      secure: tls !== undefined,
      listenAuthority: () => {
        const host = http.listen.slice(0, http.listen.lastIndexOf(':'));
        return `${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${this.host.port}`;
      },
      auth: this.auth.enabled ? this.auth : undefined,
      callers: tlsConfig?.clientCaFile ? new TlsCallers(tlsConfig.allowedCallers) : undefined,
      serving: () => !this.stopping && deps.loaded(),
      stopping: () => this.stopping,
      onUnexpectedError: (err, path) => logger.error({ err, path }, 'unexpected error while deciding'),
    });
    this.host = new HttpHost(http, handler, tls);
    if (tls && deps.certificates) {
      let current = { cert: tls.certificate, key: tls.privateKey, ca: tls.ca };
      deps.certificates.addIdentityCertificateListener((u) => {
        if (u) this.host.updateTls((current = { ...current, cert: u.certificate, key: u.privateKey }));
      });
      deps.certificates.addCaCertificateListener((u) => {
        if (u) this.host.updateTls((current = { ...current, ca: u.caCertificate }));
      });
    }
  }

  /** Binds http.listen; resolves with the port. */
  start(): Promise<number> {
    return this.host.listen();
  }

  get port(): number {
    return this.host.port;
  }

  /** Health turns NOT_SERVING, HTTP/1.1 answers close their connections, and the listener stops gracefully. */
  async stop(graceMs: number): Promise<'graceful' | 'forced'> {
    this.stopping = true;
    try {
      return await this.host.close(graceMs);
    } finally {
      this.auth.close();
    }
  }
}
