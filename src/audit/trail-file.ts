import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ensureDirectory } from '../files/ensure-directory.js';

/**
 * Trail files: `decisions-YYYYMMDD-NNNN.jsonl`, one line per stream message, a new file per UTC
 * day or past `rotateBytes`. A kept message is `{"seq":<stream seq>,"subject":…,"data":<payload>}`
 * with the payload embedded byte for byte (it is canonical JSON: one line); a message the keeper
 * refused is `{"seq":…,"subject":…,"rejected":{"bytes","reason","sha256"}}` so the stream
 * sequence stays complete. `flush()` fsyncs; the keeper writes its receipt, then acknowledges.
 */
export const TRAIL_FILE = /^decisions-(\d{8})-(\d{4})\.jsonl$/;

export interface RejectedInfo {
  readonly bytes: number;
  readonly reason: string;
  readonly sha256: string;
}

export function formatTrailLine(seq: number, subject: string, payload: string): string {
  return `{"seq":${seq},"subject":${JSON.stringify(subject)},"data":${payload}}\n`;
}

export function formatRejectedLine(seq: number, subject: string, r: RejectedInfo): string {
  return `{"seq":${seq},"subject":${JSON.stringify(subject)},"rejected":{"bytes":${r.bytes},"reason":${JSON.stringify(r.reason)},"sha256":"${r.sha256}"}}\n`;
}

export type TrailLine =
  | { readonly type: 'record'; readonly seq: number; readonly subject: string; readonly payload: string }
  | { readonly type: 'rejected'; readonly seq: number; readonly subject: string; readonly rejected: RejectedInfo }
  /** A line that is a record by itself (events collected by other means). */
  | { readonly type: 'bare'; readonly payload: string }
  | { readonly type: 'invalid'; readonly reason: string };

/**
 * Parses one line exactly as the keeper writes it: the wrapper must re-serialise to the same
 * bytes, so nothing can hide in whitespace, key order or extra fields.
 */
export function parseTrailLine(line: string): TrailLine {
  if (!line.startsWith('{"seq":')) return { type: 'bare', payload: line };
  let parsed: { seq?: unknown; subject?: unknown; data?: unknown; rejected?: unknown };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    return { type: 'invalid', reason: 'line is not valid JSON' };
  }
  const { seq, subject } = parsed;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || typeof subject !== 'string') {
    return { type: 'invalid', reason: 'trail line without a valid stream seq and subject' };
  }
  if (parsed.rejected !== undefined) {
    const r = parsed.rejected as Partial<RejectedInfo>;
    if (typeof r.bytes === 'number' && typeof r.reason === 'string' && typeof r.sha256 === 'string') {
      const info: RejectedInfo = { bytes: r.bytes, reason: r.reason, sha256: r.sha256 };
      if (`${line}\n` === formatRejectedLine(seq, subject, info)) return { type: 'rejected', seq, subject, rejected: info };
    }
    return { type: 'invalid', reason: 'rejected-message line not in the form the keeper writes' };
  }
  const prefix = `{"seq":${seq},"subject":${JSON.stringify(subject)},"data":`;
  if (!line.startsWith(prefix) || !line.endsWith('}') || Object.keys(parsed).length !== 3) {
    return { type: 'invalid', reason: 'trail line not in the form the keeper writes ({"seq","subject","data"})' };
  }
  return { type: 'record', seq, subject, payload: line.slice(prefix.length, -1) };
}

