import { expect } from 'chai';
import { compilePolicySet } from '../../src/policy/index.js';
import { parseSuite, runTest } from '../../src/testing/suite.js';
import { policy } from '../engine/helpers.js';

const SET = compilePolicySet([
  {
    path: 'api.yaml',
    text: policy(`resource: api
rules:
  - name: callers
    actions: [call]
    effect: allow
limits:
  - name: calls
    actions: [call]
    key: subject.id
    rate: 2/1s
    burst: 2
  - name: calls-watch
    actions: [call]
    key: subject.id
    quota: {count: 1, period: day}
    mode: shadow
`),
  },
]);

const suite = (steps: string) => `name: s
tests:
  - name: t
    request: {subject: {id: u}, action: call, resource: {type: api, id: a}}
    steps:
${steps}`;

describe('verdict test: sequences (fake clock)', () => {
  it('runs steps in order against counters of the test alone', () => {
    const { tests, errors } = parseSuite('s_test.yaml', suite(`      - {at: "2026-05-01T00:00:00Z", repeat: 2, expect: allow}
      - {at: "2026-05-01T00:00:00.100Z", expect: deny, reason: RATE_LIMITED, limit: calls, retryAfter: 1s}
      - {at: "2026-05-01T00:00:00.500Z", expect: allow, limit: ""}
`));
    expect(errors).to.deep.equal([]);
    const r = runTest(SET, tests[0]!, new Date());
    expect(r.failure).to.equal('');
    expect(r.passed).to.equal(true);
    // The shadow quota is over (1 a day) but never denies.
    expect(r.decision.usage!.find((u) => u.name === 'calls-watch')).to.include({ outcome: 'over', mode: 'shadow' });
    // A second run starts from fresh counters again.
    expect(runTest(SET, tests[0]!, new Date()).passed).to.equal(true);
  });

  it('names the failing step, its time and repetition', () => {
    const { tests } = parseSuite('s_test.yaml', suite(`      - {at: "2026-05-01T00:00:00Z", repeat: 3, expect: allow}
`));
    const r = runTest(SET, tests[0]!, new Date());
    expect(r.passed).to.equal(false);
    expect(r.failure).to.equal('step 1 at 2026-05-01T00:00:00.000Z (repetition 3 of 3): expected allow, got deny (RATE_LIMITED)');
  });

  it('refuses malformed steps with a suite error, within bounds', () => {
    const bad = (steps: string) => parseSuite('s_test.yaml', suite(steps)).errors.map((e) => e.message);
    expect(bad('      - {at: "soon", expect: allow}\n')).to.deep.equal(['test "t": steps[0]: at "soon" is not an RFC 3339 timestamp']);
    expect(bad('      - {at: "2026-05-01T00:00:00Z", expect: allow, repeat: 10001}\n')).to.deep.equal(['test "t": steps[0]: repeat must be a whole number from 1 to 10000']);
    expect(bad('      - {at: "2026-05-01T00:00:00Z", expect: allow, retryAfter: soon}\n')[0]).to.match(/retryAfter "soon" must be a duration/);
    expect(bad('      - {at: "2026-05-01T00:00:00Z", expect: allow, wait: 1}\n')).to.deep.equal(['test "t": steps[0]: unknown field "wait"']);
    expect(bad('      - {at: "2026-05-01T00:00:00Z", expect: allow, request: {action: ""}}\n')[0]).to.match(/steps\[0\]\.request\.action/);
  });
});
