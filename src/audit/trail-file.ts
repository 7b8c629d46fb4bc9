import { closeSync, fsyncSync, ftruncateSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ensureDirectory } from '../files/ensure-directory.js';

/** One line of an audit file: the stream sequence, subject and the message exactly as stored. */
export interface TrailLine {
  readonly seq: number;
  readonly subject: string;
  readonly data: unknown;
}

const FILE = /^decisions-(\d{8})-(\d{4})\.jsonl$/;

/** The raw payload is embedded verbatim, so verification sees exactly the published bytes' JSON. */
export function formatTrailLine(seq: number, subject: string, payload: string): string {
  return `{"seq":${seq},"subject":${JSON.stringify(subject)},"data":${payload}}\n`;
}

/**
 * Rotating JSONL files: `decisions-YYYYMMDD-NNNN.jsonl`, a new file per day or when one passes
 * `rotateBytes`. `flush()` fsyncs; the consumer acknowledges to JetStream only after it.
 */
export class TrailWriter {
  private fd: number | undefined;
  private file = '';
  private size = 0;
  private day = '';
  private index = 0;
  private buffered: string[] = [];

  constructor(
    readonly dir: string,
    private readonly rotateBytes: number,
  ) {}

  /** Opens the newest file and returns the last stream sequence already written (0 if none). */
  open(): number {
    ensureDirectory(this.dir);
    const files = readdirSync(this.dir).filter((f) => FILE.test(f)).sort();
    const newest = files[files.length - 1];
    if (!newest) return 0;
    const m = FILE.exec(newest)!;
    this.day = m[1]!;
    this.index = Number(m[2]);
    dropTornTail(path.join(this.dir, newest));
    this.openFile(path.join(this.dir, newest));
    return lastSeqOf(path.join(this.dir, newest));
  }

  private openFile(file: string): void {
    if (this.fd !== undefined) {
      fsyncSync(this.fd);
      closeSync(this.fd);
    }
    this.file = file;
    this.fd = openSync(file, 'a');
    this.size = statSync(file).size;
  }

  private ensureFile(now: Date): void {
    const day = now.toISOString().slice(0, 10).replace(/-/g, '');
    if (this.fd !== undefined && day === this.day && this.size < this.rotateBytes) return;
    if (day !== this.day) {
      this.day = day;
      this.index = 1;
    } else {
      this.index += 1;
    }
    this.openFile(path.join(this.dir, `decisions-${day}-${String(this.index).padStart(4, '0')}.jsonl`));
  }

  add(seq: number, subject: string, payload: string): void {
    this.buffered.push(formatTrailLine(seq, subject, payload));
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
    this.size += bytes.length;
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

/**
 * A crash mid-write can leave a partial last line (never acknowledged to JetStream). Counting it as
 * written would skip its message on resume, and the next line would be glued onto it: cut the file
 * back to its last complete line so the message is fetched and written again.
 */
function dropTornTail(file: string): void {
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  try {
    let end = size;
    const buf = Buffer.allocUnsafe(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = readSync(fd, buf, 0, end - start, start);
      const nl = buf.subarray(0, n).lastIndexOf(10);
      if (nl !== -1) {
        end = start + nl + 1;
        break;
      }
      end = start;
    }
    if (end < size) {
      ftruncateSync(fd, end);
      fsyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
}

/** The stream sequence of the last complete line of a trail file. */
export function lastSeqOf(file: string): number {
  const size = statSync(file).size;
  if (size === 0) return 0;
  const fd = openSync(file, 'r');
  try {
    const length = Math.min(size, 1024 * 1024);
    const buf = Buffer.allocUnsafe(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.startsWith('{"seq":'));
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = /^\{"seq":(\d+),/.exec(lines[i]!);
      if (m) return Number(m[1]);
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}