/** A closed trail file as the receipts describe it. */
export interface FileReceipt {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Where the keeper stands in its current file. */
export interface TrailPosition {
  readonly file: string;
  readonly bytes: number;
  /** SHA-256 of the file's first `bytes` bytes. */
  readonly sha256: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** SHA-256 of the first `bytes` bytes of a file (and the hash state, to continue it). */
export function hashPrefix(file: string, bytes: number): { hash: Hash; digest: string } {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let pos = 0;
    while (pos < bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return { hash, digest: hash.copy().digest('hex') };
}

export function listTrailFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => TRAIL_FILE.test(f)).sort();
}

/** What `open()` found that does not match the receipt: for the keeper to report. */
export interface OpenProblem {
  readonly kind: 'truncated' | 'altered' | 'unreceipted';
  readonly message: string;
  /** Bytes cut from the end of the file (unreceipted), for the rejects file. */
  readonly cut?: { readonly file: string; readonly bytes: Buffer };
}

export class TrailWriter {
  private fd: number | undefined;
  private file = '';
  private size = 0;
  private day = '';
  private index = 0;
  private hash: Hash = createHash('sha256');
  private firstSeq = 0;
  private lastSeq = 0;
  private buffered: string[] = [];
  private bufferedFirst = 0;
  private bufferedLast = 0;
  /** Files closed by rotation since the last call of takeClosed(). */
  private closed: FileReceipt[] = [];

  constructor(
    readonly dir: string,
    private readonly rotateBytes: number,
  ) {}

  /**
   * Opens the trail where the receipt says the keeper stood. The file must still hold exactly
   * the receipted bytes; anything after them (a crash between write and receipt, or lines added
   * by someone else) is cut off and returned — those messages were never acknowledged and come
   * again. Files newer than every receipted one are set aside as `<name>.unreceipted`
   * (`receipted` lists the closed files the receipts know; undefined = no receipts at all). A file
   * shorter than, or different from, its receipt is reported, and writing goes on in a new file.
   */
  open(position: TrailPosition | undefined, receipted: readonly string[] | undefined): OpenProblem[] {
    ensureDirectory(this.dir);
    const problems: OpenProblem[] = [];
    const files = listTrailFiles(this.dir);
    if (receipted === undefined) {
      if (files.length > 0) {
        throw new Error(`${this.dir} holds trail files but there are no keeper receipts for them: the keeper cannot tell where it stopped or whether the files were changed. Keep the trail in a new directory (the same --durable continues from its acknowledged position) and check the old files with \`verdict audit verify\``);
      }
      return problems;
    }
    const newest = [position?.file ?? '', ...receipted].sort().pop() ?? '';
    for (const f of files.filter((f) => f > newest)) {
      const full = path.join(this.dir, f);
      if (statSync(full).size === 0) unlinkSync(full);
      else {
        renameSync(full, `${full}.unreceipted`);
        problems.push({ kind: 'unreceipted', message: `${f} was written after the keeper's last receipt; set aside as ${f}.unreceipted (its messages are fetched again)` });
      }
    }
    if (!position) return problems;
    const full = path.join(this.dir, position.file);
    const m = TRAIL_FILE.exec(position.file);
    // A file that no longer matches keeps its receipt (verify goes on reporting it); writing goes on in a new one.
    const keepReceipt = () => this.closed.push({ name: position.file, bytes: position.bytes, sha256: position.sha256, firstSeq: position.firstSeq, lastSeq: position.lastSeq });
    if (!m || !existsSync(full)) {
      problems.push({ kind: 'truncated', message: `trail file ${position.file} (stream messages ${position.firstSeq}..${position.lastSeq}) is missing` });
      keepReceipt();
      return problems;
    }
    const size = statSync(full).size;
    if (size < position.bytes) {
      problems.push({ kind: 'truncated', message: `trail file ${position.file} holds ${size} bytes, its receipt ${position.bytes}: its end was cut (it ended at stream sequence ${position.lastSeq}); writing goes on in a new file` });
      keepReceipt();
      return problems;
    }
    const { hash, digest } = hashPrefix(full, position.bytes);
    if (digest !== position.sha256) {
      problems.push({ kind: 'altered', message: `trail file ${position.file} no longer matches its receipt (SHA-256 of its first ${position.bytes} bytes differs): it was changed; writing goes on in a new file` });
      keepReceipt();
      return problems;
    }
    if (size > position.bytes) {
      const fd = openSync(full, 'r+');
      try {
        const cut = Buffer.alloc(Math.min(size - position.bytes, 64 * 1024));
        readSync(fd, cut, 0, cut.length, position.bytes);
        ftruncateSync(fd, position.bytes);
        fsyncSync(fd);
        problems.push({ kind: 'unreceipted', message: `trail file ${position.file} had ${size - position.bytes} bytes after the keeper's last receipt (a crash before the receipt, or lines added by someone else); cut off, the messages are fetched again`, cut: { file: position.file, bytes: cut } });
      } finally {
        closeSync(fd);
      }
    }
    this.day = m[1]!;
    this.index = Number(m[2]);
    this.openFile(full, hash, position.firstSeq, position.lastSeq);
    return problems;
  }

