import { expect } from 'chai';
import { fitFields } from '../../src/events/budget.js';
import { eventHash, HashChain } from '../../src/events/chain.js';
import { buildUnchainedEvent } from '../../src/events/event.js';
import { packEvent, unpackEvents, type PackedEvents } from '../../src/events/event-handoff.js';
import { NO_ATTRIBUTES, record } from '../events/fixtures.js';

const PROBLEMS = ['subject.attributes/department: must be string', 'resource.attributes: must NOT have additional properties "note"'];

function withProblems(problems: string[]) {
  const r = record(4);
  return { ...r, decision: { ...r.decision, schemaProblems: problems } };
}

describe('schema problems in the decision event', () => {
  it('are in the event, survive the hand-off to the publisher thread, and are covered by the chain hash', () => {
    const rec = withProblems(PROBLEMS);
    const direct = buildUnchainedEvent(rec, 'unit', NO_ATTRIBUTES);
    expect(direct.schemaProblems).to.deep.equal(PROBLEMS);
    const packed: PackedEvents = [];
    packEvent(packed, rec, 'unit', NO_ATTRIBUTES, undefined);
    const [handed] = unpackEvents(packed);
    expect(handed!.body).to.deep.equal(direct);
    const chained = new HashChain('unit', 'boot').append(handed!.body);
    const published = JSON.parse(chained.payload) as Record<string, unknown>;
    expect(published.schemaProblems).to.deep.equal(PROBLEMS);
    // The hand-written canonical form hashes like the generic RFC 8785 one (what a verifier computes).
    expect(eventHash(published)).to.equal((published.chain as { hash: string }).hash);
  });

  it('an event without problems has no schemaProblems key', () => {
    expect(buildUnchainedEvent(record(4), 'unit', NO_ATTRIBUTES)).to.not.have.property('schemaProblems');
  });

  it('keep to the event list budget: cut lists say what they held', () => {
    const body = buildUnchainedEvent(withProblems(Array.from({ length: 8 }, (_, i) => `resource.attributes/x${i}: ${'y'.repeat(140)}`)), 'unit', NO_ATTRIBUTES);
    const fitted = fitFields(body, { fieldBytes: 64, listBytes: 512 });
    expect(Buffer.byteLength(JSON.stringify(fitted.schemaProblems))).to.be.at.most(512);
    expect(fitted.cut?.schemaProblems).to.include({ count: 8 });
  });
});
