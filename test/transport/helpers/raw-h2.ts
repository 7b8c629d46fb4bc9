/**
 * A bare HTTP/2 client over a TCP socket that obeys nothing it is not made to: it opens streams
 * past SETTINGS_MAX_CONCURRENT_STREAMS, never answers PINGs, and shows every frame the server sends.
 */
import net from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_ACK = 0x1;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman (names and values < 127 bytes). */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

export class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  private buffered = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.take(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects, sends the preface and empty SETTINGS, and ACKs the server's SETTINGS (nothing else). */
  static async connect(port: number, host = '127.0.0.1'): Promise<RawH2> {
    const socket = net.connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
    await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG_ACK) === 0);
    socket.write(frame(FRAME.SETTINGS, FLAG_ACK, 0));
    return c;
  }

  /** The server's SETTINGS as {id: value}. */
  serverSettings(): Map<number, number> {
    const out = new Map<number, number>();
    const s = this.frames.find((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG_ACK) === 0);
    for (let i = 0; s && i + 6 <= s.payload.length; i += 6) out.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2));
    return out;
  }

  /** Opens a gRPC call on an odd stream id (HEADERS only, the request not ended). */
  headers(stream: number, path: string, endStream = false): void {
    const block = Buffer.concat([
      literal(':method', 'POST'),
      literal(':scheme', 'http'),
      literal(':path', path),
      literal(':authority', 'verdict'),
      literal('content-type', 'application/grpc'),
      literal('te', 'trailers'),
    ]);
    this.socket.write(frame(FRAME.HEADERS, FLAG_END_HEADERS | (endStream ? FLAG_END_STREAM : 0), stream, block));
  }

  data(stream: number, payload: Buffer, endStream = false): void {
    this.socket.write(frame(FRAME.DATA, endStream ? FLAG_END_STREAM : 0, stream, payload));
  }

  /** Resolves with the first frame (already received or to come) matching `test`; rejects on close or timeout. */
  waitFor(test: (f: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('timed out waiting for a frame')), timeoutMs);
      const check = () => {
        const f = this.frames.find(test);
        if (f) done(undefined, f);
        else if (this.closed) done(new Error('the connection closed first'));
      };
      const done = (err?: Error, f?: Frame) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve(f!);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the server closed the connection (false if it is still open after timeoutMs). */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  private take(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      this.frames.push({ type: this.buffered[3]!, flags: this.buffered[4]!, stream: this.buffered.readUInt32BE(5) & 0x7fffffff, payload: this.buffered.subarray(9, 9 + length) });
      this.buffered = this.buffered.subarray(9 + length);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