  private openFile(file: string, hash: Hash, firstSeq: number, lastSeq: number): void {
    this.closeCurrent();
    this.file = file;
    this.fd = openSync(file, 'a');
    this.size = statSync(file).size;
    this.hash = hash;
    this.firstSeq = firstSeq;
    this.lastSeq = lastSeq;
  }

  private closeCurrent(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    if (this.size > 0) this.closed.push({ name: path.basename(this.file), bytes: this.size, sha256: this.hash.copy().digest('hex'), firstSeq: this.firstSeq, lastSeq: this.lastSeq });
  }

  private ensureFile(now: Date): void {
    const day = now.toISOString().slice(0, 10).replace(/-/g, '');
    if (this.fd !== undefined && day === this.day && this.size < this.rotateBytes) return;
    if (day > this.day) {
      this.day = day;
      this.index = 1;
    } else {
      this.index += 1;
    }
    let name = `decisions-${this.day}-${String(this.index).padStart(4, '0')}.jsonl`;
    // Never reuse a name (a file set aside, or a clock that went back).
    while (existsSync(path.join(this.dir, name)) || existsSync(path.join(this.dir, `${name}.unreceipted`))) {
      this.index += 1;
      name = `decisions-${this.day}-${String(this.index).padStart(4, '0')}.jsonl`;
    }
    const full = path.join(this.dir, name);
    const fd = openSync(full, 'wx');
    closeSync(fd);
    // The new name must survive a crash before the receipt that names it.
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    this.openFile(full, createHash('sha256'), 0, 0);
  }

  add(seq: number, subject: string, payload: string): void {
    this.push(seq, formatTrailLine(seq, subject, payload));
  }

  addRejected(seq: number, subject: string, info: RejectedInfo): void {
    this.push(seq, formatRejectedLine(seq, subject, info));
  }

  private push(seq: number, line: string): void {
    if (this.buffered.length === 0) this.bufferedFirst = seq;
    this.bufferedLast = seq;
    this.buffered.push(line);
  }

  /** Writes buffered lines and fsyncs them. */
  flush(now = new Date()): void {
    if (this.buffered.length === 0) return;
    this.ensureFile(now);
    const bytes = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd!, bytes, written, bytes.length - written);
    fsyncSync(this.fd!);
    this.hash.update(bytes);
    this.size += bytes.length;
    if (this.firstSeq === 0) this.firstSeq = this.bufferedFirst;
    this.lastSeq = this.bufferedLast;
  }

  /** The receipt of the current file (after flush). */
  position(): TrailPosition | undefined {
    if (this.fd === undefined) return undefined;
    return { file: path.basename(this.file), bytes: this.size, sha256: this.hash.copy().digest('hex'), firstSeq: this.firstSeq, lastSeq: this.lastSeq };
  }

  /** Files closed by rotation since the last call. */
  takeClosed(): FileReceipt[] {
    const out = this.closed;
    this.closed = [];
    return out;
  }

  get currentFile(): string {
    return this.file;
  }

  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }
}
