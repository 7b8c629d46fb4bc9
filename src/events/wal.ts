import { closeSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ensureDirectory } from '../files/ensure-directory.js';

/** One logged message: what to publish, exactly as first built, plus its place in its chain. */
export interface WalEntry {
  readonly subject: string;
  readonly msgId: string;
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly payload: string;
}

/** A byte position in the log: segment number and offset within it. */
export interface WalPosition {
  readonly segment: number;
  readonly offset: number;
}

export function comparePositions(a: WalPosition, b: WalPosition): number {
  return a.segment - b.segment || a.offset - b.offset;
}

const SEGMENT = /^decisions-(\d{8})\.wal$/;
const segmentName = (n: number) => `decisions-${String(n).padStart(8, '0')}.wal`;

export class WalError extends Error {
  readonly code = 'SPOOL_UNAVAILABLE';
  /** Why: `SPOOL_FULL` (events.spoolMaxBytes reached) or the system error code (`ENOSPC`, `EIO`, `EFBIG`, …). */
  constructor(
    message: string,
    readonly reason: string = 'SPOOL_UNAVAILABLE',
  ) {
    super(message);
  }
}

/** Makes a directory entry (a new segment, the cursor, the lock) durable: fsync of the directory itself. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The decision spool: an append-only, segmented write-ahead log of every event, in chain order.
 * Events are written here before they are published; a checkpoint acknowledged by JetStream moves
 * the committed position forward and fully committed segments are deleted. After an outage or a
 * crash, publishing resumes from the committed position and JetStream's de-duplication (message
 * id = event id) drops what had already been stored. Lines: subject, msgId, chain, seq, hash,
 * payload separated by tabs (JSON never holds a raw tab or newline).
 */
export class DecisionLog {
  private fd: number | undefined;
  private segment = 1;
  private size = 0;
  private committed: WalPosition = { segment: 1, offset: 0 };
  private persistedCommit = '';
  private cursorFd: number | undefined;
  private oldestSegment = 1;
  private readonly cursorFile: string;
  private lockFile: string | undefined;
  /** A failed write could not be cut back yet: the file may end in a torn line; repair before writing. */
  private needsRepair = false;

  constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly maxBytes: number,
  ) {
    this.cursorFile = path.join(dir, 'committed.json');
  }

  open(): void {
    try {
      ensureDirectory(this.dir);
      this.lock();
      const segments = this.segments();
      this.segment = segments.length > 0 ? segments[segments.length - 1]! : 1;
      this.fd = openSync(path.join(this.dir, segmentName(this.segment)), 'a+');
      this.size = statSync(path.join(this.dir, segmentName(this.segment))).size;
      this.dropTornTail();
      let committed: WalPosition = { segment: segments[0] ?? this.segment, offset: 0 };
      try {
        const saved = JSON.parse(readFileSync(this.cursorFile, 'utf8')) as WalPosition;
        if (Number.isInteger(saved.segment) && Number.isInteger(saved.offset) && saved.segment >= committed.segment) committed = saved;
      } catch {
        // No cursor yet: replay everything present (duplicates are dropped by JetStream).
      }
      this.committed = committed;
      this.oldestSegment = segments[0] ?? this.segment;
      // The segment, lock and directory entries may all be new: make them survive a power loss.
      syncDirectory(this.dir);
      syncDirectory(path.dirname(path.resolve(this.dir)));
    } catch (err) {
      throw new WalError(`events.spoolDir ${this.dir}: cannot open the decision spool (${(err as Error).message}); set events.spoolDir to a writable directory`);
    }
  }

  /**
   * A crash mid-write can leave a partial last line. It was never acknowledged to anyone, but the
   * next append would be glued onto it and both would be lost (or the pair misread as one entry):
   * cut the segment back to its last complete line.
   */
  private dropTornTail(): void {
    let end = this.size;
    const buf = Buffer.allocUnsafe(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = readSync(this.fd!, buf, 0, end - start, start);
      const nl = buf.subarray(0, n).lastIndexOf(10);
      if (nl !== -1) {
        end = start + nl + 1;
        break;
      }
      end = start;
    }
    if (end < this.size) {
      ftruncateSync(this.fd!, end);
      fsyncSync(this.fd!);
      this.size = end;
    }
  }

  /**
   * One process per spool directory: two writers would interleave lines and break both chains.
   * The lock file holds the owner's pid; a lock left by a dead process is taken over.
   */
  private lock(): void {
    const lockFile = path.join(this.dir, 'spool.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(lockFile, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        this.lockFile = lockFile;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(readFileSync(lockFile, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
          throw new Error(`it is in use by process ${owner}; every instance needs its own events.spoolDir`);
        }
        unlinkSync(lockFile); // stale: its owner is gone
      }
    }
  }

  private segments(): number[] {
    return readdirSync(this.dir)
      .map((n) => SEGMENT.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  end(): WalPosition {
    return { segment: this.segment, offset: this.size };
  }

  committedPosition(): WalPosition {
    return this.committed;
  }

  /** Bytes written but not yet confirmed by JetStream (approximate across segments). */
  pendingBytes(): number {
    if (this.committed.segment === this.segment) return this.size - this.committed.offset;
    return (this.segment - this.committed.segment) * this.segmentBytes + this.size - this.committed.offset;
  }

  /**
   * Appends entries in order; returns the end position of each, or throws WalError when the spool
   * is full (events.spoolMaxBytes) or the disk refuses. With `sync`, data is on disk on return.
   */
  append(entries: readonly WalEntry[], sync: boolean, payloadViews?: Uint8Array[]): WalPosition[] {
    if (this.fd === undefined) throw new WalError('decision spool is not open');
    if (this.needsRepair) this.repair();
    if (this.pendingBytes() > this.maxBytes) throw new WalError(`decision spool is full (${this.maxBytes} bytes unconfirmed; NATS has been unavailable too long)`, 'SPOOL_FULL');
    if (this.size >= this.segmentBytes) this.rotate();
    // One buffer for the whole group, strings encoded straight into it, one write syscall. The
    // caller may ask for views of each payload in it, to publish the same bytes without encoding
    // them again (no per-event buffers: they were most of the decision stream's garbage).
    const prefixes: string[] = new Array<string>(entries.length);
    let total = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const prefix = `${e.subject}\t${e.msgId}\t${e.chain}\t${e.seq}\t${e.hash}\t`;
      prefixes[i] = prefix;
      total += Buffer.byteLength(prefix) + Buffer.byteLength(e.payload) + 1;
    }
    const bytes = Buffer.allocUnsafe(total);
    const positions: WalPosition[] = new Array<WalPosition>(entries.length);
    let at = 0;
    for (let i = 0; i < entries.length; i++) {
      at += bytes.write(prefixes[i]!, at, 'utf8');
      const start = at;
      at += bytes.write(entries[i]!.payload, at, 'utf8');
      if (payloadViews) payloadViews[i] = bytes.subarray(start, at);
      bytes[at++] = 10;
      positions[i] = { segment: this.segment, offset: this.size + at };
    }
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
      if (sync) fsyncSync(this.fd);
    } catch (err) {
      // A short write followed by ENOSPC (or any failure) leaves part of the group in the file.
      // Cut it back to the last whole record, so the file, `size` and every position agree again;
      // otherwise later records would land after a torn line, where replay cannot find them.
      this.needsRepair = true;
      try {
        this.repair();
      } catch {
        // retried before the next write
      }
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new WalError(`cannot write the decision spool in ${this.dir}: ${(err as Error).message}`, code);
    }
    this.size += bytes.length;
    return positions;
  }

  /** Truncates the current segment back to `size`, the end of its last whole record. */
  private repair(): void {
    try {
      ftruncateSync(this.fd!, this.size);
      fsyncSync(this.fd!);
    } catch (err) {
      throw new WalError(`cannot repair the decision spool in ${this.dir} after a failed write: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code ?? 'EIO');
    }
    this.needsRepair = false;
  }

  /** Opens the next segment before letting go of the current one: a failure leaves the log as it was. */
  private rotate(): void {
    let fd: number;
    try {
      fsyncSync(this.fd!);
      fd = openSync(path.join(this.dir, segmentName(this.segment + 1)), 'a+');
    } catch (err) {
      throw new WalError(`cannot start a new decision spool segment in ${this.dir}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code ?? 'EIO');
    }
    try {
      syncDirectory(this.dir); // the new segment's name must survive a crash as surely as its content
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(path.join(this.dir, segmentName(this.segment + 1)));
      } catch {
        // reopened (and reused) by the next attempt
      }
      throw new WalError(`cannot sync the decision spool directory ${this.dir}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code ?? 'EIO');
    }
    closeSync(this.fd!);
    this.fd = fd;
    this.segment += 1;
    this.size = 0;
  }

  sync(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  /** Reads up to `max` complete entries from `from`; returns them with each one's end position. */
  read(from: WalPosition, max: number): { entries: WalEntry[]; ends: WalPosition[]; next: WalPosition } {
    let pos = from;
    // Skip to the next segment when this one is exhausted (and a later one exists).
    while (pos.segment < this.segment) {
      const size = this.segmentSize(pos.segment);
      if (pos.offset < size) break;
      pos = { segment: pos.segment + 1, offset: 0 };
    }
    const size = pos.segment === this.segment ? this.size : this.segmentSize(pos.segment);
    if (pos.offset >= size) return { entries: [], ends: [], next: pos };
    const file = path.join(this.dir, segmentName(pos.segment));
    const fd = pos.segment === this.segment ? this.fd! : openSync(file, 'r');
    try {
      const length = Math.min(size - pos.offset, 8 * 1024 * 1024);
      const buf = Buffer.allocUnsafe(length);
      const n = readSync(fd, buf, 0, length, pos.offset);
      const entries: WalEntry[] = [];
      const ends: WalPosition[] = [];
      let start = 0;
      while (entries.length < max) {
        const nl = buf.indexOf(10, start);
        if (nl === -1 || nl >= n) break;
        const parts = buf.toString('utf8', start, nl).split('\t');
        start = nl + 1;
        if (parts.length < 6) continue; // a torn line from a crash: never acknowledged to anyone
        const [subject, msgId, chain, seq, hash] = parts as [string, string, string, string, string];
        entries.push({ subject, msgId, chain, seq: Number(seq), hash, payload: parts.slice(5).join('\t') });
        ends.push({ segment: pos.segment, offset: pos.offset + start });
      }
      if (start === 0 && n === size - pos.offset) {
        // Only a torn tail remains in this segment: skip past it.
        return { entries, ends, next: { segment: pos.segment, offset: size } };
      }
      return { entries, ends, next: { segment: pos.segment, offset: pos.offset + start } };
    } finally {
      if (fd !== this.fd) closeSync(fd);
    }
  }

  /**
   * The message id of the last whole entry in the spool (undefined when it is empty). A restarted
   * publisher thread uses it to tell which of the events handed to the dead one it had spooled.
   */
  lastMsgId(): string | undefined {
    for (let segment = this.segment; segment >= this.oldestSegment; segment--) {
      const size = segment === this.segment ? this.size : this.segmentSize(segment);
      if (size === 0) continue;
      const fd = segment === this.segment ? this.fd! : openSync(path.join(this.dir, segmentName(segment)), 'r');
      try {
        // The line before the final newline: read backwards in chunks until its start.
        let end = size - 1;
        let chunk = 64 * 1024;
        for (;;) {
          const start = Math.max(0, end - chunk);
          const buf = Buffer.allocUnsafe(end - start);
          const n = readSync(fd, buf, 0, end - start, start);
          const nl = buf.subarray(0, n).lastIndexOf(10);
          if (nl !== -1 || start === 0) {
            const line = buf.toString('utf8', nl + 1, n);
            return line.split('\t', 3)[1];
          }
          chunk *= 2;
        }
      } finally {
        if (fd !== this.fd) closeSync(fd);
      }
    }
    return undefined;
  }

  private segmentSize(segment: number): number {
    try {
      return statSync(path.join(this.dir, segmentName(segment))).size;
    } catch {
      return 0;
    }
  }

  /** Everything before `pos` is in JetStream: advance, drop finished segments, persist (lazily). */
  commit(pos: WalPosition, persist: boolean): void {
    if (comparePositions(pos, this.committed) > 0) this.committed = pos;
    while (this.oldestSegment < this.committed.segment) {
      try {
        unlinkSync(path.join(this.dir, segmentName(this.oldestSegment)));
      } catch {
        // already gone
      }
      this.oldestSegment += 1;
    }
    if (persist) this.persistCommit();
  }

  /**
   * Saves the committed position in place: one fixed-size write at offset 0 (a single sector, so it
   * is never torn), no rename — renames cost milliseconds on overlay file systems. Losing the last
   * update only means replaying a little more; JetStream drops the duplicates.
   */
  persistCommit(): void {
    const text = JSON.stringify(this.committed).padEnd(64, ' ');
    if (text === this.persistedCommit) return;
    if (this.cursorFd === undefined) {
      this.cursorFd = openSync(this.cursorFile, 'w');
      syncDirectory(this.dir);
    }
    writeSync(this.cursorFd, text, 0, 'utf8');
    this.persistedCommit = text;
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fsyncSync(this.fd);
      this.persistCommit();
      if (this.cursorFd !== undefined) fsyncSync(this.cursorFd);
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
      if (this.cursorFd !== undefined) closeSync(this.cursorFd);
      this.cursorFd = undefined;
      if (this.lockFile) {
        try {
          unlinkSync(this.lockFile);
        } catch {
          // already gone
        }
        this.lockFile = undefined;
      }
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
