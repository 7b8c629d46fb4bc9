/**
 * Issue 11, evaluation time: with the loading check lifted (so the conditions of the issue load),
 * the decision budget stops them on the largest request the limits allow. The over-budget
 * condition is an evaluation error that fails closed like any other: an erroring allow rule does
 * not apply, an erroring deny rule denies. Before the budget, these decisions took 2 s to minutes.
 */
import { expect } from 'chai';
import { decideMetered, type CheckRequest, type Decision } from '../../src/engine/index.js';
import { COST } from '../../src/cel/cost-model.js';
import { DEFAULT_COST_LIMITS, DEFAULT_REQUEST_LIMITS } from '../../src/engine/limits.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { file, NOW } from '../engine/helpers.js';

const N = DEFAULT_REQUEST_LIMITS.maxAttributeItems;
const list = (prefix: string) => Array.from({ length: N }, (_, i) => `${prefix}${i}`);

function loadUnchecked(rules: string) {
  return compilePolicySet([file('a.yaml', `resource: doc\nrules:\n${rules}`)], { limits: { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 1e15 } });
}

function ruleText(name: string, effect: 'allow' | 'deny', when: string): string {
  return `  - name: ${name}\n    actions: [read]\n    effect: ${effect}\n    when: '${when}'\n`;
}

function request(resource: Record<string, unknown>, subject: Record<string, unknown> = {}): CheckRequest {
  return {
    subject: { type: 'user', id: 'mallory', roles: [], attributes: subject as CheckRequest['subject']['attributes'] },
    action: 'read',
    resource: { type: 'doc', id: 'd', attributes: resource as CheckRequest['resource']['attributes'] },
    context: {},
  };
}

function timed(run: () => { decision: Decision; cost: number }): { decision: Decision; cost: number; ms: number } {
  const start = performance.now();
  const r = run();
  return { ...r, ms: performance.now() - start };
}

const NESTED = 'resource.attributes.list.all(x, resource.attributes.list.exists(y, x == y))';
const MAP_MAP = 'size(resource.attributes.list.map(x, resource.attributes.list.map(y, resource.attributes.s + x + y))) > 0';
const OVER_BUDGET = /^cost limit exceeded: evaluation stopped after 1000000 cost units \(limits\.maxDecisionCost\); the condition counts as an error \(an allow rule does not apply, a deny rule denies\)$/;

