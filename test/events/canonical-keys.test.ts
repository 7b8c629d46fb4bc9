import { expect } from 'chai';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash, HashChain } from '../../src/events/chain.js';
import { AttributeSelector, buildUnchainedEvent } from '../../src/events/event.js';
import type { Attributes } from '../../src/engine/request.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';

function record(attributes: Attributes): DecisionRecord {
  return {
    decisionId: '01a2250a-630e-75e1-a1ed-d38a9f9a4239',
    time: new Date('2026-11-29T00:00:00Z'),
    requestId: 'r1',
    source: 'check',
    evaluationNs: 1234,
    request: {
      subject: { type: 'user', id: 'alice', roles: ['employee'], attributes },
      action: 'read',
      resource: { type: 'document', id: 'd1', attributes: { '10': 'x', '9': 'y', b: { '2': 1, '11': 2 } } },
      context: {},
    },
    decision: { effect: 'ALLOW', reason: 'RULE_ALLOW', policy: 'p.yaml', rule: 'r', revision: 'sha256:0', errors: [] },
  };
}

describe('events: canonical form of caller-supplied attribute maps', () => {
  it('publishes maps with number-like keys in RFC 8785 order, so the event verifies', () => {
    const chain = new HashChain('test');
    const selector = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const { payload, event } = chain.append(buildUnchainedEvent(record({ '10': 1, '9': 2, a: 3 }), 'test', selector));
    // Text order: "10" < "9" < "a" (JavaScript's own key order would put "9" first).
    expect(payload).to.contain('"attributes":{"context":{},"resource":{"attributes":{"10":"x","9":"y","b":{"11":2,"2":1}}}');
    expect(eventHash(JSON.parse(payload) as Record<string, unknown>)).to.equal(event.chain.hash);
    expect(canonicalJson(JSON.parse(payload))).to.equal(payload);
  });

  it('a later event still links to it', () => {
    const chain = new HashChain('test');
    const selector = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const first = chain.append(buildUnchainedEvent(record({ '1': 1 }), 'test', selector));
    const second = chain.append(buildUnchainedEvent(record({ '2': 2 }), 'test', selector));
    expect(second.event.chain.prev).to.equal(first.event.chain.hash);
    expect(eventHash(JSON.parse(second.payload) as Record<string, unknown>)).to.equal(second.event.chain.hash);
  });
});
