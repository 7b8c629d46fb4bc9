import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { HttpError } from './errors.js';

/** What the request body reader needs of a request (node:http and the HTTP/2 compatibility API alike). */
export interface BodySource extends Readable {
  readonly headers: IncomingHttpHeaders;
}

/**
 * Checks the headers that decide whether a body is read at all: JSON only (AuthZEN's HTTPS binding;
 * a wrong Content-Type is 400, as the AuthZEN certification scenario requires), no compression
 * (415), and a declared length within the limit (413, answered without reading the body).
 */
export function checkBodyHeaders(headers: IncomingHttpHeaders, maxBytes: number): void {
  const type = headers['content-type'];
  if (!isJsonMediaType(type)) {
    throw new HttpError(400, 'INVALID_CONTENT_TYPE', type ? `Content-Type must be application/json (got ${JSON.stringify(type.slice(0, 100))})` : 'Content-Type must be application/json (the header is missing)');
  }
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new HttpError(415, 'UNSUPPORTED_CONTENT_ENCODING', `Content-Encoding ${JSON.stringify(encoding.slice(0, 100))} is not supported; send the body uncompressed`);
  }
  const length = headers['content-length'];
  if (length !== undefined && Number(length) > maxBytes) {
    throw new HttpError(413, 'BODY_TOO_LARGE', `request body of ${length} bytes exceeds the limit of ${maxBytes} bytes (limits.maxMessageBytes)`);
  }
}

/** application/json, with an optional charset that must be UTF-8 (RFC 8259 §8.1). */
function isJsonMediaType(value: string | undefined): boolean {
  if (!value) return false;
  // Fast path: what PEPs send.
  if (value === 'application/json') return true;
  const [essence, ...params] = value.split(';');
  if (essence!.trim().toLowerCase() !== 'application/json') return false;
  for (const p of params) {
    const [name, v] = p.split('=');
    if (name?.trim().toLowerCase() === 'charset' && v?.trim().replace(/"/g, '').toLowerCase() !== 'utf-8') return false;
  }
  return true;
}

/**
 * Reads the whole body (at most `maxBytes`: beyond, 413 without reading further) and parses it as
 * one JSON object. `timeoutMs` bounds the time the body may take to arrive (HTTP/2 streams; on
 * HTTP/1.1 the server's requestTimeout does it); 0 = none.
 */
export function readJsonBody(req: BodySource, maxBytes: number, timeoutMs = 0): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: HttpError | undefined, value?: Record<string, unknown>) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        // Stop reading; the connection is closed after the answer (Connection: close on HTTP/1.1).
        req.pause();
        reject(err);
      } else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return finish(new HttpError(413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${maxBytes} bytes (limits.maxMessageBytes)`));
      chunks.push(chunk);
    };
    const onEnd = () => {
      try {
        finish(undefined, parseJsonObject(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      } catch (err) {
        finish(err as HttpError);
      }
    };
    const onError = () => finish(new HttpError(400, 'INVALID_JSON', 'the request body could not be read'));
    if (timeoutMs > 0) timer = setTimeout(() => finish(new HttpError(408, 'REQUEST_TIMEOUT', `the request body did not arrive within ${timeoutMs} ms (http.requestTimeoutMs)`)), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** A UTF-8 JSON text whose top level is an object (AuthZEN's JSON serialization rules). */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) throw new HttpError(400, 'INVALID_JSON', 'the request body is empty; send a JSON object');
  if (!isUtf8(body)) throw new HttpError(400, 'INVALID_JSON', 'the request body is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'INVALID_JSON', `the request body is not valid JSON (${(err as Error).message.slice(0, 200)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'INVALID_JSON', 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}
