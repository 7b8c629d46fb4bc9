import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { canonicalJson } from '../events/canonical.js';
import type { Keyring } from '../keys/keyring.js';
import { receiptsSigningText, type ReceiptsDoc } from './receipts.js';
import { classifyRecord, parseCanonical, type Classified } from './records.js';
import { hashPrefix, parseTrailLine } from './trail-file.js';
import { ChainVerifier, checkpointSignature, type ChainSummary, type Finding } from './verifier.js';

/** A chain head seen elsewhere: a keeper receipt, a NATS KV head, a log line. */
export interface HeadClaim {
  /** Where the claim comes from, for messages ("receipts r.json", "KV head pdp-1"). */
  readonly source: string;
  readonly checkpoint: Record<string, unknown>;
  /** The stream sequence it was stored at, if known. */
  readonly streamSeq: number | undefined;
  /** The stream it was stored in, if known. */
  readonly stream: string | undefined;
}

export interface VerifyOptions {
  /** A filtered view (or receipts of a filtered keeper): gaps and checkpoints are not checked. */
  readonly partial?: boolean;
  readonly allowPartialStart?: boolean;
  readonly keyring?: Keyring | undefined;
  readonly receipts?: { readonly file: string; readonly doc: ReceiptsDoc } | undefined;
  readonly heads?: readonly HeadClaim[];
  /** The stream the files were kept from: a head of a chain these files do not hold counts only if it is of this stream. */
  readonly stream?: string | undefined;
  /** Called with every chained record read (the policy evidence checks use it). */
  readonly onChained?: (record: Extract<Classified, { type: 'chained' }>, where: string) => void;
}

export interface VerifyReport {
  readonly files: number;
  readonly lines: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly rejected: number;
  readonly findings: readonly Finding[];
  readonly findingCount: number;
  readonly chains: readonly ChainSummary[];
  readonly anchored: readonly { chain: string; seq: number; where: string }[];
  readonly notes: readonly string[];
  readonly signaturesChecked: boolean;
  readonly stream: { readonly first: number; readonly last: number };
}

interface FileSeen {
  readonly file: string;
  readonly bytes: number;
  lastSeq: number;
}

/**
 * Re-checks stored trail files offline, in the order given (the keeper's names sort by time).
 * Every line must be in the keeper's form and hold a record the keeper would accept; every chain
 * must verify from seq 1 unless `allowPartialStart`; with a keyring, signatures decide which
 * records are proven; receipts and heads reveal what was cut off the end.
 */
export async function verifyFiles(files: readonly string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const partial = (options.partial ?? false) || (options.receipts?.doc.filter ?? null) !== null;
  const verifier = new ChainVerifier({ partial, anchorUnknownChains: options.allowPartialStart ?? false, keyring: options.keyring });
  const claims: HeadClaim[] = [
    ...(options.receipts?.doc.chains ?? []).filter((c) => c.checkpoint).map((c) => ({ source: `receipts ${options.receipts!.file}`, checkpoint: c.checkpoint!, streamSeq: c.streamSeq, stream: options.receipts!.doc.stream })),
    ...(options.heads ?? []),
  ];
  // Where the claims say a checkpoint was stored: the trail line at that stream sequence must hold it.
  const expectedAt = new Map<number, HeadClaim>();
  for (const c of claims) if (c.streamSeq !== undefined) expectedAt.set(c.streamSeq, c);
  let lines = 0;
  let rejected = 0;
  const seen: FileSeen[] = [];
  for (const file of files) {
    const fileSeen: FileSeen = { file, bytes: statSync(file).size, lastSeq: 0 };
    seen.push(fileSeen);
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      lines++;
      const where = `${file}:${lineNo}`;
      const t = parseTrailLine(line);
      if (t.type === 'invalid') {
        verifier.report('malformed', '', 0, where, t.reason);
        continue;
      }
      if (t.type === 'rejected') {
        rejected++;
        fileSeen.lastSeq = t.seq;
        verifier.acceptRejected(t.seq, t.subject, t.rejected.reason, where);
        continue;
      }
      const parsed = parseCanonical(t.payload);
      const c = parsed.ok ? classifyRecord(parsed.value) : ({ type: 'invalid', reason: parsed.reason } as const);
      if (c.type === 'chained') options.onChained?.(c, where);
      if (t.type === 'bare') {
        verifier.acceptClassified(c, where);
        continue;
      }
      fileSeen.lastSeq = t.seq;
      verifier.acceptClassified(c, where, { streamSeq: t.seq, subject: t.subject });
      const claim = expectedAt.get(t.seq);
      if (claim && canonicalJson(claim.checkpoint) !== t.payload) {
        verifier.report('receipts', '', 0, where, `${claim.source} says stream message ${t.seq} is the checkpoint of chain ${String(claim.checkpoint.chain)} at seq ${String(claim.checkpoint.seq)}, but this line holds something else: lines were renumbered or replaced`);
      }
    }
  }
  verifier.finish();
  if (options.receipts) compareReceipts(verifier, options.receipts, seen, options.keyring);
  const stream = options.stream ?? options.receipts?.doc.stream;
  for (const claim of claims) compareHead(verifier, claim, options.keyring, stream);
  return {
    files: files.length,
    lines,
    events: verifier.events,
    checkpoints: verifier.checkpoints,
    rejected,
    findings: verifier.findings,
    findingCount: verifier.findingCount,
    chains: verifier.chainSummaries(),
    anchored: verifier.anchored,
    notes: verifier.notes,
    signaturesChecked: options.keyring !== undefined,
    stream: { first: verifier.firstStreamSeq, last: verifier.lastStreamSeq },
  };
}

