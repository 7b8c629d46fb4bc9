import { expect } from 'chai';
import { canonicalJson } from '../../src/events/canonical.js';
import { HashChain } from '../../src/events/chain.js';
import { packEvent, unpackEvents, type PackedEvents } from '../../src/events/event-handoff.js';
import { AttributeSelector, buildUnchainedEvent } from '../../src/events/event.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { NO_ATTRIBUTES, record } from './fixtures.js';

/** The serving thread packs events flat for the publisher thread; what arrives must be the same event. */
describe('events: hand-off to the publisher thread', () => {
  const all = new AttributeSelector({ includeAttributes: 'all', maskAttributes: ['subject.attributes.email'] });
  const listed = new AttributeSelector({ includeAttributes: ['resource.attributes.owner', 'context.ip'], maskAttributes: ['context.ip'] });

  function variants(): DecisionRecord[] {
    const base = record(7);
    return [
      base,
      record(9, { effect: 'DENY' }),
      { ...base, request: { ...base.request, caller: { id: 'spiffe://example.org/ns/web/sa/gateway', kind: 'spiffe' } } },
      { ...base, request: { ...base.request, subject: { ...base.request.subject, id: 'zoë\u0000"quoted"', roles: [], type: 'service' } } },
      { ...base, request: { ...base.request, subject: { ...base.request.subject, roles: ['a', 'b\\c', 'ünïcode'] }, resource: { ...base.request.resource, attributes: { '10': 1, '2': [true, null, { x: 1.5 }], name: 'x' } } } },
      { ...base, decision: { ...base.decision, effect: 'DENY', reason: 'RULE_ERROR', errors: [{ policy: 'd.yaml', rule: 'r1', message: 'no such key: owner' }] } },
      { ...base, requestId: '', evaluationNs: 0 },
      { ...base, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' },
      {
        ...base,
        decision: {
          ...base.decision,
          effect: 'DENY',
          reason: 'RATE_LIMITED',
          usage: [
            { name: 'export-rate', policy: 'r.yaml', kind: 'rate', mode: 'enforce', scope: 'instance', outcome: 'over', limit: 5, remaining: 0, retryAfterMs: 1200, resetMs: 5000, windowMs: 5000 },
            { name: 'export-month', policy: 'r.yaml', kind: 'quota', mode: 'shadow', scope: 'cluster', outcome: 'ok', limit: 500, remaining: 12, retryAfterMs: 0, resetMs: 9, windowMs: 9 },
          ],
        },
      },
    ];
  }

  for (const [name, selector] of [['no attributes', NO_ATTRIBUTES], ['all attributes, one masked', all], ['listed attributes, one masked', listed]] as const) {
    it(`gives the same event body and the same chained bytes as building it in place (${name})`, () => {
      const packed: PackedEvents = [];
      const records = variants();
      records.forEach((r, i) => packEvent(packed, r, 'inst-1', selector, i % 2 === 0 ? undefined : 100 + i));
      // Through a real structured clone, as postMessage does.
      const unpacked = unpackEvents(structuredClone(packed));
      expect(unpacked).to.have.length(records.length);
      const direct = new HashChain('inst-1', 'boot');
      const handed = new HashChain('inst-1', 'boot');
      records.forEach((r, i) => {
        const expected = buildUnchainedEvent(r, 'inst-1', selector);
        expect(unpacked[i]!.body).to.deep.equal(expected);
        expect(unpacked[i]!.wait).to.equal(i % 2 === 0 ? undefined : 100 + i);
        const payload = handed.append(unpacked[i]!.body).payload;
        expect(payload).to.equal(direct.append(expected).payload);
        // The hand-written canonical form is RFC 8785's (sorted keys), limits included.
        expect(canonicalJson(JSON.parse(payload))).to.equal(payload);
      });
    });
  }

  it('refuses a group whose length is not a whole number of events', () => {
    const packed: PackedEvents = [];
    packEvent(packed, record(1), 'inst-1', NO_ATTRIBUTES, undefined);
    expect(() => unpackEvents(packed.slice(0, -1))).to.throw(/not a multiple/);
  });
});
