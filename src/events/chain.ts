import { hash as oneShotHash, randomUUID } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { ChainLink, DecisionEvent, UnchainedEvent } from './event.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedEvent {
  readonly event: DecisionEvent;
  /** The event's place in the chain (what `event.chain` holds), without building the event. */
  readonly link: ChainLink;
  /** The exact bytes published: canonical JSON of the event including its hash. */
  readonly payload: string;
}

/** The publisher needs only the link; the event object is assembled when someone asks for it. */
class AppendedEvent implements ChainedEvent {
  private built: DecisionEvent | undefined;
  constructor(
    private readonly body: UnchainedEvent,
    readonly link: ChainLink,
    readonly payload: string,
  ) {}

  get event(): DecisionEvent {
    return (this.built ??= { ...this.body, chain: this.link } as unknown as DecisionEvent);
  }
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
   * Appends an event. The canonical JSON (RFC 8785: keys sorted) of the fixed event schema is
   * written out field by field — the hot path of the decision stream, so no intermediate objects:
   * `head + chain + tail`, where the hashed form (without chain.hash) and the published form (with
   * it) differ only in the chain object. Only caller-supplied attribute maps go through the generic
   * canonicaliser (JS orders integer-like keys numerically; RFC 8785 sorts them as strings).
   */
  append(body: UnchainedEvent): ChainedEvent {
    const seq = ++this.seq;
    const prev = this.prev;
    const b = body as UnchainedEvent & { truncated?: string };
    const q = JSON.stringify;
    const head =
      `{"action":${q(b.action)},` +
      (b.attributes !== undefined ? `"attributes":${canonicalJson(b.attributes)},` : '') +
      `"caller":{"id":${q(b.caller.id)},"kind":${q(b.caller.kind)}},`;
    const tail =
      (b.cut !== undefined ? `,"cut":${canonicalJson(b.cut)}` : '') +
      `,"decision":${q(b.decision)}` +
      (b.delivered === false ? ',"delivered":false' : '') +
      (b.errors !== undefined ? `,"errors":${canonicalJson(b.errors)}` : '') +
      `,"evaluationUs":${q(b.evaluationUs)},"id":${q(b.id)},"instance":${q(b.instance)}` +
      (b.limits !== undefined ? `,"limits":${canonicalJson(b.limits)}` : '') +
      `,"policy":${q(b.policy)}` +
      `,"reason":${q(b.reason)},"requestId":${q(b.requestId)},"resource":{"id":${q(b.resource.id)},"type":${q(b.resource.type)}}` +
      `,"revision":${q(b.revision)},"rule":${q(b.rule)},"schema":${q(b.schema)},"source":${q(b.source)}` +
      `,"subject":{"id":${q(b.subject.id)},"roles":${q(b.subject.roles)},"type":${q(b.subject.type)}},"time":${q(b.time)}` +
      (b.traceId !== undefined ? `,"traceId":${q(b.traceId)}` : '') +
      (b.truncated !== undefined ? `,"truncated":${q(b.truncated)}` : '') +
      '}';
    const link = `"id":${q(this.id)},"prev":"${prev}","seq":${seq}}`;
    const hash = sha256Hex(`${head}"chain":{${link}${tail}`);
    const payload = `${head}"chain":{"hash":"${hash}",${link}${tail}`;
    this.prev = hash;
    return new AppendedEvent(body, { hash, id: this.id, prev, seq }, payload);
  }

  /**
   * Appends a chained record of another kind (`verdict.publish-refused.v1`, …): the same link and
   * the same hash rule as events — sha256 of the RFC 8785 canonical JSON without `chain.hash` — so
   * a verifier checks every record that carries a link alike. Rare: the generic canonicaliser will do.
   */
  appendRecord(record: { readonly schema: string } & Record<string, unknown>): { link: ChainLink; payload: string } {
    const seq = ++this.seq;
    const prev = this.prev;
    const hash = sha256Hex(canonicalJson({ ...record, chain: { id: this.id, prev, seq } }));
    const link: ChainLink = { hash, id: this.id, prev, seq };
    this.prev = hash;
    return { link, payload: canonicalJson({ ...record, chain: link }) };
  }
}
