/**
 * A small, independent check of what the stream holds, for the publishing-side tests: every chained
 * record (events and the publisher's own records) verifies by hash and link, and every seq missing
 * from a chain is explained by a `verdict.publish-refused.v1` or `verdict.events-lost.v1` record.
 * (The audit verifier is the real one; this keeps these tests independent of it.)
 */
import { eventHash, GENESIS_HASH } from '../../src/events/chain.js';
import { EVENT_SCHEMA, EVENTS_LOST_SCHEMA, PUBLISH_REFUSED_SCHEMA } from '../../src/events/event.js';
import { POLICY_SCHEMA } from '../../src/evidence/policy-record.js';

type Data = Record<string, any>;

export interface ChainReport {
  /** Chain id → seqs stored, in stream order. */
  readonly seqs: Map<string, number[]>;
  /** Seqs missing and not explained by any record ("chain#seq"). */
  readonly unexplained: string[];
  /** Problems: a hash that does not verify, a broken link, a seq stored twice. */
  readonly broken: string[];
  readonly refused: Data[];
  readonly lost: Data[];
  readonly events: Data[];
  /** Policy change records (verdict.policy.v1): each chain starts with the set that went live. */
  readonly policies: Data[];
}

export function checkChains(messages: readonly { data: Data }[]): ChainReport {
  const byChain = new Map<string, Data[]>();
  const refused: Data[] = [];
  const lost: Data[] = [];
  const events: Data[] = [];
  const policies: Data[] = [];
  const broken: string[] = [];
  for (const { data } of messages) {
    if (!data.chain || typeof data.chain !== 'object') continue; // checkpoints carry no link
    if (eventHash(data) !== data.chain.hash) broken.push(`${data.chain.id}#${data.chain.seq}: hash does not verify`);
    if (data.schema === PUBLISH_REFUSED_SCHEMA) refused.push(data);
    else if (data.schema === EVENTS_LOST_SCHEMA) lost.push(data);
    else if (data.schema === EVENT_SCHEMA) events.push(data);
    else if (data.schema === POLICY_SCHEMA) policies.push(data);
    else broken.push(`${data.chain.id}#${data.chain.seq}: unknown schema ${data.schema}`);
    const list = byChain.get(data.chain.id) ?? [];
    list.push(data);
    byChain.set(data.chain.id, list);
  }
  const explained = new Set<string>();
  for (const r of refused) explained.add(`${r.refused.chain}#${r.refused.seq}`);
  for (const l of lost) if (l.lost.stage === 'spool') for (let s = l.lost.fromSeq; s <= l.lost.toSeq; s++) explained.add(`${l.lost.chain}#${s}`);
  const seqs = new Map<string, number[]>();
  const unexplained: string[] = [];
  for (const [chain, list] of byChain) {
    seqs.set(chain, list.map((d) => d.chain.seq as number));
    const bySeq = new Map<number, Data>();
    for (const d of list) {
      if (bySeq.has(d.chain.seq)) broken.push(`${chain}#${d.chain.seq}: stored twice`);
      bySeq.set(d.chain.seq, d);
    }
    const max = Math.max(...bySeq.keys());
    for (let s = 1; s <= max; s++) {
      const d = bySeq.get(s);
      if (!d) {
        if (!explained.has(`${chain}#${s}`)) unexplained.push(`${chain}#${s}`);
        continue;
      }
      const before = bySeq.get(s - 1);
      if (s === 1 && d.chain.prev !== GENESIS_HASH) broken.push(`${chain}#1: prev is not the genesis hash`);
      if (before && d.chain.prev !== before.chain.hash) broken.push(`${chain}#${s}: prev does not link to #${s - 1}`);
    }
  }
  return { seqs, unexplained, broken, refused, lost, events, policies };
}
