import { eventHash, GENESIS_HASH } from '../events/chain.js';
import { EVENT_SCHEMA } from '../events/event.js';
import type { Keyring } from '../keys/keyring.js';
import { checkpointSignature } from './checkpoint-signature.js';
import { VERIFIER_LIMITS, type ChainSummary, type Finding, type FindingKind, type SignatureState, type VerifierOptions } from './findings.js';
import { classifyRecord, explainedLoss, subjectProblem, EVENTS_LOST_SCHEMA, PUBLISH_REFUSED_SCHEMA, type Classified, type ParsedCheckpoint } from './records.js';
import { addRange, subtractRanges, type Range } from './ranges.js';

export { checkpointSignature } from './checkpoint-signature.js';
export { VERIFIER_LIMITS, type ChainSummary, type Finding, type FindingKind, type SignatureState, type VerifierOptions } from './findings.js';

interface PendingGap {
  from: number;
  to: number;
  where: string;
  at: number;
  order: number;
}

interface ChainState {
  seq: number;
  hash: string;
  /** First seq of the current run of linked events (a signature at seq b covers runStart..b). */
  runStart: number;
  closed: boolean;
  finalSeq: number;
  seen: Range[];
  signed: Range[];
  partialHistory: boolean;
  lastSigned: { seq: number; key: string; where: string } | undefined;
  signature: SignatureState;
  reported: Set<string>;
  /** When (ms) the first event after the signed part arrived; undefined while everything is signed. */
  unsignedSince: number | undefined;
  recent: Map<number, string>;
  pendingGaps: PendingGap[];
  /** Seq ranges a publish-refused or events-lost record explains (never reported as gaps). */
  explained: Range[];
}

/** Explained ranges kept per chain (the oldest forgotten beyond). */
const EXPLAINED_PER_CHAIN = VERIFIER_LIMITS.pendingGapsPerChain * 16;

const SIGNATURE_RANK: Record<SignatureState, number> = { none: 0, unchecked: 1, unsigned: 2, 'unknown-key': 3, 'key-not-allowed': 4, 'bad-signature': 5, valid: 6 };

/**
 * Verifies hash chains record by record, with bounded memory. Each chained record's hash must
 * match its content, its `prev` the previous record's hash, and its `seq` must follow without gaps.
 * Checkpoints claim a chain reached seq N with hash H; with a keyring their Ed25519 signature must
 * verify under a key allowed for the chain's instance, and a valid one marks the unbroken run of
 * records ending at N as signed. Stream metadata (sequence, subject), when given, is checked too:
 * stream sequences must increase without gaps, and each record must sit on its own subject.
 */
export class ChainVerifier {
  private readonly chains = new Map<string, ChainState>();
  readonly findings: Finding[] = [];
  findingCount = 0;
  events = 0;
  checkpoints = 0;
  evictedChains = 0;
  lastStreamSeq = 0;
  firstStreamSeq = 0;
  private order = 0;
  private readonly orders = new WeakMap<Finding, number>();
  private readonly partial: boolean;
  private readonly anchorUnknownChains: boolean;
  private readonly keyring: Keyring | undefined;
  private readonly maxChains: number;
  private readonly recentPerChain: number;
  private readonly keepFindings: number;
  private readonly onFinding: ((f: Finding) => void) | undefined;
  /** Chains whose first record seen had seq > 1 (their start lies before this view). */
  readonly anchored: { chain: string; seq: number; where: string }[] = [];
  readonly notes: string[] = [];
  /** Whether the last checkpoint accepted matched its chain (and, with a keyring, had a valid signature). */
  lastCheckpointTrusted = false;

  constructor(options: VerifierOptions = {}) {
    this.partial = options.partial ?? false;
    this.anchorUnknownChains = options.anchorUnknownChains ?? false;
    this.keyring = options.keyring;
    this.maxChains = options.maxChains ?? VERIFIER_LIMITS.maxChains;
    this.recentPerChain = options.recentPerChain ?? VERIFIER_LIMITS.recentPerChain;
    this.keepFindings = options.keepFindings ?? VERIFIER_LIMITS.keepFindings;
    this.onFinding = options.onFinding;
  }

  get checksSignatures(): boolean {
    return this.keyring !== undefined;
  }

  /** Feeds one stored record (already JSON-parsed), with its stream metadata when known. Returns the findings made now. */
  accept(data: unknown, where: string, meta: { streamSeq?: number; subject?: string } = {}): Finding[] {
    return this.acceptClassified(classifyRecord(data), where, meta);
  }

