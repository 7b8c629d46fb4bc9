import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../events/canonical.js';
import { ensureDirectory } from '../files/ensure-directory.js';
import { signText, type SigningKey } from '../keys/signing-key.js';
import type { FileReceipt, TrailPosition } from './trail-file.js';

/**
 * The keeper's receipts: where it stands in the stream (the position it resumes from, instead of
 * parsing its own last line), a digest of every trail file it wrote, and the latest checkpoint it
 * saw per chain, with the stream sequence it was stored at. Kept outside the trail files
 * (`--receipts FILE`, ideally on another volume), replaced atomically and fsynced after every
 * written batch and before the batch is acknowledged. `verdict audit verify --receipts` compares a
 * trail with them: a cut tail, a deleted checkpoint or an edited wrapper no longer matches. With
 * `--signing-key` the keeper signs them (Ed25519 over the canonical JSON without `sig.value`).
 */
export const RECEIPTS_SCHEMA = 'verdict.keeper-receipts.v1';
export const RECEIPT_LIMITS = { chains: 1024, files: 10_000 } as const;

export interface ChainReceipt {
  readonly chain: string;
  /** The last record of the chain the keeper kept: a restarted keeper goes on checking links and gaps from it. */
  readonly head?: { readonly seq: number; readonly hash: string };
  /** The latest checkpoint exactly as published (its own signature proves it; the keeper's proves it saw it). */
  readonly checkpoint?: Record<string, unknown>;
  /** The stream sequence the checkpoint was stored at. */
  readonly streamSeq?: number;
}

export interface ReceiptsDoc {
  readonly schema: typeof RECEIPTS_SCHEMA;
  readonly stream: string;
  readonly durable: string;
  readonly filter: string | null;
  readonly updated: string;
  /** Last stream sequence kept (written and fsynced, or printed). */
  readonly streamSeq: number;
  /** The current trail file (--out only). */
  readonly position: TrailPosition | null;
  /** Closed trail files, oldest first. */
  readonly files: readonly FileReceipt[];
  readonly filesDropped: number;
  /** Latest checkpoint per chain, least recently updated first. */
  readonly chains: readonly ChainReceipt[];
  readonly sig?: { readonly alg: 'ed25519'; readonly key: string; readonly value: string };
}

export function receiptsSigningText(doc: Record<string, unknown>): string {
  const sig = doc.sig as { alg?: unknown; key?: unknown } | undefined;
  return canonicalJson({ ...doc, sig: { alg: sig?.alg, key: sig?.key } });
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function fileReceiptOk(f: unknown): boolean {
  return isObj(f) && typeof f.name === 'string' && isSeq(f.bytes) && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256) && isSeq(f.firstSeq) && isSeq(f.lastSeq);
}

/** Parses and checks a receipts document. */
export function parseReceipts(text: string, file: string): ReceiptsDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`receipts ${file}: not JSON`);
  }
  const d = doc as Record<string, unknown>;
  const problems: string[] = [];
  if (!isObj(d) || d.schema !== RECEIPTS_SCHEMA) throw new Error(`receipts ${file}: not a keeper receipts file (schema ${RECEIPTS_SCHEMA})`);
  if (typeof d.stream !== 'string' || typeof d.durable !== 'string') problems.push('stream and durable must be strings');
  if (d.filter !== null && typeof d.filter !== 'string') problems.push('filter must be a string or null');
  if (!isSeq(d.streamSeq)) problems.push('streamSeq must be an integer');
  if (d.position !== null && !fileReceiptOk({ ...(d.position as object), name: (d.position as { file?: unknown } | undefined)?.file })) problems.push('position is malformed');
  if (!Array.isArray(d.files) || !d.files.every(fileReceiptOk)) problems.push('files is malformed');
  const chainOk = (c: unknown) =>
    isObj(c) && typeof c.chain === 'string' &&
    (c.head === undefined || (isObj(c.head) && isSeq(c.head.seq) && typeof c.head.hash === 'string' && /^[0-9a-f]{64}$/.test(c.head.hash))) &&
    (c.checkpoint === undefined ? c.streamSeq === undefined : isObj(c.checkpoint) && isSeq(c.streamSeq));
  if (!Array.isArray(d.chains) || !d.chains.every(chainOk)) problems.push('chains is malformed');
  if (problems.length > 0) throw new Error(`receipts ${file}: ${problems.join('; ')}`);
  return doc as ReceiptsDoc;
}

