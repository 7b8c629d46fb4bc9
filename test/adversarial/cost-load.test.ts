/**
 * Issue 11, load time: conditions whose worst case (the largest request the limits allow) is over
 * limits.maxConditionCost are rejected with CEL_COST at file:line:column, naming the expensive part.
 * Before the cost bound, every policy here loaded, and the first two blocked a server for seconds
 * to minutes on a large request.
 */
import { expect } from 'chai';
import { DEFAULT_REQUEST_LIMITS } from '../../src/engine/limits.js';
import { compilePolicySet, PolicyLoadError, type PolicyIssue } from '../../src/policy/index.js';
import { DEFAULT_COST_ESTIMATE_LIMITS, type CostEstimateLimits } from '../../src/policy/cost.js';
import { file, type File } from '../engine/helpers.js';

function rule(when: string, name = 'r'): string {
  return `resource: doc\nrules:\n  - name: ${name}\n    actions: [read]\n    effect: allow\n    when: '${when}'\n`;
}

function issuesOf(files: File[], limits: CostEstimateLimits = DEFAULT_COST_ESTIMATE_LIMITS): readonly PolicyIssue[] {
  try {
    compilePolicySet(files, { limits });
    return [];
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.issues;
    throw err;
  }
}

function costIssue(files: File[], limits?: CostEstimateLimits): PolicyIssue {
  const issues = issuesOf(files, limits);
  expect(issues.map((i) => i.code), JSON.stringify(issues)).to.deep.equal(['CEL_COST']);
  return issues[0]!;
}