/** Files, stream position and receipt signature against what the keeper recorded. */
function compareReceipts(verifier: ChainVerifier, receipts: { file: string; doc: ReceiptsDoc }, seen: readonly FileSeen[], keyring: Keyring | undefined): void {
  const { doc, file } = receipts;
  const where = `receipts ${file}`;
  if (keyring) {
    if (!doc.sig) verifier.notes.push(`${where}: not signed by the keeper (start it with --signing-key to sign them)`);
    else {
      const r = keyring.checkReceipt(doc.sig.key, receiptsSigningText(doc as unknown as Record<string, unknown>), doc.sig.value);
      if (r.status !== 'valid') verifier.report('receipts', '', 0, where, `the receipts' signature is not valid: ${r.detail}`);
    }
  }
  const byName = new Map(seen.map((s) => [path.basename(s.file), s]));
  const firstGiven = seen.map((s) => path.basename(s.file)).sort()[0] ?? '';
  const described = [...doc.files.map((f) => ({ ...f, current: false })), ...(doc.position ? [{ name: doc.position.file, bytes: doc.position.bytes, sha256: doc.position.sha256, firstSeq: doc.position.firstSeq, lastSeq: doc.position.lastSeq, current: true }] : [])];
  let cut = false;
  for (const r of described) {
    const s = byName.get(r.name);
    if (!s) {
      if (r.name > firstGiven) {
        cut = true;
        verifier.report('truncated', '', 0, where, `trail file ${r.name} (stream messages ${r.firstSeq}..${r.lastSeq}) is missing`);
      } else verifier.notes.push(`${where}: earlier trail file ${r.name} (stream messages ${r.firstSeq}..${r.lastSeq}) was not given`);
      continue;
    }
    if (s.bytes < r.bytes) {
      cut = true;
      const from = Math.max(s.lastSeq + 1, r.firstSeq);
      verifier.report('truncated', '', 0, s.file, `holds ${s.bytes} of the ${r.bytes} bytes the keeper wrote: stream messages ${from}..${r.lastSeq} were cut off its end`);
      continue;
    }
    if (hashPrefix(s.file, r.bytes).digest !== r.sha256) {
      verifier.report('receipts', '', 0, s.file, `its first ${r.bytes} bytes differ from what the keeper wrote (SHA-256 mismatch): the file was changed`);
      continue;
    }
    if (s.bytes > r.bytes) {
      if (r.current) verifier.notes.push(`${s.file}: ${s.bytes - r.bytes} bytes after the keeper's last receipt (a running keeper, or one that crashed before its receipt)`);
      else verifier.report('receipts', '', 0, s.file, `${s.bytes - r.bytes} bytes were added after the keeper closed it`);
    }
  }
  if (!cut && verifier.lastStreamSeq < doc.streamSeq) {
    verifier.report('truncated', '', 0, where, `the keeper kept stream messages up to ${doc.streamSeq}; these files end at ${verifier.lastStreamSeq || 'none'}: ${verifier.lastStreamSeq + 1}..${doc.streamSeq} are missing`);
  }
}

/** A head claimed elsewhere must be reached by the trail: otherwise its end was cut. */
function compareHead(verifier: ChainVerifier, claim: HeadClaim, keyring: Keyring | undefined, stream: string | undefined): void {
  const c = classifyRecord(claim.checkpoint);
  if (c.type !== 'checkpoint') {
    verifier.report('receipts', '', 0, claim.source, `holds something that is not a checkpoint: ${c.type === 'invalid' ? c.reason : c.schema}`);
    return;
  }
  const cp = c.checkpoint;
  const sig = checkpointSignature(keyring, cp, c.record);
  if (sig.state !== 'valid' && sig.state !== 'unchecked') {
    verifier.report('receipts', cp.chain, cp.seq, claim.source, `its checkpoint of chain ${cp.chain} at seq ${cp.seq} ${sig.detail}; not used`);
    return;
  }
  const at = claim.streamSeq !== undefined ? ` (stream seq ${claim.streamSeq})` : '';
  const range = (from: number, to: number) => (from === to ? `record ${from} is` : `records ${from}..${to} are`);
  const head = verifier.head(cp.chain);
  if (!head) {
    // Another stream's chain (a KV bucket shared by several deployments) says nothing about these files.
    if (claim.stream !== undefined && stream !== undefined && claim.stream !== stream) return;
    if (claim.streamSeq === undefined || claim.streamSeq >= verifier.firstStreamSeq) {
      verifier.report('truncated', cp.chain, cp.seq, claim.source, `chain ${cp.chain}: a checkpoint at seq ${cp.seq}${at} was seen, but these files hold none of the chain`);
    } else verifier.notes.push(`${claim.source}: chain ${cp.chain} (checkpoint at stream seq ${claim.streamSeq}) lies before these files`);
    return;
  }
  if (head.seq < cp.seq) {
    verifier.report('truncated', cp.chain, cp.seq, claim.source, `chain ${cp.chain}: ${range(head.seq + 1, cp.seq)} missing: a checkpoint at seq ${cp.seq}${at} was seen`);
  } else if (cp.final && !head.closed) {
    verifier.report('truncated', cp.chain, cp.seq, claim.source, `chain ${cp.chain}: its final checkpoint at seq ${cp.seq}${at} was seen, but these files do not hold it`);
  }
}