  acceptClassified(c: Classified, where: string, meta: { streamSeq?: number; subject?: string } = {}): Finding[] {
    const made: Finding[] = [];
    this.collector = (f) => made.push(f);
    this.order++;
    try {
      if (meta.streamSeq !== undefined) this.streamPosition(meta.streamSeq, where);
      if (c.type === 'invalid') {
        this.report('malformed', '', 0, where, c.reason);
        return made;
      }
      if (c.type === 'checkpoint') this.acceptCheckpoint(c.checkpoint, c.record, where);
      else this.acceptChained(c, where);
      // The subject is derived from the record: an altered record is reported as such, not also as misfiled.
      if (meta.subject !== undefined && !made.some((f) => f.kind === 'altered')) {
        const problem = subjectProblem(meta.subject, c);
        const [chain, seq] = c.type === 'checkpoint' ? [c.checkpoint.chain, c.checkpoint.seq] : [c.link.id, c.link.seq];
        if (problem) this.report('misfiled', chain, seq, where, problem);
      }
      return made;
    } finally {
      this.collector = undefined;
    }
  }

  /** A stream message the keeper refused to keep (its placeholder line in the trail). */
  acceptRejected(streamSeq: number, subject: string, reason: string, where: string): Finding[] {
    const made: Finding[] = [];
    this.collector = (f) => made.push(f);
    this.order++;
    try {
      this.streamPosition(streamSeq, where);
      this.report('rejected', '', 0, where, `stream message ${streamSeq} on "${subject.slice(0, 200)}" was not kept: ${reason}`);
    } finally {
      this.collector = undefined;
    }
    return made;
  }

  private collector: ((f: Finding) => void) | undefined;

  report(kind: FindingKind, chain: string, seq: number, where: string, message: string, order = this.order): void {
    const f: Finding = { kind, chain, seq, where, message };
    this.findingCount++;
    if (this.findings.length < this.keepFindings) {
      this.findings.push(f);
      this.orders.set(f, order);
    }
    this.collector?.(f);
    this.onFinding?.(f);
  }

  private note(text: string): void {
    if (this.notes.length < VERIFIER_LIMITS.notes) this.notes.push(text);
  }

  private streamPosition(streamSeq: number, where: string): void {
    if (this.lastStreamSeq === 0) {
      this.firstStreamSeq = streamSeq;
    } else if (streamSeq <= this.lastStreamSeq) {
      this.report('stream-order', '', 0, where, `stream sequence ${streamSeq} does not follow ${this.lastStreamSeq}: lines were reordered, repeated or renumbered`);
      return;
    } else if (streamSeq > this.lastStreamSeq + 1 && !this.partial) {
      const from = this.lastStreamSeq + 1;
      const what = from === streamSeq - 1 ? `stream message ${from} is` : `stream messages ${from}..${streamSeq - 1} are`;
      this.report('stream-gap', '', 0, where, `${what} missing before stream sequence ${streamSeq}`);
    }
    this.lastStreamSeq = streamSeq;
  }

  /** The state of a chain, moved to the most-recent end; forgets the least recently active chain beyond maxChains. */
  private state(chain: string, create: boolean): ChainState | undefined {
    let s = this.chains.get(chain);
    if (s) {
      this.chains.delete(chain);
      this.chains.set(chain, s);
      return s;
    }
    if (!create) return undefined;
    s = {
      seq: 0, hash: GENESIS_HASH, runStart: 1, closed: false, finalSeq: 0, seen: [], signed: [], partialHistory: false, lastSigned: undefined,
      signature: 'none', reported: new Set(), unsignedSince: undefined, recent: new Map(), pendingGaps: [], explained: [],
    };
    this.chains.set(chain, s);
    if (this.chains.size > this.maxChains) {
      const [oldest, old] = this.chains.entries().next().value as [string, ChainState];
      this.flushGaps(oldest, old, Infinity);
      this.chains.delete(oldest);
      this.evictedChains++;
      this.note(`chain ${oldest} was forgotten after seq ${old.seq} (more than ${this.maxChains} chains at once); its later records are anchored anew`);
    }
    return s;
  }

  private remember(s: ChainState, seq: number, hash: string): void {
    s.recent.set(seq, hash);
    if (s.recent.size > this.recentPerChain) s.recent.delete(s.recent.keys().next().value as number);
  }

