import http2, { type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { status, type ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import type { TransportConfig } from '../config/schema.js';

/** Which transport limit turned something away, for the log. */
export type TransportLimit = 'transport.maxConnections' | 'transport.requestTimeoutMs' | 'transport.maxPendingRequests' | 'transport.maxPendingBytes' | 'limits.maxMessageBytes';

/** A request whose client has not finished sending it (no END_STREAM yet). */
interface Pending {
  readonly stream: ServerHttp2Stream;
  /** Request-streaming method: each message restarts the clock; otherwise the whole request must arrive in time. */
  readonly streaming: boolean;
  deadline: number;
  /** Bytes held for this request: its messages so far (prefixes included); for streaming methods only the one being received. */
  bytes: number;
  /** Bytes of the 5-byte message prefix seen so far (0 = none), and the length read from it so far. */
  prefixFill: number;
  length: number;
  /** Message bytes still to come once the prefix is complete. */
  remaining: number;
  /** grpc-js's call for this stream (bound by `interceptor`), which answers with a status. */
  call: StatusSender | undefined;
  /** Links of the pending list (oldest deadline first); `listed` while in it. */
  prev: Pending | undefined;
  next: Pending | undefined;
  listed: boolean;
}

/** The part of grpc-js's server call used here: sending the final status marks the call cancelled. */
interface StatusSender {
  sendStatus(s: { code: status; details: string; metadata: null }): void;
}

const PREFIX = 5;
const PENDING = Symbol('pendingRequest');
type GuardedStream = ServerHttp2Stream & { [PENDING]: Pending };
/** A cut-off stream is reset this long after its status was sent. */
const RESET_AFTER_MS = 1_000;

/**
 * Bounds what a client can make the server hold at the HTTP/2 layer, below grpc-js (which keeps
 * every half-received message in memory and waits for it without a limit):
 * - connections per process (net.Server.maxConnections: refused at accept, before TLS);
 * - requests not yet received whole: at most `maxPendingRequests`, holding at most
 *   `maxPendingBytes` of partial messages, each finished within `requestTimeoutMs` (for
 *   request-streaming methods: each message within that time of the previous one). Over a bound,
 *   the oldest incomplete request is cut off (RESOURCE_EXHAUSTED), so a stalled flood gives way to
 *   requests that arrive promptly; over time, DEADLINE_EXCEEDED;
 * - a message announcing more than `limits.maxMessageBytes` is refused from its 5-byte prefix
 *   (INVALID_ARGUMENT, the same text as the codec guard), before any of it is buffered.
 * Pending requests are kept in a list in deadline order (every deadline is now + the same timeout),
 * so one sweep timer per process serves them all and eviction takes the first entry.
 */
export class TransportGuard {
  /** Requests not received whole, as a linked list in deadline order (cheaper than a Set on every call). */
  private head: Pending | undefined;
  private tail: Pending | undefined;
  private count = 0;
  private pendingBytes = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly attached = new WeakSet<object>();
  /** The request whose stream grpc-js is setting up a call for right now ('stream' listeners run in order). */
  private opening: Pending | undefined;

  constructor(
    private readonly limits: TransportConfig,
    private readonly maxMessageBytes: number,
    private readonly isRequestStreaming: (path: string) => boolean,
    private readonly onLimit: (limit: TransportLimit, detail: Record<string, unknown>) => void,
  ) {}

  /** Applies the limits to an HTTP/2 server grpc-js created (idempotent). */
  attach(server: Http2Server): void {
    if (this.attached.has(server)) return;
    this.attached.add(server);
    (server as unknown as NetServer).maxConnections = this.limits.maxConnections;
    server.on('drop', (info?: { remoteAddress?: string }) => this.onLimit('transport.maxConnections', { remoteAddress: info?.remoteAddress, max: this.limits.maxConnections }));
    // prepended: our data listener sees each chunk before grpc-js's decoder buffers it
    server.prependListener('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
    if (!this.sweeper) {
      const every = Math.max(20, Math.min(1_000, Math.floor(this.limits.requestTimeoutMs / 10)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  /**
   * A grpc-js server interceptor that binds each call to its pending request, so a cut-off is
   * answered by grpc-js itself: it sends the status and marks the call cancelled, so neither its
   * own deadline timer nor a late END_STREAM can answer the stream a second time.
   */
  readonly interceptor: ServerInterceptor = (_method, call) => {
    const p = this.opening;
    this.opening = undefined;
    if (p?.listed) p.call = call as unknown as StatusSender;
    return call as ServerInterceptingCall;
  };

  /** Incomplete requests and the bytes they hold (for tests and stats). */
  stats(): { pendingRequests: number; pendingBytes: number } {
    return { pendingRequests: this.count, pendingBytes: this.pendingBytes };
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const path = headers[':path'];
    const p: Pending = {
      stream,
      streaming: typeof path === 'string' && this.isRequestStreaming(path),
      deadline: Date.now() + this.limits.requestTimeoutMs,
      bytes: 0,
      prefixFill: 0,
      length: 0,
      remaining: 0,
      call: undefined,
      prev: undefined,
      next: undefined,
      listed: false,
    };
    this.append(p);
    this.opening = p;
    while (this.count > this.limits.maxPendingRequests) {
      const oldest = this.head!;
      this.cutOff(oldest, status.RESOURCE_EXHAUSTED, `request not received whole: the server holds ${this.limits.maxPendingRequests} incomplete requests (transport.maxPendingRequests) and this one was the oldest`, 'transport.maxPendingRequests');
    }
    if (stream.closed) return;
    // shared listeners (no closures per call: this is on every call's path); `this` is the stream
    (stream as GuardedStream)[PENDING] = p;
    stream.on('data', this.dataListener);
    stream.on('end', this.releaseListener);
    stream.on('close', this.closeListener);
  }

  private readonly dataListener = ((guard: TransportGuard) =>
    function (this: GuardedStream, chunk: Buffer) {
      guard.onData(this[PENDING], chunk);
    })(this);

  private readonly releaseListener = ((guard: TransportGuard) =>
    function (this: GuardedStream) {
      guard.release(this[PENDING]);
    })(this);

  /**
   * A closed stream outlives its call: Node's native stream handle keeps it from young-generation
   * collection until the next full collection, and with it everything its listeners reach, which
   * is grpc-js's whole call (request, response, handler closures). Dropping those links when the
   * stream closes lets that garbage die young: under load the old generation grew by ~5 KB per
   * call (about 25 MB/s promoted) and peaked at 3-4x its live size between full collections.
   * 'close' comes after every other event of a stream ('data' and 'end' can no longer fire);
   * grpc-js's own 'close' handler runs after this one and uses neither listener.
   */
  private readonly closeListener = ((guard: TransportGuard) =>
    function (this: GuardedStream) {
      const p = this[PENDING];
      guard.release(p);
      p.call = undefined;
      this.removeAllListeners('data');
      this.removeAllListeners('end');
    })(this);

  private onData(p: Pending, chunk: Buffer): void {
    if (!p.listed) return;
    let off = 0;
    let held = p.bytes;
    while (off < chunk.length) {
      if (p.prefixFill < PREFIX) {
        // byte 0 is the compression flag, bytes 1-4 the length (big-endian)
        if (p.prefixFill > 0) p.length = p.length * 256 + chunk[off]!;
        p.prefixFill++;
        off++;
        held++;
        if (p.prefixFill < PREFIX) continue;
        const length = p.length;
        p.length = 0;
        if (length > this.maxMessageBytes) {
          this.cutOff(p, status.INVALID_ARGUMENT, `request: message of ${length} bytes exceeds the limit of ${this.maxMessageBytes} bytes (limits.maxMessageBytes)`, 'limits.maxMessageBytes');
          return;
        }
        p.remaining = length;
      } else {
        const n = Math.min(p.remaining, chunk.length - off);
        p.remaining -= n;
        off += n;
        held += n;
      }
      if (p.prefixFill === PREFIX && p.remaining === 0) {
        p.prefixFill = 0;
        // A whole message of a streaming method goes to its handler now; a unary (or
        // server-streaming) request still holds it until the client ends its side.
        if (p.streaming) {
          held = 0;
          this.restartClock(p);
        }
      }
    }
    this.pendingBytes += held - p.bytes;
    p.bytes = held;
    if (held > 0 && this.pendingBytes > this.limits.maxPendingBytes) this.shed();
  }

  /** Over the byte budget: cut off the oldest requests holding partial messages until within it. */
  private shed(): void {
    for (let q = this.head; q && this.pendingBytes > this.limits.maxPendingBytes; ) {
      const next = q.next;
      if (q.bytes > 0) this.cutOff(q, status.RESOURCE_EXHAUSTED, `request not received whole: incomplete requests hold more than ${this.limits.maxPendingBytes} bytes (transport.maxPendingBytes) and this one was among the oldest`, 'transport.maxPendingBytes');
      q = next;
    }
  }

  private restartClock(p: Pending): void {
    // moving it to the end keeps the list in deadline order
    this.unlink(p);
    p.deadline = Date.now() + this.limits.requestTimeoutMs;
    this.append(p);
  }

  private sweep(): void {
    const now = Date.now();
    for (let p = this.head; p && p.deadline <= now; p = this.head) {
      this.cutOff(p, status.DEADLINE_EXCEEDED, `request not received whole within ${this.limits.requestTimeoutMs} ms (transport.requestTimeoutMs)`, 'transport.requestTimeoutMs');
    }
  }

  private release(p: Pending): void {
    if (!p.listed) return;
    this.unlink(p);
    this.pendingBytes -= p.bytes;
    p.bytes = 0;
  }

  private append(p: Pending): void {
    p.prev = this.tail;
    p.next = undefined;
    if (this.tail) this.tail.next = p;
    else this.head = p;
    this.tail = p;
    p.listed = true;
    this.count++;
  }

  private unlink(p: Pending): void {
    if (p.prev) p.prev.next = p.next;
    else this.head = p.next;
    if (p.next) p.next.prev = p.prev;
    else this.tail = p.prev;
    p.prev = p.next = undefined;
    p.listed = false;
    this.count--;
  }

  /**
   * Ends the call with a gRPC status and resets the stream a moment later. grpc-js sends the
   * status (trailers-only, or trailers after headers it already sent); the stream is paused, so
   * the client can send at most one flow-control window more. The reset waits RESET_AFTER_MS:
   * right behind the status, clients report CANCELLED instead of it; and close(NO_ERROR) makes
   * Node hold the stream until its write side finishes, which under load starved the
   * connection's other streams.
   */
  private cutOff(p: Pending, code: status, details: string, limit: TransportLimit): void {
    this.release(p);
    const { stream } = p;
    if (stream.closed || stream.destroyed) return;
    this.onLimit(limit, { details });
    try {
      if (p.call) p.call.sendStatus({ code, details, metadata: null });
      else if (!stream.headersSent) {
        // no grpc-js call (it answered an unknown method or content type itself, or none was made)
        stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': String(code), 'grpc-message': encodeURI(details) }, { endStream: true });
      }
      // grpc-js resumes a cancelled call's stream to drop what still comes; pausing it instead
      // stops the client at its flow-control window, so a cut-off flood costs no more reading
      stream.pause();
      setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), RESET_AFTER_MS).unref();
    } catch {
      stream.destroy();
    }
  }
}

/**
 * onLimit for a logger: the first refusal of each limit is logged at once, later ones at most
 * every `everyMs` with how many there were, so a flood cannot flood the log.
 */
export function rateLimitedLimitLog(log: (fields: Record<string, unknown>, msg: string) => void, everyMs = 10_000): (limit: TransportLimit, detail: Record<string, unknown>) => void {
  const last = new Map<TransportLimit, { at: number; count: number }>();
  return (limit, detail) => {
    const now = Date.now();
    const seen = last.get(limit);
    if (seen && now - seen.at < everyMs) {
      seen.count++;
      return;
    }
    last.set(limit, { at: now, count: 0 });
    log({ limit, refusedSinceLastLine: seen?.count ?? 0, ...detail }, 'transport limit reached: a client was turned away');
  };
}
