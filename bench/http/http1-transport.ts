/**
 * The load generator's HTTP/1.1 transport (AuthZEN): raw TCP sockets with keep-alive, like wrk.
 * Every request (request line, headers and JSON body) is encoded once up front; a call writes those
 * bytes on an idle connection and reads the answer's status line, headers and body length, without
 * decoding the body (the probe call does). One call is outstanding per connection (no pipelining),
 * so a generator opens as many connections as it keeps calls in flight.
 */
import net from 'node:net';
import type { CallDone, UnaryTransport } from '../grpc/unary-transport.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** One full request per message: POST `path` with a JSON body and an X-Request-ID. */
export function encodeRequests(address: string, path: string, bodies: readonly Buffer[]): Buffer[] {
  return bodies.map((body, i) =>
    Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${address}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Request-ID: bench-${i}\r\n\r\n`, 'latin1'),
      body,
    ]),
  );
}

interface Pending {
  readonly done: CallDone;
  /** Only for the probe call: the response body. */
  readonly resolveBody?: (body: Buffer) => void;
}

/** One keep-alive connection and its response parser (Content-Length or chunked bodies). */
class Connection {
  readonly socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;
  private failure: string | undefined;
  readonly connected: Promise<void>;

  constructor(host: string, port: number, private readonly onIdle: (c: Connection) => void) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(`transport ${err.message}`));
    this.socket.on('close', () => this.fail('transport connection closed by the server'));
  }

  send(request: Buffer, pending: Pending): void {
    if (this.failure) {
      // A dead connection fails every call at once (counted as errors), and stays in the pool.
      this.onIdle(this);
      return pending.done(this.failure);
    }
    this.pending = pending;
    this.socket.write(request);
  }

  private fail(reason: string): void {
    this.failure ??= reason;
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    this.onIdle(this);
    p.done(this.failure);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const headEnd = this.buffer.indexOf(CRLFCRLF);
    if (headEnd === -1) return;
    const head = this.buffer.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const bodyStart = headEnd + 4;
    const lower = head.toLowerCase();
    const lengthAt = lower.indexOf('\r\ncontent-length:');
    let body: Buffer;
    let consumed: number;
    if (lengthAt !== -1) {
      const eol = lower.indexOf('\r\n', lengthAt + 2);
      const length = Number.parseInt(lower.slice(lengthAt + 17, eol === -1 ? undefined : eol), 10);
      if (this.buffer.length < bodyStart + length) return;
      body = this.buffer.subarray(bodyStart, bodyStart + length);
      consumed = bodyStart + length;
    } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = this.buffer.indexOf('\r\n', at);
        if (lineEnd === -1) return;
        const size = Number.parseInt(this.buffer.toString('latin1', at, lineEnd), 16);
        if (this.buffer.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          consumed = lineEnd + 4;
          break;
        }
        parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      return this.fail(`response without Content-Length or chunked body (${head.split('\r\n')[0]})`);
    }
    this.buffer = this.buffer.subarray(consumed);
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    // Idle again before the caller hears back, so its next call can take this connection.
    this.onIdle(this);
    if (status !== 200) {
      p.done(`HTTP ${status} ${body.toString('utf8', 0, Math.min(body.length, 200))}`);
    } else {
      p.resolveBody?.(Buffer.from(body));
      p.done(undefined);
    }
  }

  close(): void {
    this.failure ??= 'closed';
    this.socket.destroy();
  }
}

export class Http1Transport implements UnaryTransport {
  private readonly requests: Buffer[];
  private readonly connections: Connection[] = [];
  private readonly idle: Connection[] = [];
  private readonly waiting: (() => void)[] = [];

  constructor(address: string, path: string, bodies: readonly Buffer[], connections: number) {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon);
    const port = Number(address.slice(colon + 1));
    this.requests = encodeRequests(address, path, bodies);
    for (let i = 0; i < connections; i++) {
      const c = new Connection(host, port, (conn) => this.release(conn));
      this.connections.push(c);
      this.idle.push(c);
    }
  }

  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no HTTP connection within ${timeoutMs} ms`)), timeoutMs)));
    try {
      await Promise.race([Promise.all(this.connections.map((c) => c.connected)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private release(c: Connection): void {
    const next = this.waiting.shift();
    this.idle.push(c);
    next?.();
  }

  private withConnection(use: (c: Connection) => void): void {
    const c = this.idle.pop();
    if (c) return use(c);
    this.waiting.push(() => use(this.idle.pop()!));
  }

  call(index: number, done: CallDone): void {
    this.withConnection((c) => c.send(this.requests[index]!, { done }));
  }

  callForResponse(index: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let body: Buffer | undefined;
      this.withConnection((c) =>
        c.send(this.requests[index]!, {
          resolveBody: (b) => (body = b),
          done: (err) => (err ? reject(new Error(err)) : resolve(body ?? Buffer.alloc(0))),
        }),
      );
    });
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}