  private hashAt(s: ChainState, seq: number): string | undefined {
    return seq === s.seq ? s.hash : s.recent.get(seq);
  }

  private acceptChained(c: Extract<Classified, { type: 'chained' }>, where: string): void {
    this.events++;
    const { id, seq, prev, hash } = c.link;
    if (eventHash(c.record) !== hash) {
      const what = c.schema === EVENT_SCHEMA ? `event ${String(c.record.id)}` : `${c.schema.slice(0, 100)} record`;
      return this.report('altered', id, seq, where, `${what} (seq ${seq}) does not match its hash: its content was altered`);
    }
    if (!c.known) this.report('unknown-schema', id, seq, where, `record seq ${seq} of chain ${id} has the unknown schema "${c.schema.slice(0, 100)}" (its hash and link were checked)`);
    const known = this.chains.has(id);
    const s = this.state(id, true)!;
    if (!known && seq > 1 && (this.anchorUnknownChains || this.partial)) {
      if (this.anchorUnknownChains) this.anchored.push({ chain: id, seq, where });
      s.seq = seq - 1;
      s.hash = prev;
      s.runStart = seq;
    }
    if (s.closed && seq > s.finalSeq) this.report('after-final', id, seq, where, `record seq ${seq} comes after the final checkpoint of chain ${id} (seq ${s.finalSeq})`);
    if (seq <= s.seq) {
      const seen = this.hashAt(s, seq);
      if (seen === hash) this.report('duplicate', id, seq, where, `record seq ${seq} of chain ${id} appears again`);
      else if (seen !== undefined) this.report('conflict', id, seq, where, `a different record already holds seq ${seq} of chain ${id}`);
      else this.report('conflict', id, seq, where, `record seq ${seq} arrives after seq ${s.seq}: out of order (or a late copy of a record no longer remembered)`);
      return;
    }
    if (seq > s.seq + 1) {
      if (!this.partial) this.addPendingGap(id, s, { from: s.seq + 1, to: seq - 1, where, at: Date.now(), order: this.order });
      s.runStart = seq;
    } else if (prev !== s.hash) {
      this.report('broken-link', id, seq, where, `record seq ${seq} does not link to the record before it (prev ${prev.slice(0, 12)}…, expected ${s.hash.slice(0, 12)}…): a record was altered, removed or reordered`);
      s.runStart = seq;
    }
    s.seq = seq;
    s.hash = hash;
    this.remember(s, seq, hash);
    if (!addRange(s.seen, seq, seq, VERIFIER_LIMITS.rangesPerChain)) s.partialHistory = true;
    if (s.unsignedSince === undefined) s.unsignedSince = Date.now();
    if (c.schema === PUBLISH_REFUSED_SCHEMA || c.schema === EVENTS_LOST_SCHEMA) this.acceptExplanation(id, s, c.record, where);
  }

  private addPendingGap(chain: string, s: ChainState, gap: PendingGap): void {
    s.pendingGaps.push(gap);
    this.resolveGaps(s);
    if (s.pendingGaps.length > VERIFIER_LIMITS.pendingGapsPerChain) this.emitGap(chain, s.pendingGaps.shift()!);
  }

  /**
   * A publish-refused or events-lost record: reported as what it is (REFUSED, LOST), and the seqs it
   * names are not reported as a gap. They may be of another chain (an earlier run's event refused
   * when the spool was replayed): that chain's gap is explained, wherever the record sits.
   */
  private acceptExplanation(chain: string, s: ChainState, record: Record<string, unknown>, where: string): void {
    const loss = explainedLoss(record);
    if (!loss) return;
    if (loss.kind === 'handoff') {
      this.report('lost', chain, 0, where, `${loss.count} decision${loss.count === 1 ? ' was' : 's were'} never recorded${loss.span ? ` (made ${loss.span})` : ''}: not handed to the publisher thread: ${loss.reason}`);
      return;
    }
    const target = loss.chain ?? chain;
    const t = target === chain ? s : this.chains.get(target);
    for (const [from, to] of loss.ranges) {
      const seqs = from === to ? `record seq ${from}` : `records ${from}..${to}`;
      const other = target === chain ? '' : ` (named by a record of chain ${chain})`;
      if (loss.kind === 'refused') this.report('refused', target, from, where, `${seqs} of chain ${target} was refused by NATS${other}: ${loss.reason}`);
      else this.report('lost', target, from, where, `${seqs} of chain ${target} ${from === to ? 'was' : 'were'} lost before the spool (${loss.count} decision${loss.count === 1 ? '' : 's'})${other}: ${loss.reason}`);
      if (!t) continue;
      t.explained.push([from, to]);
      if (t.explained.length > EXPLAINED_PER_CHAIN) t.explained.shift();
    }
    if (t) this.resolveGaps(t);
    else if (target !== chain) this.note(`${where}: a record of chain ${chain} names records of chain ${target}, which these files do not hold`);
  }

