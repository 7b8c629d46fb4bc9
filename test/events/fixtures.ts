/** Decision records and events for the unit tests of the chain, spool and verifier (no NATS). */
import { HashChain, type ChainedEvent } from '../../src/events/chain.js';
import { AttributeSelector, buildUnchainedEvent } from '../../src/events/event.js';
import type { WalEntry } from '../../src/events/wal.js';
import type { Attributes } from '../../src/engine/request.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';

export function record(i: number, overrides: { subjectAttributes?: Attributes; resourceAttributes?: Attributes; context?: Attributes; effect?: 'ALLOW' | 'DENY' } = {}): DecisionRecord {
  const effect = overrides.effect ?? (i % 3 === 0 ? 'DENY' : 'ALLOW');
  return {
    decisionId: `0190a1b2-c3d4-7000-8000-${String(i).padStart(12, '0')}`,
    time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, i % 1000)),
    request: {
      subject: { type: 'user', id: `user-${i}`, roles: ['employee'], attributes: overrides.subjectAttributes ?? { department: 'eng', email: `u${i}@example.com` } },
      action: i % 2 === 0 ? 'read' : 'edit',
      resource: { type: 'document', id: `doc-${i}`, attributes: overrides.resourceAttributes ?? { owner: `user-${i}`, department: 'eng' } },
      context: overrides.context ?? { ip: '10.0.0.1' },
    },
    decision: {
      effect,
      reason: effect === 'ALLOW' ? 'RULE_ALLOW' : 'NO_MATCHING_RULE',
      policy: effect === 'ALLOW' ? 'document.yaml' : '',
      rule: effect === 'ALLOW' ? 'employees-read' : '',
      revision: 'sha256:0123456789abcdef',
      errors: [],
    },
    requestId: `req-${i}`,
    source: 'check',
    evaluationNs: 12_345 + i,
  };
}

export const NO_ATTRIBUTES = new AttributeSelector({ includeAttributes: 'none', maskAttributes: [] });

/** `count` events of one chain (instance "unit", boot id `boot`). */
export function chainOf(count: number, boot = 'boot-1', selector = NO_ATTRIBUTES): { chain: HashChain; events: ChainedEvent[] } {
  const chain = new HashChain('unit', boot);
  const events: ChainedEvent[] = [];
  for (let i = 1; i <= count; i++) events.push(chain.append(buildUnchainedEvent(record(i), 'unit', selector)));
  return { chain, events };
}

export function walEntry(c: ChainedEvent): WalEntry {
  return { subject: `vt.unit.document.${c.event.decision === 'ALLOW' ? 'allow' : 'deny'}`, msgId: c.event.id, chain: c.event.chain.id, seq: c.event.chain.seq, hash: c.event.chain.hash, payload: c.payload };
}

/** A deep, mutable copy of an event (as a verifier would parse it). */
export function parsed(c: ChainedEvent): Record<string, any> {
  return JSON.parse(c.payload) as Record<string, any>;
}
