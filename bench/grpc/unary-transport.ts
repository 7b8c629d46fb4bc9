/**
 * How a load generator sends one unary gRPC call with a pre-encoded request. Under load the
 * response body is ignored; only the probe call reads it (callForResponse). Two transports:
 *
 * - `h2` (default): node:http2 directly, one HTTP/2 session, requests framed once up front (the
 *   5-byte gRPC message prefix), the status read from the trailers. Like h2load, it spends its
 *   CPU on HTTP/2 only: about 100–135 µs per call here against about 235 µs for grpc-js, which
 *   leaves the server more of a 2-CPU machine.
 * - `grpc-js`: a grpc-js Client (makeUnaryRequest with identity serialisers), the transport the
 *   harness used before; kept to reproduce those figures.
 */
import http2 from 'node:http2';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';

export type ClientKind = 'h2' | 'grpc-js';
export const CLIENT_KINDS: readonly ClientKind[] = ['h2', 'grpc-js'];

/** The --client flag's value, checked. */
export function parseClientKind(value: string): ClientKind {
  if ((CLIENT_KINDS as readonly string[]).includes(value)) return value as ClientKind;
  throw new Error(`--client: "${value}" is not one of ${CLIENT_KINDS.join(', ')}`);
}

/** Completion of one call: undefined on gRPC status OK, else "<code> <message>". */
export type CallDone = (error: string | undefined) => void;

export interface UnaryTransport {
  /** Resolves once the connection is up (rejects after `timeoutMs`). */
  ready(timeoutMs: number): Promise<void>;
  /** Sends request `index` of the pool the transport was made with. */
  call(index: number, done: CallDone): void;
  /**
   * Sends request `index` and resolves with the serialised response message (rejects on any
   * status but OK). Over the same connection as the load: a second connection per generator
   * would upset how a cluster server's primary hands connections to its workers (round robin).
   */
  callForResponse(index: number): Promise<Buffer>;
  close(): void;
}

const identity = (b: Buffer): Buffer => b;

export function createTransport(kind: ClientKind, address: string, path: string, messages: readonly Buffer[]): UnaryTransport {
  return kind === 'h2' ? new Http2Transport(address, path, messages) : new GrpcJsTransport(address, path, messages);
}

class GrpcJsTransport implements UnaryTransport {
  private readonly client: Client;
  constructor(
    address: string,
    private readonly path: string,
    private readonly messages: readonly Buffer[],
  ) {
    // A private channel: generators must not share one connection (they are separate processes anyway).
    this.client = new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  }

  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  callForResponse(index: number): Promise<Buffer> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(this.path, identity, identity, this.messages[index]!, (err: ServiceError | null, res?: Buffer) => (err ? reject(new Error(`${err.code} ${err.details}`)) : resolve(res!))),
    );
  }

  call(index: number, done: CallDone): void {
    this.client.makeUnaryRequest(this.path, identity, identity, this.messages[index]!, (err: ServiceError | null) => done(err ? `${err.code} ${err.details}` : undefined));
  }

  close(): void {
    this.client.close();
  }
}

class Http2Transport implements UnaryTransport {
  private readonly session: http2.ClientHttp2Session;
  private readonly frames: Buffer[];
  private readonly headers: http2.OutgoingHttpHeaders;
  private failure: Error | undefined;

  constructor(address: string, path: string, messages: readonly Buffer[]) {
    this.frames = messages.map((m) => {
      const f = Buffer.allocUnsafe(5 + m.length);
      f[0] = 0; // not compressed
      f.writeUInt32BE(m.length, 1);
      m.copy(f, 5);
      return f;
    });
    this.headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
    // Large windows: CheckBatch answers must not wait for WINDOW_UPDATEs.
    this.session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 4 * 1024 * 1024 } });
    this.session.on('error', (err) => (this.failure = err));
    this.session.on('connect', () => this.session.setLocalWindowSize(16 * 1024 * 1024));
  }

  ready(timeoutMs: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.session.connecting === false && !this.session.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no HTTP/2 connection within ${timeoutMs} ms`)), timeoutMs);
      this.session.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.session.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  call(index: number, done: CallDone): void {
    this.send(index, undefined, done);
  }

  callForResponse(index: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    return new Promise((resolve, reject) =>
      this.send(index, chunks, (error) => {
        if (error) return reject(new Error(error));
        const body = Buffer.concat(chunks);
        // One length-prefixed, uncompressed message.
        if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return reject(new Error(`unexpected gRPC response framing (${body.length} bytes)`));
        resolve(body.subarray(5));
      }),
    );
  }

  private send(index: number, chunks: Buffer[] | undefined, done: CallDone): void {
    let status: string | undefined;
    let message = '';
    let finished = false;
    const finish = (error: string | undefined) => {
      if (finished) return;
      finished = true;
      done(error);
    };
    let req: http2.ClientHttp2Stream;
    try {
      req = this.session.request(this.headers);
    } catch (err) {
      finish(`transport ${(err as Error).message}`);
      return;
    }
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    // A trailers-only answer (an error) carries its status in the response headers.
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', chunks ? (c: Buffer) => chunks.push(c) : noop);
    req.on('error', (err) => finish(`transport ${err.message}`));
    req.on('close', () => finish(status === '0' ? undefined : status === undefined ? `transport stream closed without a gRPC status (HTTP/2 code ${req.rstCode})` : `${status} ${message}`));
    req.end(this.frames[index]!);
  }

  close(): void {
    this.session.close();
  }
}

function noop(): void {}