  /** Drops the parts of pending gaps that publish-refused and events-lost records explain (they were reported as such). */
  private resolveGaps(s: ChainState): void {
    if (s.explained.length === 0 || s.pendingGaps.length === 0) return;
    const explained = [...s.explained].sort((a, b) => a[0] - b[0]);
    const kept: PendingGap[] = [];
    for (const g of s.pendingGaps) {
      let start = g.from;
      for (const [from, to] of explained) {
        if (to < start || from > g.to) continue;
        if (from > start) kept.push({ ...g, from: start, to: from - 1 });
        start = Math.max(start, to + 1);
      }
      if (start <= g.to) kept.push({ ...g, from: start, to: g.to });
    }
    s.pendingGaps = kept;
  }

  private emitGap(chain: string, g: PendingGap): void {
    const what = g.from === g.to ? `record ${g.from} of chain ${chain} is` : `records ${g.from}..${g.to} of chain ${chain} are`;
    this.report('gap', chain, g.to + 1, g.where, `${what} missing`, g.order);
  }

  private flushGaps(chain: string, s: ChainState, olderThan: number): void {
    const keep: PendingGap[] = [];
    for (const g of s.pendingGaps) (g.at <= olderThan ? this.emitGap(chain, g) : keep.push(g));
    s.pendingGaps = keep;
  }

  private signatureOf(cp: ParsedCheckpoint, record: Record<string, unknown>): { state: SignatureState; detail: string } {
    return checkpointSignature(this.keyring, cp, record);
  }

  private acceptCheckpoint(cp: ParsedCheckpoint, record: Record<string, unknown>, where: string): void {
    this.checkpoints++;
    this.lastCheckpointTrusted = false;
    const { chain, seq, hash } = cp;
    const sig = this.signatureOf(cp, record);
    const known = this.chains.has(chain);
    const s = this.state(chain, true)!;
    if (SIGNATURE_RANK[sig.state] > SIGNATURE_RANK[s.signature]) s.signature = sig.state;
    if (sig.state !== 'valid' && sig.state !== 'unchecked') {
      const kind = sig.state as Exclude<SignatureState, 'valid' | 'unchecked' | 'none'>;
      const once = `${kind}:${cp.sig?.key ?? ''}`;
      // Unsigned and unknown-key checkpoints are reported once per chain (and key); every bad signature is reported.
      if (kind === 'bad-signature' || !s.reported.has(once)) {
        s.reported.add(once);
        this.report(kind, chain, seq, where, `checkpoint of chain ${chain} at seq ${seq} ${sig.detail}`);
      }
    }
    if (!known && this.anchorUnknownChains && !this.partial) {
      // A resumed view can start with the checkpoint of records it already holds: anchor the chain
      // there (the next record must link to this hash) instead of reporting a gap.
      this.anchored.push({ chain, seq, where });
      s.seq = seq;
      s.hash = hash;
      s.runStart = seq + 1;
      this.remember(s, seq, hash);
    }
    if (this.partial) return;
    if (seq > s.seq) {
      this.report('gap', chain, seq, where, `checkpoint says chain ${chain} reached seq ${seq}, but only ${s.seq} of its records were seen`);
      return;
    }
    const stored = this.hashAt(s, seq);
    if (stored !== undefined && stored !== hash) {
      this.report('conflict', chain, seq, where, `checkpoint hash for seq ${seq} differs from the stored record's hash`);
      return;
    }
    if (stored === undefined) {
      this.note(`${where}: checkpoint of chain ${chain} at seq ${seq} is too old to compare (more than ${this.recentPerChain} records back)`);
      return;
    }
    const trusted = sig.state === 'valid' || sig.state === 'unchecked';
    this.lastCheckpointTrusted = trusted;
    if (cp.final && trusted) {
      s.closed = true;
      s.finalSeq = seq;
    }
    if (sig.state !== 'valid') return;
    // The signed hash authenticates every record of the unbroken run that ends at `seq`.
    if (seq >= s.runStart) {
      if (!addRange(s.signed, s.runStart, seq, VERIFIER_LIMITS.rangesPerChain)) s.partialHistory = true;
      if (!s.lastSigned || seq >= s.lastSigned.seq) s.lastSigned = { seq, key: cp.sig!.key, where };
      if (seq === s.seq) s.unsignedSince = undefined;
    }
    if (s.closed) s.recent = new Map([[s.seq, s.hash]]);
  }

