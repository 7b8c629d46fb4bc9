import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../events/canonical.js';
import { ensureDirectory } from '../files/ensure-directory.js';

/**
 * Stream messages the keeper refused to keep: one canonical JSON line each, with the stream
 * sequence, subject, reason, size, SHA-256 of the raw bytes and the payload itself (as a JSON
 * string, so a multi-line or binary payload stays one line; cut at 64 KiB). The trail holds a
 * placeholder line for each, so its stream sequences stay complete.
 */
export const MAX_REJECTED_PAYLOAD = 64 * 1024;

export interface RejectedMessage {
  readonly seq: number;
  readonly subject: string;
  readonly reason: string;
  readonly bytes: number;
  readonly sha256: string;
}

const lenient = new TextDecoder('utf-8');

export function describeRejected(seq: number, subject: string, data: Uint8Array, reason: string): RejectedMessage {
  return { seq, subject, reason, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

export function rejectsLine(r: RejectedMessage, data: Uint8Array, now = new Date()): string {
  const cut = data.length > MAX_REJECTED_PAYLOAD;
  const payload = lenient.decode(cut ? data.subarray(0, MAX_REJECTED_PAYLOAD) : data);
  return `${canonicalJson({ ...r, payload, payloadCut: cut, time: now.toISOString() })}\n`;
}

export class RejectsFile {
  private buffered: string[] = [];

  constructor(readonly file: string) {}

  add(r: RejectedMessage, data: Uint8Array): void {
    this.buffered.push(rejectsLine(r, data));
  }

  /** Appends and fsyncs what was added (before the batch is acknowledged). */
  flush(): void {
    if (this.buffered.length === 0) return;
    ensureDirectory(path.dirname(this.file));
    const bytes = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    const fd = openSync(this.file, 'a', 0o644);
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