describe('adversarial: decision budget at evaluation', () => {
  it('stops list.all(x, list.exists(y, x == y)) on 1,000 items: the allow rule does not apply, with the reason', () => {
    const set = loadUnchecked(ruleText('nested', 'allow', NESTED));
    const { decision, cost, ms } = timed(() => decideMetered(set, request({ list: list('u') }), { now: NOW }));
    expect(decision.effect).to.equal('DENY');
    expect(decision.reason).to.equal('NO_MATCHING_RULE');
    expect(decision.errors).to.have.length(1);
    expect(decision.errors[0]!.rule).to.equal('nested');
    expect(decision.errors[0]!.message).to.match(OVER_BUDGET);
    expect(cost).to.equal(DEFAULT_COST_LIMITS.maxDecisionCost);
    expect(ms, `took ${ms.toFixed(0)} ms`).to.be.below(1000); // issue 11: 6.7 s on 10,000 items
  });

  it('stops list.map(x, list.map(y, s + x + y)) before it builds a million strings; a deny rule with it denies (RULE_ERROR)', () => {
    const set = loadUnchecked(ruleText('map-map', 'deny', MAP_MAP) + ruleText('anyone', 'allow', 'true'));
    const before = process.memoryUsage().heapUsed;
    const { decision, ms } = timed(() => decideMetered(set, request({ list: list('u'), s: 'abc' }), { now: NOW }));
    const grown = (process.memoryUsage().heapUsed - before) / 1e6;
    expect([decision.effect, decision.reason, decision.rule]).to.deep.equal(['DENY', 'RULE_ERROR', 'map-map']);
    expect(decision.errors[0]!.message).to.match(OVER_BUDGET);
    expect(ms, `took ${ms.toFixed(0)} ms`).to.be.below(1000); // issue 11: 123 s and 3.3 GB
    expect(grown, `heap grew ${grown.toFixed(1)} MB`).to.be.below(100);
  });

  it('decides the realistic viewers.exists(v, v in groups) on two 1,000-item lists within the budget', () => {
    const set = loadUnchecked(ruleText('shared-with-group', 'allow', 'resource.attributes.viewers.exists(v, v in subject.attributes.groups)'));
    const groups = list('g');
    const { decision, cost } = decideMetered(set, request({ viewers: [...list('v').slice(1), 'g999'] }, { groups }), { now: NOW });
    expect([decision.effect, decision.rule]).to.deep.equal(['ALLOW', 'shared-with-group']);
    expect(cost).to.be.below(DEFAULT_COST_LIMITS.maxDecisionCost);
    // Every viewer compared with every group (a string scan: COST.stringElement each): the actual work is charged.
    expect(cost).to.be.above(N * N * COST.stringElement);
  });

  it('charges a loop before it runs: one step over the budget costs no time at all', () => {
    const set = loadUnchecked(ruleText('each-tz', 'allow', 'resource.attributes.list.exists(x, now.getHours("Europe/Berlin") == 99)'));
    // 1,000 time-zone conversions (165 µs each in cel-js) would take 165 ms; the charge comes first.
    const { decision, ms } = timed(() => decideMetered(set, request({ list: list('u') }), { now: NOW, costLimit: 100_000 }));
    expect(decision.errors[0]!.message).to.match(/^cost limit exceeded: evaluation stopped after 100000 cost units/);
    expect(ms, `took ${ms.toFixed(0)} ms`).to.be.below(50);
  });

  it('once the budget is spent, every later condition errors too; a rule without a condition still applies', () => {
    const set = loadUnchecked(ruleText('burner', 'allow', NESTED) + ruleText('cheap-allow', 'allow', 'resource.id == "d"') + ruleText('when-true', 'allow', 'true'));
    const { decision } = decideMetered(set, request({ list: list('u') }), { now: NOW });
    expect(decision.errors.map((e) => e.rule)).to.deep.equal(['burner', 'cheap-allow', 'when-true']);
    expect([decision.effect, decision.reason]).to.deep.equal(['DENY', 'NO_MATCHING_RULE']);
    // A rule with no `when` runs no CEL: it costs nothing, and it applies as always.
    const withRoleRule = loadUnchecked(ruleText('burner', 'allow', NESTED) + '  - name: no-condition\n    actions: [read]\n    effect: allow\n');
    const d = decideMetered(withRoleRule, request({ list: list('u') }), { now: NOW }).decision;
    expect([d.effect, d.rule, d.errors.map((e) => e.rule)]).to.deep.equal(['ALLOW', 'no-condition', ['burner']]);
  });

  it('the same decision with explain lists the over-budget rules as CONDITION_ERROR', () => {
    const set = loadUnchecked(ruleText('burner', 'allow', NESTED));
    const { decision } = decideMetered(set, request({ list: list('u') }), { now: NOW, explain: true });
    expect(decision.explanation!.map((t) => [t.rule, t.outcome])).to.deep.equal([['burner', 'CONDITION_ERROR']]);
    expect(decision.explanation![0]!.detail).to.match(OVER_BUDGET);
  });

  it('a deep == between built values that share structure (10^12 items) is stopped at once, not measured forever', () => {
    const vars = `variables:\n  a1: resource.attributes.list.map(x, resource.attributes.list)\n  a2: variables.a1.map(x, variables.a1)\n  a3: variables.a2.map(x, variables.a2)\n  b3: variables.a2.map(x, variables.a2)\n`;
    const set = compilePolicySet([file('a.yaml', `resource: doc\n${vars}rules:\n${ruleText('deep', 'deny', 'variables.a3 == variables.b3')}`)], {
      limits: { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 1e15 },
    });
    const { decision, ms } = timed(() => decideMetered(set, request({ list: list('u') }), { now: NOW }));
    expect([decision.effect, decision.reason]).to.deep.equal(['DENY', 'RULE_ERROR']);
    expect(decision.errors[0]!.message).to.match(OVER_BUDGET);
    expect(ms, `took ${ms.toFixed(0)} ms`).to.be.below(1000);
  });

  it('a small request under the same policy decides normally (the budget is per decision, not per set)', () => {
    const set = loadUnchecked(ruleText('nested', 'allow', NESTED));
    const first = decideMetered(set, request({ list: list('u') }), { now: NOW });
    expect(first.decision.errors).to.have.length(1);
    const small = decideMetered(set, request({ list: ['a', 'b', 'c'] }), { now: NOW });
    expect([small.decision.effect, small.decision.rule, small.decision.errors]).to.deep.equal(['ALLOW', 'nested', []]);
    expect(small.cost).to.be.below(1000);
  });
});
