import { expect } from 'chai';
import { compilePolicySet, PolicyLoadError, type PolicyIssue } from '../../src/policy/index.js';
import { file, policy } from '../engine/helpers.js';

/** A policy for `report` with one allow rule and the given `limits:` lines (limits: is on file line 8). */
function withLimits(limits: string): string {
  return `resource: report\nrules:\n  - name: r\n    actions: [export]\n    effect: allow\nlimits:\n${limits}`;
}

function issues(text: string): readonly PolicyIssue[] {
  try {
    compilePolicySet([{ path: 'a.yaml', text: policy(text) }]);
  } catch (err) {
    expect(err).to.be.instanceOf(PolicyLoadError);
    return (err as PolicyLoadError).issues;
  }
  throw new Error('the set should have been rejected');
}

function only(text: string): { code: string; line: number; column: number; message: string } {
  const list = issues(text);
  expect(list, JSON.stringify(list)).to.have.length(1);
  const i = list[0]!;
  return { code: i.code, line: i.line, column: i.column, message: i.message };
}

describe('usage limits: load checks', () => {
  it('loads a rate and a quota and indexes them by type and action', () => {
    const set = compilePolicySet([
      file('a.yaml', withLimits(`  - name: exports-rate
    actions: [export]
    key: subject.attributes.tenant
    rate: 10/1m
    burst: 5
  - name: exports-month
    actions: ["exp*"]
    roles: [editor]
    key: [subject.attributes.tenant, action]
    quota: {count: 500, period: month}
    cost: "has(resource.attributes.rows) ? int(resource.attributes.rows) / 1000 + 1 : 1"
    mode: shadow
`)),
    ]);
    expect(set.usage!.limits.map((l) => l.name)).to.deep.equal(['exports-rate', 'exports-month']);
    expect(set.usage!.limitsFor('report', 'export').map((l) => l.name)).to.deep.equal(['exports-rate', 'exports-month']);
    expect(set.usage!.limitsFor('report', 'read')).to.deep.equal([]);
    expect(set.usage!.limitsFor('other', 'export')).to.deep.equal([]);
    const rate = set.usage!.limits[0]!.measure;
    expect(rate).to.include({ kind: 'rate', count: 10, periodMs: 60_000, burst: 5 });
    expect(set.usage!.limits[1]).to.include({ mode: 'shadow', scope: 'instance' });
  });

  it('a set without limits has no usage index (no per-check work)', () => {
    const set = compilePolicySet([file('a.yaml', 'resource: report\nrules:\n  - name: r\n    actions: [export]\n    effect: allow\n')]);
    expect(set.usage).to.equal(undefined);
  });

  it('a bad rate is INVALID_RATE at the value', () => {
    const i = only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 10 per minute\n'));
    expect(i).to.include({ code: 'INVALID_RATE', line: 12, column: 11 });
    expect(i.message).to.match(/"<count>\/<period>"/);
  });

  it('a rate over a day, a zero count and a zero burst are refused', () => {
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 10/2d\n')).code).to.equal('INVALID_RATE');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 0/1s\n')).code).to.equal('INVALID_RATE');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    burst: 0\n'))).to.include({ code: 'INVALID_RATE', line: 13, column: 12 });
  });

  it('an unknown quota period is INVALID_PERIOD at the period', () => {
    const i = only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    quota:\n      count: 5\n      period: fortnight\n'));
    expect(i).to.include({ code: 'INVALID_PERIOD', line: 14, column: 15 });
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    quota: {count: 5, period: rolling 40d}\n')).code).to.equal('INVALID_PERIOD');
  });

  it('rate and quota together, or neither, is refused', () => {
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    quota: {count: 1, period: day}\n')).code).to.equal('MISSING_FIELD');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n')).code).to.equal('MISSING_FIELD');
  });

  it('a key that is not a string, int or bool is CEL_NOT_KEY; a cost that is not an int is CEL_NOT_INT', () => {
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.roles\n    rate: 1/1s\n'))).to.include({ code: 'CEL_NOT_KEY', line: 11, column: 10 });
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    cost: "\'two\'"\n'))).to.include({ code: 'CEL_NOT_INT', line: 13, column: 11 });
  });

  it('CEL errors in key, cost and when are reported at their characters', () => {
    const list = issues(withLimits('  - name: x\n    actions: [export]\n    when: subject.nope(\n    key: [subject.id, "1 +"]\n    rate: 1/1s\n'));
    expect(list.map((i) => i.code)).to.deep.equal(['CEL_SYNTAX', 'CEL_SYNTAX']);
    expect(list.map((i) => i.line)).to.deep.equal([11, 12]);
  });

  it('a key whose worst case is over the cost limit is CEL_COST', () => {
    const list = issues(withLimits('  - name: x\n    actions: [export]\n    key: "subject.attributes.tags.map(a, subject.attributes.tags.map(b, subject.attributes.tags.map(c, a + b + c))).size()"\n    rate: 1/1s\n'));
    expect(list.map((i) => i.code)).to.include('CEL_COST');
  });

  it('unknown fields, bad mode and scope, and duplicate names (also across files) are refused', () => {
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    window: 5\n')).code).to.equal('UNKNOWN_FIELD');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    mode: warn\n')).code).to.equal('INVALID_VALUE');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n    scope: global\n')).code).to.equal('INVALID_VALUE');
    expect(only(withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n'))).to.include({ code: 'DUPLICATE_NAME', line: 13 });
    let caught: PolicyLoadError | undefined;
    try {
      compilePolicySet([
        file('a.yaml', withLimits('  - name: x\n    actions: [export]\n    key: subject.id\n    rate: 1/1s\n')),
        file('b.yaml', 'resource: doc\nrules: []\nlimits:\n  - name: x\n    actions: [read]\n    key: subject.id\n    rate: 1/1s\n'),
      ]);
    } catch (err) {
      caught = err as PolicyLoadError;
    }
    expect(caught?.issues.map((i) => `${i.file}:${i.line}:${i.code}`)).to.deep.equal(['b.yaml:6:DUPLICATE_NAME']);
  });
});
