import { expect } from 'chai';
import { decide, type CheckRequest, type CompiledPolicySet, type Decision } from '../../src/engine/index.js';
import { compilePolicySet, PolicyLoadError, type PolicyIssue } from '../../src/policy/index.js';

export interface File {
  readonly path: string;
  readonly text: string;
}

/** A policy file text: the header lines, then `body` (so body line 1 is file line 3). */
export function policy(body: string): string {
  return `apiVersion: verdict/v1\nkind: ResourcePolicy\n${body}`;
}

export function file(path: string, body: string): File {
  return { path, text: policy(body) };
}

/** common.yaml: a "*" policy denying suspended subjects everything (the company-wide rule). */
export const DENY_SUSPENDED_EVERYWHERE: File = file(
  'common.yaml',
  `resource: "*"
rules:
  - name: deny-suspended
    actions: ["*"]
    effect: deny
    when: has(subject.attributes.suspended) && subject.attributes.suspended
`,
);

export function load(...files: File[]): CompiledPolicySet {
  return compilePolicySet(files);
}

/** Compiles files that must be rejected and returns the issues of the PolicyLoadError. */
export function loadIssues(...files: File[]): readonly PolicyIssue[] {
  let caught: unknown;
  try {
    compilePolicySet(files);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'policy set should have been rejected').to.be.instanceOf(PolicyLoadError);
  return (caught as PolicyLoadError).issues;
}

/** The only issue of a rejected set, with its message dropped for comparison. */
export function onlyIssue(...files: File[]): PolicyIssue {
  const issues = loadIssues(...files);
  expect(issues, JSON.stringify(issues)).to.have.length(1);
  return issues[0]!;
}

export interface RequestInput {
  readonly id?: string;
  readonly roles?: string[];
  readonly subject?: Record<string, unknown>;
  readonly action?: string;
  readonly type?: string;
  readonly resource?: Record<string, unknown>;
  readonly context?: Record<string, unknown>;
}

export function request(r: RequestInput = {}): CheckRequest {
  return {
    subject: { type: 'user', id: r.id ?? 'alice', roles: r.roles ?? [], attributes: (r.subject ?? {}) as CheckRequest['subject']['attributes'] },
    action: r.action ?? 'read',
    resource: { type: r.type ?? 'doc', id: 'r1', attributes: (r.resource ?? {}) as CheckRequest['resource']['attributes'] },
    context: (r.context ?? {}) as CheckRequest['context'],
  };
}

export const NOW = new Date('2026-03-01T09:00:00Z');

export function check(set: CompiledPolicySet, r: RequestInput = {}, now: Date = NOW): Decision {
  return decide(set, request(r), { now });
}

export function explain(set: CompiledPolicySet, r: RequestInput = {}, now: Date = NOW): Decision {
  return decide(set, request(r), { now, explain: true });
}

/** Runs both the fast and the explained path and checks they agree on the outcome. */
export function both(set: CompiledPolicySet, r: RequestInput = {}, now: Date = NOW): Decision {
  const fast = check(set, r, now);
  const slow = explain(set, r, now);
  expect({ effect: slow.effect, reason: slow.reason, policy: slow.policy, rule: slow.rule }, 'explained decision matches fast decision').to.deep.equal({
    effect: fast.effect,
    reason: fast.reason,
    policy: fast.policy,
    rule: fast.rule,
  });
  return fast;
}

export function expectDecision(d: Decision, effect: 'ALLOW' | 'DENY', reason: string, rule = ''): void {
  expect({ effect: d.effect, reason: d.reason, rule: d.rule }, JSON.stringify(d)).to.deep.equal({ effect, reason, rule });
}
