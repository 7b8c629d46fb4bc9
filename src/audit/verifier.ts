import { eventHash, GENESIS_HASH } from '../events/chain.js';
import { CHECKPOINT_SCHEMA, EVENT_SCHEMA } from '../events/event.js';

export type FindingKind = 'gap' | 'duplicate' | 'conflict' | 'altered' | 'broken-link' | 'malformed' | 'unclosed';

/** Something wrong with the trail; `where` locates it (file:line or stream sequence). */
export interface Finding {
  readonly kind: FindingKind;
  readonly chain: string;
  readonly seq: number;
  readonly where: string;
  readonly message: string;
}

interface ChainState {
  seq: number;
  hash: string;
  closed: boolean;
  /** Recent seq → hash, to tell a harmless duplicate from a conflicting one. */
  readonly recent: Map<number, string>;
}

const RECENT = 100_000;

/**
 * Verifies hash chains event by event: each event's hash must match its content, its `prev` the
 * previous event's hash, and its `seq` must follow without gaps. Checkpoints claim a chain reached
 * seq N with hash H; a missing tail before a checkpoint is a gap. With `partial` (a filtered
 * consumer that sees only some subjects) gaps are expected and not reported, but every event's own
 * hash is still checked.
 */
export class ChainVerifier {
  private readonly chains = new Map<string, ChainState>();
  readonly findings: Finding[] = [];
  events = 0;
  checkpoints = 0;

  /** Chains whose first event seen had seq > 1 (their start lies before this trail). */
  readonly anchored: { chain: string; seq: number; where: string }[] = [];

  /**
   * @param partial a filtered view: gaps are expected and not reported.
   * @param anchorUnknownChains accept a chain's first event even if its seq is not 1 (a consumer
   *   resuming, or a stream whose oldest events aged out); strict verification reports it as a gap.
   */
  constructor(
    private readonly partial = false,
    private readonly anchorUnknownChains = false,
  ) {}

  /** Feeds one stored message (already JSON-parsed). Returns the findings it produced. */
  accept(data: unknown, where: string): Finding[] {
    const before = this.findings.length;
    const d = data as { schema?: unknown };
    if (d && d.schema === EVENT_SCHEMA) this.acceptEvent(data as Record<string, unknown>, where);
    else if (d && d.schema === CHECKPOINT_SCHEMA) this.acceptCheckpoint(data as Record<string, unknown>, where);
    else this.report('malformed', '', 0, where, 'not a Verdict decision event or checkpoint');
    return this.findings.slice(before);
  }

  private report(kind: FindingKind, chain: string, seq: number, where: string, message: string): void {
    this.findings.push({ kind, chain, seq, where, message });
  }

  private state(chain: string): ChainState {
    let s = this.chains.get(chain);
    if (!s) {
      s = { seq: 0, hash: GENESIS_HASH, closed: false, recent: new Map() };
      this.chains.set(chain, s);
    }
    return s;
  }

  private acceptEvent(e: Record<string, unknown>, where: string): void {
    this.events++;
    const link = e.chain as { id?: unknown; seq?: unknown; prev?: unknown; hash?: unknown } | undefined;
    if (!link || typeof link.id !== 'string' || typeof link.seq !== 'number' || typeof link.hash !== 'string' || typeof link.prev !== 'string') {
      return this.report('malformed', '', 0, where, 'event without a valid chain section');
    }
    const { id, seq, prev, hash } = link as { id: string; seq: number; prev: string; hash: string };
    const actual = eventHash(e);
    if (actual !== hash) {
      return this.report('altered', id, seq, where, `event ${String(e.id)} (seq ${seq}) does not match its hash: its content was altered`);
    }
    const known = this.chains.has(id);
    const s = this.state(id);
    if (!known && seq > 1 && this.anchorUnknownChains) {
      this.anchored.push({ chain: id, seq, where });
      s.seq = seq - 1;
      s.hash = prev;
    }
    if (seq <= s.seq) {
      const seen = s.recent.get(seq);
      if (seen === hash) this.report('duplicate', id, seq, where, `event seq ${seq} appears again`);
      else if (seen !== undefined) this.report('conflict', id, seq, where, `a different event already holds seq ${seq}`);
      else this.report('conflict', id, seq, where, `event seq ${seq} arrives after seq ${s.seq}: out of order (or a late copy of an event no longer remembered)`);
      return;
    }
    if (seq > s.seq + 1) {
      if (!this.partial) this.report('gap', id, seq, where, `events ${s.seq + 1}..${seq - 1} of chain ${id} are missing before seq ${seq}`);
    } else if (prev !== s.hash) {
      this.report('broken-link', id, seq, where, `event seq ${seq} does not link to the event before it (prev ${prev.slice(0, 12)}…, expected ${s.hash.slice(0, 12)}…): an event was altered, removed or reordered`);
    }
    s.seq = seq;
    s.hash = hash;
    s.recent.set(seq, hash);
    if (s.recent.size > RECENT) s.recent.delete(s.recent.keys().next().value as number);
  }

  private acceptCheckpoint(c: Record<string, unknown>, where: string): void {
    this.checkpoints++;
    const chain = String(c.chain);
    const seq = Number(c.seq);
    const known = this.chains.has(chain);
    const s = this.state(chain);
    if (!known && this.anchorUnknownChains && !this.partial && seq > 0 && typeof c.hash === 'string') {
      // A resumed view can start with the checkpoint of events it already holds: anchor the chain
      // there (the next event must link to this hash) instead of reporting a gap.
      this.anchored.push({ chain, seq, where });
      s.seq = seq;
      s.hash = c.hash;
      s.recent.set(seq, c.hash);
    }
    if (c.final === true) s.closed = true;
    if (this.partial) return;
    if (seq > s.seq) {
      this.report('gap', chain, seq, where, `checkpoint says chain ${chain} reached seq ${seq}, but only ${s.seq} events were seen`);
      return;
    }
    const stored = s.recent.get(seq);
    if (stored !== undefined && stored !== c.hash) {
      this.report('conflict', chain, seq, where, `checkpoint hash for seq ${seq} differs from the stored event's hash`);
    }
  }

  /** Chains that never wrote a final checkpoint (the process crashed or is still running). */
  unclosedChains(): { chain: string; seq: number }[] {
    return [...this.chains.entries()].filter(([, s]) => !s.closed).map(([chain, s]) => ({ chain, seq: s.seq }));
  }

  chainSummaries(): { chain: string; events: number; closed: boolean }[] {
    return [...this.chains.entries()].map(([chain, s]) => ({ chain, events: s.seq, closed: s.closed }));
  }
}
