/**
 * The worst case issue 11 asks about: a policy as expensive as the default limits let load, and
 * the largest request they accept, aimed at it. Shared by the adversarial tests
 * (test/adversarial/done-when.test.ts) and the attack benchmark (bench/attack/run.ts).
 *
 * Every rule below loads under the default `limits.maxConditionCost`; each has a loop over request
 * lists, of a different kind (case mapping, search, comparison, membership, regular expressions,
 * string building), and none applies to the attack request, so a decision evaluates all of them
 * until the decision budget (`limits.maxDecisionCost`) stops it. The cheap request goes to another
 * resource type, decided by one role check.
 */
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../src/engine/limits.js';

/**
 * Loop bodies that load under the defaults (worst cases from 30 thousand to 5 million units), the
 * ones that take the most CPU per cost unit first (bench/cel/cost.ts).
 */
const EXPENSIVE = [
  'resource.attributes.viewers.exists(v, v.lowerAscii() + v.upperAscii() == resource.attributes.note)',
  'subject.attributes.groups.exists(g, g.startsWith(resource.attributes.note))',
  'resource.attributes.viewers.exists(v, v == resource.attributes.owner)',
  'resource.attributes.viewers.filter(v, v.contains(resource.attributes.note)).size() > 0',
  'resource.attributes.viewers.exists(v, v in subject.attributes.groups)',
  'resource.attributes.tags.all(t, t.matches("^[a-z0-9-]+$")) && resource.attributes.tags.exists(t, t == "no")',
  'size(resource.attributes.viewers.map(v, v + resource.attributes.note)) == 0',
] as const;

/**
 * Copies of each rule: a policy may have many expensive rules for one action, and none of these
 * applies to the attack request, so all are evaluated until the decision budget runs out.
 */
const COPIES = 30;

export const WORST_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: doc
rules:
${EXPENSIVE.flatMap((when, i) =>
  Array.from(
    { length: COPIES },
    (_, c) => `  - name: expensive-${i}-${c}
    actions: [read]
    effect: allow
    when: '${when}'
`,
  ),
).join('')}`;

/** A cheap decision, on the same server: one role check. */
export const CHEAP_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: note
rules:
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
`;

/** `n` distinct strings that together take `bytes` UTF-8 bytes (flat ASCII). */
function strings(prefix: string, n: number, bytes: number): string[] {
  const each = Math.max(prefix.length + 4, Math.floor(bytes / n) - 1);
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(each - prefix.length, '0')}`);
}

/** The largest attack request the limits accept: every list at maxAttributeItems, strings at the byte limits. */
export function attackRequest(limits: RequestLimits = DEFAULT_REQUEST_LIMITS) {
  const n = limits.maxAttributeItems;
  // Each attribute (key included) stays within maxAttributeBytes.
  const budget = limits.maxAttributeBytes - 16;
  const note = 'x'.repeat(Math.min(limits.maxStringBytes, budget));
  return {
    subject: { id: 'mallory', type: 'user', roles: ['employee'], attributes: { groups: strings('g', n, budget) } },
    action: 'read',
    resource: {
      type: 'doc',
      id: 'd1',
      attributes: {
        viewers: strings('v', n, budget),
        tags: strings('t-', n, budget),
        owner: strings('v', 1, 64)[0]!,
        note,
      },
    },
    context: {},
  };
}

export function cheapRequest() {
  return { subject: { id: 'alice', type: 'user', roles: ['employee'], attributes: {} }, action: 'read', resource: { type: 'note', id: 'n1', attributes: {} }, context: {} };
}
