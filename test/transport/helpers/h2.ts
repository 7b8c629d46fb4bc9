/**
 * A hand-driven HTTP/2 gRPC client (node:http2) for abusing the server the way an attacker would:
 * raw message bytes, half-sent messages, streams that never end, many streams and connections.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';

/** gRPC length-prefixed framing: flag byte, 4-byte big-endian length, the bytes. */
export function grpcFrame(body: Buffer, declaredLength = body.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, body]);
}

export interface StreamOutcome {
  /** grpc-status from trailers or a trailers-only response; undefined when none came. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  /** RST_STREAM code when the stream was reset (0 = NO_ERROR after a full response). */
  readonly rstCode: number | undefined;
  /** Response message bytes (gRPC framing stripped). */
  readonly messages: Buffer[];
}

export function connect(address: string, options: http2.SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const secure = 'ca' in options;
  return new Promise((resolve, reject) => {
    // The client holds what it sends in its session memory (Node's default: 10 MB) and resets
    // streams with ENHANCE_YOUR_CALM when the server's answer arrives beyond it.
    const session = http2.connect(`${secure ? 'https' : 'http'}://${address}`, { maxSessionMemory: 4096, ...options });
    session.once('error', reject);
    session.once('remoteSettings', () => {
      session.off('error', reject);
      session.on('error', () => undefined);
      resolve(session);
    });
  });
}

/** Opens a gRPC stream for `path`; nothing is sent yet. */
export function openStream(session: ClientHttp2Session, path: string, extra: http2.OutgoingHttpHeaders = {}): ClientHttp2Stream {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra }, { endStream: false });
  stream.on('error', () => undefined);
  return stream;
}

/** Resolves once the stream is closed, with what the server answered. */
export function outcome(stream: ClientHttp2Stream): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    let grpcStatus: number | undefined;
    let grpcMessage = '';
    const chunks: Buffer[] = [];
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) {
        grpcStatus = Number(h['grpc-status']);
        grpcMessage = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('close', () => {
      const all = Buffer.concat(chunks);
      const messages: Buffer[] = [];
      for (let i = 0; i + 5 <= all.length; ) {
        const n = all.readUInt32BE(i + 1);
        messages.push(all.subarray(i + 5, i + 5 + n));
        i += 5 + n;
      }
      resolve({ grpcStatus, grpcMessage, rstCode: stream.rstCode, messages });
    });
  });
}

/** One whole unary call with raw request bytes. */
export async function rawCall(session: ClientHttp2Session, path: string, body: Buffer): Promise<StreamOutcome> {
  const stream = openStream(session, path);
  const done = outcome(stream);
  stream.end(grpcFrame(body));
  return done;
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(text);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
