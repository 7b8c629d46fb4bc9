import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { DecisionEvent, UnchainedEvent } from './event.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedEvent {
  readonly event: DecisionEvent;
  /** The exact bytes published: canonical JSON of the event including its hash. */
  readonly payload: string;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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

  get lastSeq(): number {
    return this.seq;
  }

  get lastHash(): string {
    return this.prev;
  }

  /**
   * Appends an event. The body's keys are already sorted (buildUnchainedEvent), and "chain" sorts
   * between "caller" and "decision", so JSON.stringify of the assembled object is canonical.
   */
  append(body: UnchainedEvent): ChainedEvent {
    const seq = ++this.seq;
    const unsigned = insertChain(body, { id: this.id, prev: this.prev, seq });
    const hash = sha256Hex(JSON.stringify(unsigned));
    const event = insertChain(body, { hash, id: this.id, prev: this.prev, seq }) as unknown as DecisionEvent;
    this.prev = hash;
    return { event, payload: JSON.stringify(event) };
  }
}

function insertChain(body: UnchainedEvent, chain: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let placed = false;
  for (const key of Object.keys(body)) {
    if (!placed && key > 'chain') {
      out.chain = chain;
      placed = true;
    }
    out[key] = (body as unknown as Record<string, unknown>)[key];
  }
  if (!placed) out.chain = chain;
  return out;
}
