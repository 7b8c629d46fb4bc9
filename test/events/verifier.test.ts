import { expect } from 'chai';
import { eventHash } from '../../src/events/chain.js';
import { CHECKPOINT_SCHEMA } from '../../src/events/event.js';
import { ChainVerifier, type FindingKind } from '../../src/audit/verifier.js';
import type { ChainedEvent } from '../../src/events/chain.js';
import { chainOf, parsed } from './fixtures.js';

function checkpoint(c: ChainedEvent, final = false, hash = c.event.chain.hash): Record<string, unknown> {
  return { chain: c.event.chain.id, final, hash, instance: 'unit', schema: CHECKPOINT_SCHEMA, seq: c.event.chain.seq, time: '2025-01-02T03:04:05.000Z' };
}

function run(items: unknown[], verifier = new ChainVerifier()): ChainVerifier {
  items.forEach((d, i) => verifier.accept(d, `line ${i + 1}`));
  verifier.finish();
  return verifier;
}

const kinds = (v: ChainVerifier): FindingKind[] => v.findings.map((f) => f.kind);

describe('audit: ChainVerifier', () => {
  const { events } = chainOf(6);
  const data = events.map(parsed);

  it('accepts a complete chain with checkpoints and knows it was closed', () => {
    const v = run([data[0], data[1], data[2], checkpoint(events[2]!), data[3], data[4], data[5], checkpoint(events[5]!, true)]);
    expect(v.findings).to.deep.equal([]);
    expect(v.events).to.equal(6);
    expect(v.checkpoints).to.equal(2);
    expect(v.chainSummaries().map(({ chain, events, closed, signature }) => ({ chain, events, closed, signature }))).to.deep.equal([{ chain: 'unit/boot-1', events: 6, closed: true, signature: 'unchecked' }]);
    expect(v.unclosedChains()).to.deep.equal([]);
  });

  it('keeps chains of several instances apart', () => {
    const other = chainOf(3, 'boot-2').events.map(parsed);
    const v = run([data[0], other[0], data[1], other[1], other[2], data[2]]);
    expect(v.findings).to.deep.equal([]);
    expect(v.unclosedChains()).to.have.deep.members([{ chain: 'unit/boot-1', seq: 3 }, { chain: 'unit/boot-2', seq: 3 }]);
  });

  it('reports a gap where events are missing, at the event after them', () => {
    const v = run([data[0], data[1], data[4], data[5]]);
    expect(kinds(v)).to.deep.equal(['gap']);
    expect(v.findings[0]).to.include({ chain: 'unit/boot-1', seq: 5, where: 'line 3' });
    expect(v.findings[0]!.message).to.include('3..4');
  });

  it('reports a missing first event (strict), and anchors instead when asked', () => {
    expect(kinds(run([data[2], data[3]]))).to.deep.equal(['gap']);
    const anchored = run([data[2], data[3]], new ChainVerifier({ anchorUnknownChains: true }));
    expect(anchored.findings).to.deep.equal([]);
    expect(anchored.anchored).to.deep.equal([{ chain: 'unit/boot-1', seq: 3, where: 'line 1' }]);
    // Anchoring checks the link from the anchored event onwards.
    const broken = parsed(events[4]!);
    expect(kinds(run([data[2], broken], new ChainVerifier({ anchorUnknownChains: true })))).to.deep.equal(['gap']);
  });

  it('anchoring: a resumed view that starts with a checkpoint anchors the chain there, without a false gap', () => {
    const v = run([checkpoint(events[2]!), data[3], data[4], checkpoint(events[4]!)], new ChainVerifier({ anchorUnknownChains: true }));
    expect(v.findings).to.deep.equal([]);
    expect(v.anchored).to.deep.equal([{ chain: 'unit/boot-1', seq: 3, where: 'line 1' }]);
    // The anchor is checked: the next event must link to the checkpoint's hash.
    const forged = parsed(events[3]!);
    forged.chain.prev = 'e'.repeat(64);
    forged.chain.hash = eventHash(forged);
    expect(kinds(run([checkpoint(events[2]!), forged], new ChainVerifier({ anchorUnknownChains: true })))).to.deep.equal(['broken-link']);
    // Strict verification still reports the missing start.
    expect(kinds(run([checkpoint(events[2]!), data[3]]))).to.include('gap');
  });

  it('reports a duplicate (the same event again)', () => {
    const v = run([data[0], data[1], data[1], data[2]]);
    expect(kinds(v)).to.deep.equal(['duplicate']);
    expect(v.findings[0]).to.include({ seq: 2, where: 'line 3' });
  });

  it('reports a conflict: a different, self-consistent event holding a seq already seen', () => {
    const forged = parsed(events[1]!);
    forged.decision = forged.decision === 'ALLOW' ? 'DENY' : 'ALLOW';
    forged.chain.hash = eventHash(forged);
    const v = run([data[0], data[1], forged, data[2]]);
    expect(kinds(v)).to.deep.equal(['conflict']);
    expect(v.findings[0]).to.include({ seq: 2, where: 'line 3' });
  });

  it('reports an altered event whose content no longer matches its hash', () => {
    const altered = parsed(events[2]!);
    altered.reason = 'RULE_DENY';
    const v = run([data[0], data[1], altered, data[3]]);
    expect(kinds(v)[0]).to.equal('altered');
    expect(v.findings[0]).to.include({ seq: 3, where: 'line 3' });
    expect(v.findings[0]!.message).to.include(String(altered.id));
  });

  it('reports a broken link when an event was altered and re-hashed by a forger', () => {
    const forged = parsed(events[2]!);
    forged.decision = 'ALLOW';
    forged.rule = 'forged';
    forged.chain.hash = eventHash(forged);
    const v = run([data[0], data[1], forged, data[3], data[4]]);
    expect(kinds(v)).to.deep.equal(['broken-link']);
    expect(v.findings[0]).to.include({ seq: 4, where: 'line 4' });
  });

  it('reports a broken link for an event whose prev does not point at the event before it', () => {
    const relinked = parsed(events[3]!);
    relinked.chain.prev = events[1]!.event.chain.hash;
    relinked.chain.hash = eventHash(relinked);
    expect(kinds(run([data[0], data[1], data[2], relinked]))).to.deep.equal(['broken-link']);
  });

  it('reports reordered events (a swap) as a gap and then a conflict', () => {
    const v = run([data[0], data[2], data[1], data[3]]);
    expect(kinds(v)).to.deep.equal(['gap', 'conflict']);
    expect(v.findings[1]!.message).to.include('out of order');
  });

  it('reports a checkpoint claiming more events than were seen (a lost tail)', () => {
    const v = run([data[0], data[1], data[2], checkpoint(events[4]!)]);
    expect(kinds(v)).to.deep.equal(['gap']);
    expect(v.findings[0]).to.include({ seq: 5, where: 'line 4' });
    expect(v.findings[0]!.message).to.include('only 3 of its records');
  });

  it('reports a checkpoint whose hash differs from the stored event', () => {
    const v = run([data[0], data[1], checkpoint(events[1]!, false, 'f'.repeat(64))]);
    expect(kinds(v)).to.deep.equal(['conflict']);
  });

  it('reports malformed messages', () => {
    const noChain = parsed(events[0]!);
    delete noChain.chain;
    expect(kinds(run([{ hello: 1 }, undefined, noChain]))).to.deep.equal(['malformed', 'malformed', 'malformed']);
  });

  it('in partial mode (a filtered view) gaps are expected, but alterations are still found', () => {
    const altered = parsed(events[4]!);
    altered.resource.id = 'other';
    const v = run([data[0], data[2], altered, checkpoint(events[5]!)], new ChainVerifier({ partial: true }));
    expect(kinds(v)).to.deep.equal(['altered']);
  });
});
