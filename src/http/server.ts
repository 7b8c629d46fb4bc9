import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { HttpConfig } from '../config/schema.js';
import type { HttpRequest, HttpResponse } from './handler.js';

/** TLS for the HTTP listener: the same files as the gRPC port (tls section). */
export interface HttpTls {
  readonly certificate: Buffer;
  readonly privateKey: Buffer;
  readonly ca: Buffer | undefined;
  readonly requestClientCert: boolean;
  readonly requireClientCert: boolean;
}

/**
 * The HTTP listener: node:http (HTTP/1.1) in plaintext; with TLS an HTTP/2 server that also speaks
 * HTTP/1.1 (ALPN). Applies the transport limits of the http section (timeouts, connections,
 * streams) and stops gracefully: no new connections, idle ones closed, requests in flight finish,
 * the rest cut after the grace period.
 */
export class HttpHost {
  readonly server: http.Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private closing: Promise<'graceful' | 'forced'> | undefined;
  port = 0;

  constructor(
    private readonly config: HttpConfig,
    handler: (req: HttpRequest, res: HttpResponse) => void,
    private readonly tls: HttpTls | undefined,
  ) {
    // How often Node checks connections for the header and request timeouts.
    const checkEvery = Math.max(50, Math.min(1_000, Math.floor(config.headersTimeoutMs / 4)));
    if (tls) {
      const server = http2.createSecureServer({
        allowHTTP1: true,
        cert: tls.certificate,
        key: tls.privateKey,
        ca: tls.ca,
        requestCert: tls.requestClientCert,
        rejectUnauthorized: tls.requireClientCert,
        minVersion: 'TLSv1.2',
        settings: { maxConcurrentStreams: config.maxConcurrentStreams },
      });
      // HTTP/1.1 over this server reads the same properties as node:http's.
      Object.assign(server, {
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: config.requestTimeoutMs,
        keepAliveTimeout: config.idleTimeoutMs,
        connectionsCheckingInterval: checkEvery,
      });
      // Idle HTTP/2 sessions (and HTTP/1.1 sockets) time out.
      server.setTimeout(config.idleTimeoutMs);
      server.on('session', (session: http2.ServerHttp2Session) => {
        this.sessions.add(session);
        session.once('close', () => this.sessions.delete(session));
      });
      server.on('request', handler);
      this.server = server;
    } else {
      this.server = http.createServer(
        {
          headersTimeout: config.headersTimeoutMs,
          requestTimeout: config.requestTimeoutMs,
          keepAliveTimeout: config.idleTimeoutMs,
          connectionsCheckingInterval: checkEvery,
        },
        handler,
      );
    }
    (this.server as NetServer).maxConnections = config.maxConnections;
  }

  /** New certificates or client CAs from the tls files (checked before they are handed over). */
  updateTls(options: SecureContextOptions): void {
    if (this.tls) (this.server as http2.Http2SecureServer).setSecureContext(options);
  }

  /** Binds http.listen (port 0 = any free port; in a cluster, workers share it) and returns the port. */
  listen(): Promise<number> {
    const { listen } = this.config;
    const colon = listen.lastIndexOf(':');
    const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(listen.slice(colon + 1));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`http.listen ${listen}: ${err.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.port = (this.server.address() as AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /**
   * Graceful stop: stop accepting, close idle connections (and send GOAWAY on HTTP/2 sessions), let
   * requests in flight finish; after `graceMs` the remaining connections are cut.
   */
  close(graceMs: number): Promise<'graceful' | 'forced'> {
    this.closing ??= new Promise((resolve) => {
      if (!this.server.listening) return resolve('graceful');
      let timer: NodeJS.Timeout | undefined;
      this.server.close(() => {
        clearTimeout(timer);
        resolve('graceful');
      });
      for (const s of this.sessions) s.close();
      timer = setTimeout(() => {
        for (const s of this.sessions) s.destroy();
        (this.server as http.Server).closeAllConnections?.();
        resolve('forced');
      }, graceMs);
    });
    return this.closing;
  }
}
