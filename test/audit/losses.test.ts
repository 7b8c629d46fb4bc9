import { expect } from 'chai';
import { ChainVerifier, type FindingKind } from '../../src/audit/verifier.js';
import { HashChain } from '../../src/events/chain.js';
import { eventsLost, publishRefused } from '../../src/events/records.js';
import { chainOfInstance } from './support.js';

const kinds = (v: ChainVerifier): FindingKind[] => v.findings.map((f) => f.kind);
const json = (payload: string) => JSON.parse(payload) as Record<string, unknown>;
const NOW = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));

/**
 * `verify` (and the keeper) report Verdict's own records of what could not be kept as what they
 * are, never as an unexplained gap: REFUSED for a verdict.publish-refused.v1 record (also when it
 * names an earlier run's chain), LOST for a verdict.events-lost.v1 record (spool and hand-off).
 */
describe('audit: records of refused and lost events explain their gaps', () => {
  it('events-lost (spool): the missing seqs are LOST with the reason, not a GAP; the record itself is a known schema', () => {
    const { chain, events } = chainOfInstance('pdp-1', 4);
    // Seqs 5..7 were lost (ENOSPC); the record explaining them takes seq 8.
    for (let i = 0; i < 3; i++) chain.append(JSON.parse(events[0]!.payload) as never);
    const lost = chain.appendRecord(eventsLost('pdp-1', NOW, { chain: chain.id, count: 3, fromSeq: 5, toSeq: 7, reason: 'ENOSPC: no space left on device, write', stage: 'spool' }));
    const v = new ChainVerifier();
    [...events.map((e) => e.payload), lost.payload].forEach((p, i) => v.accept(json(p), `line ${i + 1}`));
    v.finish();
    expect(kinds(v)).to.deep.equal(['lost']);
    expect(v.findings[0]!.message).to.equal(`records 5..7 of chain ${chain.id} were lost before the spool (3 decisions): ENOSPC: no space left on device, write`);
    expect(v.findings[0]).to.include({ chain: chain.id, seq: 5, where: 'line 5' });
  });

  it('without the record the same seqs are an unexplained GAP', () => {
    const { chain, events } = chainOfInstance('pdp-1', 4);
    for (let i = 0; i < 3; i++) chain.append(JSON.parse(events[0]!.payload) as never);
    const next = chain.append(JSON.parse(events[1]!.payload) as never);
    const v = new ChainVerifier();
    [...events.map((e) => e.payload), next.payload].forEach((p, i) => v.accept(json(p), `line ${i + 1}`));
    v.finish();
    expect(kinds(v)).to.deep.equal(['gap']);
  });

  it('events-lost (hand-off): decisions that never got a seq are reported as LOST with their count and time span', () => {
    const { chain, events } = chainOfInstance('pdp-1', 2);
    const lost = chain.appendRecord(eventsLost('pdp-1', NOW, { count: 120, from: '2026-01-02T03:04:01.000Z', to: '2026-01-02T03:04:04.000Z', reason: 'the hand-off to the publisher thread held 50000 events', stage: 'handoff' }));
    const v = new ChainVerifier();
    [...events.map((e) => e.payload), lost.payload].forEach((p, i) => v.accept(json(p), `line ${i + 1}`));
    v.finish();
    expect(kinds(v)).to.deep.equal(['lost']);
    expect(v.findings[0]!.message).to.equal('120 decisions were never recorded (made 2026-01-02T03:04:01.000Z to 2026-01-02T03:04:04.000Z): not handed to the publisher thread: the hand-off to the publisher thread held 50000 events');
  });

  it('a refusal of an earlier run\'s record (cross-chain): REFUSED on that chain, its gap explained, nothing misattributed to the new chain', () => {
    const old = chainOfInstance('pdp-1', 6, 'boot-1');
    const fresh = new HashChain('pdp-1', 'boot-2');
    const refusal = fresh.appendRecord(publishRefused('pdp-1', NOW, {
      bytes: 2_000_000, chain: old.chain.id, seq: 5, hash: old.events[4]!.link.hash, id: 'x', reason: 'MAX_PAYLOAD_EXCEEDED: message too large', subject: 'verdict.decisions.document.allow',
    }));
    const second = fresh.append(JSON.parse(old.events[0]!.payload) as never);
    const v = new ChainVerifier();
    // The old chain without its seq 5 (refused on replay), then the new chain's refusal record.
    const lines = [...[0, 1, 2, 3, 5].map((i) => old.events[i]!.payload), refusal.payload, second.payload];
    lines.forEach((p, i) => v.accept(json(p), `line ${i + 1}`));
    v.finish();
    expect(kinds(v)).to.deep.equal(['refused']);
    expect(v.findings[0]).to.include({ chain: old.chain.id, seq: 5, where: 'line 6' });
    expect(v.findings[0]!.message).to.equal(`record seq 5 of chain ${old.chain.id} was refused by NATS (named by a record of chain ${fresh.id}): MAX_PAYLOAD_EXCEEDED: message too large`);
  });

  it('online: a LOST record that arrives after its gap was noticed still explains it within the grace time', () => {
    const { chain, events } = chainOfInstance('pdp-1', 3);
    chain.append(JSON.parse(events[0]!.payload) as never);
    const after = chain.append(JSON.parse(events[0]!.payload) as never);
    const lost = chain.appendRecord(eventsLost('pdp-1', NOW, { chain: chain.id, count: 1, fromSeq: 4, toSeq: 4, reason: 'SPOOL_FULL', stage: 'spool' }));
    const v = new ChainVerifier({ anchorUnknownChains: true });
    [...events.map((e) => e.payload), after.payload].forEach((p, i) => v.accept(json(p), `stream seq ${i + 1}`));
    v.sweep(Date.now(), 5000, 30_000);
    expect(kinds(v), 'not yet: a record may still explain it').to.deep.equal([]);
    v.accept(json(lost.payload), 'stream seq 5');
    v.sweep(Date.now() + 10_000, 5000, 30_000);
    expect(kinds(v)).to.deep.equal(['lost']);
  });
});
