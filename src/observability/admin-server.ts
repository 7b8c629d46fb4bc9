/**
 * The admin HTTP listener (`admin.listen`, `--admin`): GET /metrics (Prometheus text format),
 * /healthz (the process answers) and /readyz (it serves decisions). Plain HTTP/1.1 on its own port,
 * read-only, no request body. Bounded: a few connections, short timeouts, and concurrent scrapes
 * share one collection, so a flood of requests cannot make the process collect more often.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../server/logger.js';
import type { StartFailure } from '../server/start-failure.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The admin listener's limits (docs/operations.md, "Limits and what happens at each"). */
export const ADMIN_LIMITS = {
  /** Open connections; more wait in the kernel's backlog until one closes. */
  maxConnections: 16,
  /** A request's headers must arrive within this time, the whole request too; else 408. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
} as const;

export interface Readiness {
  readonly ready: boolean;
  /** JSON body details: why not, which revision, which workers. */
  readonly [detail: string]: unknown;
}

export interface AdminSources {
  /** The exposition text; rejects when it cannot be collected. */
  metrics(): Promise<string>;
  readiness(): Promise<Readiness>;
}

/** An error while opening the admin port, carrying the start failure to report (start-failure.ts). */
export class AdminListenError extends Error {
  constructor(
    message: string,
    readonly startFailure: StartFailure,
  ) {
    super(message);
  }
}

export class AdminServer {
  private server: Server | undefined;
  private scrape: Promise<string> | undefined;
  port = 0;

  constructor(
    private readonly listen: string,
    private readonly sources: AdminSources,
    private readonly logger: Logger,
  ) {}

  /** Opens the port; resolves with it (port 0 picks a free one). */
  async start(): Promise<number> {
    const server = createServer({ requestTimeout: ADMIN_LIMITS.requestTimeoutMs, headersTimeout: ADMIN_LIMITS.requestTimeoutMs, keepAliveTimeout: ADMIN_LIMITS.keepAliveTimeoutMs }, (req, res) =>
      this.handle(req, res),
    );
    server.maxConnections = ADMIN_LIMITS.maxConnections;
    this.server = server;
    const sep = this.listen.lastIndexOf(':');
    const host = this.listen.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, this.listen)));
      server.listen(Number(this.listen.slice(sep + 1)), host, () => resolve());
    });
    server.on('error', (err) => this.logger.error({ err: err.message }, 'admin listener error'));
    this.port = (server.address() as AddressInfo).port;
    this.logger.info({ admin: `${this.listen.slice(0, sep)}:${this.port}` }, 'admin listener serving /metrics, /healthz, /readyz');
    return this.port;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return this.send(req, res, 404, 'text/plain; charset=utf-8', 'not found: the admin listener serves /metrics, /healthz and /readyz\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      res.setHeader('connection', 'close');
      return this.send(req, res, 405, 'text/plain; charset=utf-8', `method ${req.method} not allowed: use GET\n`);
    }
    if (path === '/healthz') return this.send(req, res, 200, 'application/json', `${JSON.stringify({ status: 'ok' })}\n`);
    if (path === '/readyz') {
      this.sources.readiness().then(
        (r) => this.send(req, res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify({ status: r.ready ? 'SERVING' : 'NOT_SERVING', ...r })}\n`),
        (err: unknown) => this.send(req, res, 503, 'application/json', `${JSON.stringify({ status: 'NOT_SERVING', ready: false, reason: String(err) })}\n`),
      );
      return;
    }
    // Concurrent scrapes share one collection.
    this.scrape ??= this.sources.metrics().finally(() => (this.scrape = undefined));
    this.scrape.then(
      (text) => this.send(req, res, 200, PROMETHEUS_CONTENT_TYPE, text),
      (err: unknown) => {
        this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics could not be collected');
        this.send(req, res, 500, 'text/plain; charset=utf-8', 'metrics could not be collected; see the log\n');
      },
    );
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
    if (res.destroyed) return;
    res.statusCode = status;
    res.setHeader('content-type', type);
    res.setHeader('content-length', Buffer.byteLength(body));
    res.setHeader('cache-control', 'no-store');
    res.end(req.method === 'HEAD' ? undefined : body);
    // A request with a body (not expected here) is not read: close rather than parse what follows.
    if (req.headers['content-length'] || req.headers['transfer-encoding']) res.once('finish', () => req.socket.destroy());
  }

  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.server = undefined;
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

function listenError(err: NodeJS.ErrnoException, listen: string): AdminListenError {
  const at = `admin.listen ${listen}`;
  const failure: StartFailure =
    err.code === 'EADDRINUSE'
      ? { code: 'ADDRESS_IN_USE', cause: `${at} is already in use (another process is listening on it); choose another --admin address or stop that process` }
      : err.code === 'EACCES'
        ? { code: 'ADDRESS_NOT_PERMITTED', cause: `${at}: permission denied to listen there (ports below 1024 need privileges)` }
        : err.code === 'EADDRNOTAVAIL'
          ? { code: 'ADDRESS_NOT_AVAILABLE', cause: `${at}: the host is not an address of this machine` }
          : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
            ? { code: 'ADDRESS_UNRESOLVED', cause: `${at}: the host name does not resolve` }
            : { code: 'START_FAILED', cause: `${at}: ${err.message}` };
  return new AdminListenError(`${at}: ${err.message}`, failure);
}