  /**
   * Online housekeeping, called periodically: gaps that no publish-refused record explained within
   * `gapGraceMs` are reported; with a keyring, a chain whose newest records stay unsigned longer than
   * `unsignedGraceMs` is reported once (until it is signed again).
   */
  sweep(now: number, gapGraceMs: number, unsignedGraceMs: number): void {
    this.order++;
    for (const [chain, s] of this.chains) {
      if (s.pendingGaps.length > 0) this.flushGaps(chain, s, now - gapGraceMs);
      if (!this.keyring || this.partial || s.unsignedSince === undefined || now - s.unsignedSince < unsignedGraceMs) continue;
      const from = s.lastSigned && s.lastSigned.seq >= s.runStart - 1 ? s.lastSigned.seq + 1 : s.runStart;
      const key = `unsigned-tail:${from}`;
      if (s.reported.has(key)) continue;
      s.reported.add(key);
      this.report('unsigned', chain, s.seq, `chain ${chain}`, `records ${from}..${s.seq} of chain ${chain} are not covered by a valid signature after ${Math.round(unsignedGraceMs / 1000)} s`);
    }
  }

  /** End of input (offline): reports every pending gap and, with a keyring, each chain with no valid signature at all. */
  finish(): void {
    this.order++;
    for (const [chain, s] of this.chains) this.flushGaps(chain, s, Infinity);
    if (this.keyring && !this.partial) {
      for (const [chain, s] of this.chains) {
        if (s.signed.length > 0 || s.seq === 0) continue;
        const already = [...s.reported].some((r) => !r.startsWith('unsigned-tail'));
        this.report('unsigned', chain, s.seq, `chain ${chain}`, `no record of chain ${chain} is covered by a valid signature${already ? '' : ' (it has no checkpoint)'}`);
      }
    }
    this.findings.sort((a, b) => (this.orders.get(a) ?? 0) - (this.orders.get(b) ?? 0));
  }

  /** Chains that never wrote a final checkpoint (the process crashed or is still running). */
  unclosedChains(): { chain: string; seq: number }[] {
    return [...this.chains.entries()].filter(([, s]) => !s.closed).map(([chain, s]) => ({ chain, seq: s.seq }));
  }

  chainSummaries(): ChainSummary[] {
    return [...this.chains.entries()].map(([chain, s]) => ({
      chain,
      events: s.seq,
      closed: s.closed,
      signed: s.signed.map((r) => [r[0], r[1]] as Range),
      unsigned: subtractRanges(s.seen, s.signed),
      lastSigned: s.lastSigned,
      signature: s.signature,
      partialHistory: s.partialHistory,
    }));
  }

  /**
   * Starts a chain at a head kept earlier (a restarted keeper's receipts): its next record must
   * follow and link to it, so a gap or a forged continuation across the restart is still found.
   */
  seed(chain: string, seq: number, hash: string): void {
    if (this.chains.has(chain)) return;
    const s = this.state(chain, true)!;
    s.seq = seq;
    s.hash = hash;
    s.runStart = seq + 1;
    this.remember(s, seq, hash);
  }

  /** The head (seq, hash) of a chain, if tracked. */
  head(chain: string): { seq: number; hash: string; closed: boolean } | undefined {
    const s = this.chains.get(chain);
    return s ? { seq: s.seq, hash: s.hash, closed: s.closed } : undefined;
  }

  /** What the verifier holds, for its memory bound. */
  size(): { chains: number; recent: number; ranges: number; pendingGaps: number; explained: number } {
    let recent = 0;
    let ranges = 0;
    let pendingGaps = 0;
    let explained = 0;
    for (const s of this.chains.values()) {
      recent += s.recent.size;
      ranges += s.seen.length + s.signed.length;
      pendingGaps += s.pendingGaps.length;
      explained += s.explained.length;
    }
    return { chains: this.chains.size, recent, ranges, pendingGaps, explained };
  }
}
