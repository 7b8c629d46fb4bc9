/** A small HTTP(S) client for the AuthZEN tests: one request per connection unless an agent is given. */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface TlsClientOptions {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** The server certificate names localhost. */
  readonly servername?: string;
}

export interface Target {
  readonly port: number;
  readonly host?: string;
  readonly tls?: TlsClientOptions;
  readonly agent?: http.Agent;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** An object is sent as JSON with Content-Type application/json (unless headers say otherwise). */
  readonly body?: string | Buffer | object;
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any;
}

export function request(target: Target, o: RequestOptions): Promise<Answer> {
  const isObject = o.body !== undefined && typeof o.body === 'object' && !Buffer.isBuffer(o.body);
  const payload = o.body === undefined ? undefined : isObject ? JSON.stringify(o.body) : (o.body as string | Buffer);
  const headers: Record<string, string | number> = { ...(isObject ? { 'content-type': 'application/json' } : {}), ...(o.headers ?? {}) };
  if (payload !== undefined) headers['content-length'] = Buffer.byteLength(payload);
  const options: https.RequestOptions = {
    host: target.host ?? '127.0.0.1',
    port: target.port,
    method: o.method ?? (payload === undefined ? 'GET' : 'POST'),
    path: o.path,
    headers,
    agent: target.agent ?? false,
  };
  if (target.tls) Object.assign(options, { ca: target.tls.ca, cert: target.tls.cert, key: target.tls.key, servername: target.tls.servername ?? 'localhost' });
  return new Promise((resolve, reject) => {
    const req = (target.tls ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** POST a JSON body. */
export function post(target: Target, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return request(target, { path, body: body as object, headers });
}

/**
 * Raw bytes over TCP: writes `chunks` (with `gapMs` between them), collects what comes back until
 * the server closes the connection or `waitMs` passes. For requests node:http would not send.
 */
export function rawExchange(port: number, chunks: readonly (string | Buffer)[], o: { gapMs?: number; waitMs?: number } = {}): Promise<{ text: string; closed: boolean; elapsedMs: number }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, elapsedMs: Date.now() - start });
    };
    const timer = setTimeout(done, o.waitMs ?? 5_000);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('error', () => undefined);
    socket.on('connect', async () => {
      for (const [i, c] of chunks.entries()) {
        if (i > 0 && o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
        if (socket.destroyed) return;
        socket.write(c);
      }
    });
  });
}