describe('adversarial: worst-case cost at load (CEL_COST)', () => {
  it('rejects list.all(x, list.exists(y, x == y)) over a request list, at the loop, naming the limit and the fix', () => {
    const issue = costIssue([file('a.yaml', rule('resource.attributes.list.all(x, resource.attributes.list.exists(y, x == y))'))]);
    // line 8 is `when:`; the loop starts at the expression's first character
    expect([issue.file, issue.line, issue.column]).to.deep.equal(['a.yaml', 8, 12]);
    expect(issue.message).to.match(/^rule "r": worst-case cost [\d,]+ is over the limit of 10,000,000 \(limits\.maxConditionCost\)/);
    expect(issue.message).to.include('runs its step up to 1,000 times (limits.maxAttributeItems)');
    expect(issue.message).to.include('that step runs the loop "resource.attributes.list.exists(y, x == y)"');
    expect(issue.message).to.include('Test membership with `in`');
  });

  it('rejects list.map(x, list.map(y, s + x + y)) (the 123 s, 3.3 GB request of the issue)', () => {
    const issue = costIssue([file('a.yaml', rule('size(resource.attributes.list.map(x, resource.attributes.list.map(y, resource.attributes.s + x + y))) > 0'))]);
    expect([issue.line, issue.column]).to.deep.equal([8, 17]);
    expect(issue.message).to.include('"resource.attributes.list.map(x, resource.attributes.list.map(y, resource.attributes.s + x + y))" runs its step');
  });

  it('loads the realistic viewers.exists(v, v in groups) with the default limits', () => {
    expect(issuesOf([file('a.yaml', rule('resource.attributes.viewers.exists(v, v in subject.attributes.groups)'))])).to.deep.equal([]);
  });

  it('loads the example policy set and a generated set of the benchmark shape', async () => {
    const { loadPolicyDirectory } = await import('../../src/policy/index.js');
    const { generateLargePolicySet } = await import('../../bench/generate/large-policy-set.js');
    await loadPolicyDirectory('policies');
    expect(() => compilePolicySet(generateLargePolicySet({ types: 50 }).files)).to.not.throw();
  });

  it('costs what variables build: a string doubled 24 times through variables, then searched', () => {
    const vars = ['  v0: resource.id + resource.id'];
    for (let i = 1; i <= 24; i++) vars.push(`  v${i}: variables.v${i - 1} + variables.v${i - 1}`);
    const text = `resource: doc\nvariables:\n${vars.join('\n')}\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.v24.contains("x")\n`;
    // Building is reported where it first gets too large (each `+` copies), not where it is read.
    const issue = costIssue([file('a.yaml', text)]);
    expect([issue.line, issue.column]).to.deep.equal([21, 8]);
    expect(issue.message).to.match(/^variables\.v16: worst-case cost [\d,]+ .*"variables\.v15 \+ variables\.v15" alone may cost/);
    expect(issue.message).to.match(/It reads variables\.v15 \([\d,]+\), variables\.v14 \([\d,]+\), variables\.v13 \([\d,]+\) and 13 more$/);
  });

  it('an estimate past any number (values built from values, 1000^110 items) is over the limit, not NaN that slips through', () => {
    const vars = ['  v0: resource.attributes.l'];
    for (let i = 1; i <= 110; i++) vars.push(`  v${i}: variables.v${i - 1}.map(x, variables.v${i - 1})`);
    const text = `resource: doc\nvariables:\n${vars.join('\n')}\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.v110 == variables.v109\n`;
    const issue = costIssue([file('a.yaml', text)], { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 1e12 });
    expect(issue.message).to.match(/^rule "r": worst-case cost beyond any number is over the limit/);
  });

  it('counts each variable a condition reads once, and reports a condition over the limit only through cheap variables at the condition', () => {
    const loop = 'resource.attributes.viewers.exists(v, v in subject.attributes.groups)';
    const text = `resource: doc\nvariables:\n  a: ${loop}\n  b: ${loop.replace('viewers', 'editors')}\n  c: ${loop.replace('viewers', 'owners')}\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.a || variables.b || variables.c || variables.a\n`;
    const issue = costIssue([file('a.yaml', text)]);
    expect(issue.line).to.equal(12);
    expect(issue.message).to.match(/^rule "r": worst-case cost/);
    expect(issue.message).to.match(/It reads variables\.a \([\d,]+\), variables\.b \([\d,]+\), variables\.c \([\d,]+\)$/);
  });

  it('the budget and the request limits are configurable: both conditions load or fail accordingly', () => {
    const nested = [file('a.yaml', rule('resource.attributes.list.all(x, resource.attributes.list.exists(y, x == y))'))];
    const realistic = [file('a.yaml', rule('resource.attributes.viewers.exists(v, v in subject.attributes.groups)'))];
    expect(issuesOf(nested, { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 1e12 })).to.deep.equal([]);
    expect(issuesOf(nested, { ...DEFAULT_REQUEST_LIMITS, maxAttributeItems: 50, maxConditionCost: 10_000_000 })).to.deep.equal([]);
    expect(costIssue(realistic, { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 100_000 }).message).to.include('limit of 100,000');
  });

  it('a condition repeated on many types is judged under each set of limits, and each file over the limit is named', () => {
    // The compiler remembers documents found within the limits (by their shared expressions): that must
    // neither hide a document over a stricter limit nor leave a repeated offender unreported.
    const when = 'resource.attributes.viewers.exists(v, v in subject.attributes.groups)';
    const typed = (i: number) => file(`t${i}.yaml`, rule(when).replace('resource: doc', `resource: doc${i}`));
    const files = [typed(1), typed(2), typed(3)];
    const loose = { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 1e12 };
    expect(issuesOf(files, loose)).to.deep.equal([]);
    expect(issuesOf(files, loose)).to.deep.equal([]);
    const strict = { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 100_000 };
    for (let round = 0; round < 2; round++) {
      const issues = issuesOf(files, strict);
      expect(issues.map((i) => `${i.file}:${i.code}`)).to.deep.equal(['t1.yaml:CEL_COST', 't2.yaml:CEL_COST', 't3.yaml:CEL_COST']);
    }
  });

  it('prices regular expressions and time zones by what they cost, and names the part', () => {
    const tz = costIssue([file('a.yaml', rule('resource.attributes.list.exists(x, now.getHours("Europe/Berlin") == 9)'))]);
    expect(tz.message).to.include('runs its step up to 1,000 times');
    const big = costIssue([file('a.yaml', rule('resource.attributes.s.matches("^a+$")'))], { ...DEFAULT_REQUEST_LIMITS, maxConditionCost: 10_000 });
    expect(big.message).to.include('"resource.attributes.s.matches("^a+$")" alone may cost');
  });
});