export function loadReceipts(file: string): ReceiptsDoc | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`receipts ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseReceipts(text, file);
}

/** The keeper's live receipts, written atomically after each batch. */
export class ReceiptsFile {
  private streamSeq: number;
  private position: TrailPosition | null;
  private files: FileReceipt[];
  private filesDropped: number;
  private readonly chains = new Map<string, ChainReceipt>();

  constructor(
    readonly file: string,
    private readonly identity: { stream: string; durable: string; filter: string | null },
    previous: ReceiptsDoc | undefined,
    private readonly key: SigningKey | undefined,
  ) {
    this.streamSeq = previous?.streamSeq ?? 0;
    this.position = previous?.position ?? null;
    this.files = [...(previous?.files ?? [])];
    this.filesDropped = previous?.filesDropped ?? 0;
    for (const c of previous?.chains ?? []) this.chains.set(c.chain, c);
  }

  get lastStreamSeq(): number {
    return this.streamSeq;
  }

  get trailPosition(): TrailPosition | null {
    return this.position;
  }

  /** The current file no longer matches: its receipt was moved to the closed files. */
  dropPosition(): void {
    this.position = null;
  }

  noteCheckpoint(chain: string, checkpoint: Record<string, unknown>, streamSeq: number): void {
    this.update(chain, { checkpoint, streamSeq });
  }

  noteHead(chain: string, seq: number, hash: string): void {
    this.update(chain, { head: { seq, hash } });
  }

  private update(chain: string, change: Partial<ChainReceipt>): void {
    const old = this.chains.get(chain);
    this.chains.delete(chain);
    this.chains.set(chain, { ...old, ...change, chain });
    if (this.chains.size > RECEIPT_LIMITS.chains) this.chains.delete(this.chains.keys().next().value as string);
  }

  /** The chains the receipts know, least recently updated first. */
  chainReceipts(): ChainReceipt[] {
    return [...this.chains.values()];
  }

  /** Records the state after a flushed batch and writes the receipts (temp file, fsync, rename, fsync of the directory). */
  commit(streamSeq: number, position: TrailPosition | undefined, closed: readonly FileReceipt[]): void {
    this.streamSeq = streamSeq;
    if (position) this.position = position;
    this.files.push(...closed);
    if (this.files.length > RECEIPT_LIMITS.files) {
      this.filesDropped += this.files.length - RECEIPT_LIMITS.files;
      this.files.splice(0, this.files.length - RECEIPT_LIMITS.files);
    }
    this.write();
  }

  private document(): Record<string, unknown> {
    const doc: Record<string, unknown> = {
      schema: RECEIPTS_SCHEMA,
      stream: this.identity.stream,
      durable: this.identity.durable,
      filter: this.identity.filter,
      updated: new Date().toISOString(),
      streamSeq: this.streamSeq,
      position: this.position,
      files: this.files,
      filesDropped: this.filesDropped,
      chains: [...this.chains.values()],
    };
    if (this.key) {
      doc.sig = { alg: 'ed25519', key: this.key.id };
      doc.sig = { alg: 'ed25519', key: this.key.id, value: signText(this.key, receiptsSigningText(doc)) };
    }
    return doc;
  }

  write(): void {
    ensureDirectory(path.dirname(this.file));
    const text = `${JSON.stringify(this.document(), null, 1)}\n`;
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      const bytes = Buffer.from(text, 'utf8');
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dirFd = openSync(path.dirname(this.file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
