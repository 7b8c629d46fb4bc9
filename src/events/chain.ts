import { hash as oneShotHash, randomUUID } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { DecisionEvent, UnchainedEvent } from './event.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedEvent {
  readonly event: DecisionEvent;
  /** The exact bytes published: canonical JSON of the event including its hash. */
  readonly payload: string;
}

function sha256Hex(text: string): string {
  return oneShotHash('sha256', text, 'hex');
}

/** The hash of an event: sha256 of the canonical JSON of the event without `chain.hash`. */
export function eventHash(event: DecisionEvent | Record<string, unknown>): string {
  const e = event as { chain?: Record<string, unknown> };
  const { hash: _ignored, ...chain } = e.chain ?? {};
  return sha256Hex(canonicalJson({ ...event, chain }));
}

/**
 * This process's hash chain. Each event carries its sequence number, the previous event's hash
 * and its own, so deleting, altering or reordering any event breaks verification.
 */
export class HashChain {
  readonly id: string;
  private seq = 0;
  private prev = GENESIS_HASH;

  constructor(instance: string, bootId: string = randomUUID()) {
    this.id = `${instance}/${bootId}`;
  }

  /** Takes back the last append (only the publisher does, to rebuild an oversized event). */
  rewind(seq: number, prev: string): void {
    if (seq !== this.seq) throw new Error('can only rewind the last event');
    this.seq = seq - 1;
    this.prev = prev;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get lastHash(): string {
    return this.prev;
  }

  /**
   * Appends an event. The body's keys are already sorted (buildUnchainedEvent) and "chain" sorts
   * between "caller" and "decision", so the canonical JSON is `head + chain + tail`: the body is
   * serialised once, and the hashed form (without chain.hash) and the published form (with it)
   * differ only in the chain object.
   */
  append(body: UnchainedEvent): ChainedEvent {
    const seq = ++this.seq;
    const prev = this.prev;
    const before: Record<string, unknown> = {};
    const after: Record<string, unknown> = {};
    for (const key of Object.keys(body)) ((key < 'chain' ? before : after) as Record<string, unknown>)[key] = (body as unknown as Record<string, unknown>)[key];
    // canonicalJson, not JSON.stringify, for the part holding caller-supplied attribute maps: JS
    // orders integer-like keys ("9" before "10") numerically, RFC 8785 sorts them as strings.
    const headJson = canonicalJson(before);
    const tailJson = JSON.stringify(after);
    const head = headJson.length > 2 ? `${headJson.slice(0, -1)},` : '{';
    const tail = tailJson.length > 2 ? `,${tailJson.slice(1)}` : '}';
    const link = `"id":${JSON.stringify(this.id)},"prev":"${prev}","seq":${seq}}`;
    const hash = sha256Hex(`${head}"chain":{${link}${tail}`);
    const payload = `${head}"chain":{"hash":"${hash}",${link}${tail}`;
    this.prev = hash;
    const event = { ...body, chain: { hash, id: this.id, prev, seq } } as unknown as DecisionEvent;
    return { event, payload };
  }
}
