import { expect } from 'chai';
import type { AttributeValue, CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { DecisionService } from '../../src/service/decision-service.js';
import { DISCARDING_SINK } from '../../src/service/decision-record.js';
import { InstanceCounters } from '../../src/usage/instance-counters.js';
import { policy } from '../engine/helpers.js';

const POLICY = `resource: report
rules:
  - name: deny-guests
    actions: ["*"]
    roles: [guest]
    effect: deny
  - name: members
    actions: [read, export]
    effect: allow
limits:
  - name: export-rate
    actions: [export]
    key: subject.attributes.tenant
    rate: 3/1h
    burst: 3
  - name: export-month
    actions: [export]
    key: subject.attributes.tenant
    quota: {count: 5, period: month}
    cost: "has(resource.attributes.cost) ? int(resource.attributes.cost) : 1"
  - name: read-shadow
    actions: [read]
    key: subject.id
    rate: 1/1h
    mode: shadow
  - name: fragile
    actions: [read]
    when: has(context.fragile)
    key: context.fragile
    rate: 1000/1s
`;

function service(set: CompiledPolicySet, counters: InstanceCounters | null = new InstanceCounters()) {
  const live = { sourceName: 'test', current: () => ({ set, loadedAt: new Date(), files: [] }), lastFailure: () => undefined };
  return new DecisionService(live, DISCARDING_SINK, undefined, {}, counters ?? undefined);
}

const OPTIONS = { explain: false, requestId: '', source: 'check' };
const subject = (id: string, roles: string[] = ['member'], tenant = 't1') => ({ type: 'user', id, roles, attributes: { tenant } });
const request = (action: string, s = subject('alice'), attributes: Record<string, AttributeValue> = {}, context: Record<string, AttributeValue> = {}) => ({ subject: s, action, resource: { type: 'report', id: 'r1', attributes }, context });

describe('usage limits in the decision service', () => {
  const set = compilePolicySet([{ path: 'reports.yaml', text: policy(POLICY) }]);

  it('an allowed request consumes; over the rate it is denied RATE_LIMITED naming the limit', async () => {
    const s = service(set);
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push((await s.check(request('export'), OPTIONS)).decision);
    expect(outcomes.map((d) => d.reason)).to.deep.equal(['RULE_ALLOW', 'RULE_ALLOW', 'RULE_ALLOW', 'RATE_LIMITED']);
    const denied = outcomes[3]!;
    expect(denied.effect).to.equal('DENY');
    expect(denied.policy).to.equal('reports.yaml');
    const rate = denied.usage!.find((u) => u.name === 'export-rate')!;
    expect(rate).to.include({ outcome: 'over', remaining: 0, kind: 'rate', mode: 'enforce' });
    expect(rate.retryAfterMs).to.be.within(1_199_000, 1_200_000);
    // The quota was not charged by the denied request: 3 of 5 used.
    expect(denied.usage!.find((u) => u.name === 'export-month')).to.include({ outcome: 'ok', remaining: 2 });
    expect(outcomes[0]!.usage!.map((u) => [u.name, u.remaining])).to.deep.equal([['export-rate', 2], ['export-month', 4]]);
  });

  it('a request the rules deny never consumes', async () => {
    const s = service(set);
    for (let i = 0; i < 10; i++) {
      const d = (await s.check(request('export', subject('mallory', ['guest'])), OPTIONS)).decision;
      expect(d.reason).to.equal('RULE_DENY');
      expect(d.usage).to.equal(undefined);
    }
    expect((await s.check(request('export'), OPTIONS)).decision.usage!.map((u) => u.remaining)).to.deep.equal([2, 4]);
  });

  it('a quota is QUOTA_EXCEEDED once its cost is spent; keys are separate', async () => {
    const s = service(set);
    expect((await s.check(request('export', subject('a'), { cost: 5 }), OPTIONS)).decision.reason).to.equal('RULE_ALLOW');
    const d = (await s.check(request('export', subject('a')), OPTIONS)).decision;
    expect(d.reason).to.equal('QUOTA_EXCEEDED');
    expect(d.usage!.find((u) => u.name === 'export-month')).to.include({ outcome: 'over', remaining: 0 });
    expect((await s.check(request('export', subject('b', ['member'], 't2')), OPTIONS)).decision.reason).to.equal('RULE_ALLOW');
  });

  it('a shadow limit records "over" without denying', async () => {
    const s = service(set);
    const first = (await s.check(request('read'), OPTIONS)).decision;
    const second = (await s.check(request('read'), OPTIONS)).decision;
    expect([first.effect, second.effect]).to.deep.equal(['ALLOW', 'ALLOW']);
    expect(second.usage).to.deep.include.members([{ ...second.usage![0]!, name: 'read-shadow', outcome: 'over', mode: 'shadow' }]);
  });

  it('CheckBatch items consume in order: the fourth export of a batch is the one denied', async () => {
    const s = service(set);
    const outcomes = await s.checkMany([request('export'), request('read'), request('export'), request('export'), request('export')], OPTIONS);
    expect(outcomes.map((o) => o.decision.reason)).to.deep.equal(['RULE_ALLOW', 'RULE_ALLOW', 'RULE_ALLOW', 'RULE_ALLOW', 'RATE_LIMITED']);
  });

  it('an enforced limit whose key fails is LIMIT_ERROR (fail closed); without counters a limited request is denied', async () => {
    const s = service(set);
    const d = (await s.check(request('read', subject('a'), {}, { fragile: [1] }), OPTIONS)).decision;
    expect(d, JSON.stringify(d)).to.include({ effect: 'DENY', reason: 'LIMIT_ERROR' });
    expect(d.errors.map((e) => e.rule)).to.deep.equal(['fragile']);
    const none = service(set, null);
    expect((await none.check(request('export'), OPTIONS)).decision).to.include({ effect: 'DENY', reason: 'LIMIT_ERROR' });
  });
});
