/**
 * Incremental reload is only a shortcut: after any sequence of adds, edits, renames and deletes,
 * the set a PolicyCompiler holds (compiling only what changed, keeping the last good set when a
 * change is rejected) must be exactly what a full compile of the same files gives: the same revision,
 * the same issues when rejected, the same summary, and the same decisions with the same explanations.
 * VERDICT_FUZZ_RUNS raises the number of sequences (make fuzz).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { decide, type CheckRequest } from '../../src/engine/index.js';
import { PolicyCompiler, sha256Hex } from '../../src/policy/index.js';
import type { PolicyFile } from '../../src/service/policy-source.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 60);

const PATHS = ['a.yaml', 'b.yaml', 'sub.yaml', 'sub/c.yaml', 'sub/d/e.yaml', 'common.yaml'] as const;

const head = (resource: string) => `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: ${resource}\n`;

/** Policy texts that interact: shared types, "*" rules and derived roles, duplicates, errors. */
const VARIANTS: readonly string[] = [
  `${head('doc')}rules:\n  - name: read\n    actions: [read]\n    effect: allow\n    roles: [employee]\n`,
  `${head('doc')}derivedRoles:\n  - name: owner\n    when: has(resource.attributes.owner) && resource.attributes.owner == subject.id\nrules:\n  - name: owners\n    actions: [edit, "x:*"]\n    effect: allow\n    roles: [owner]\n`,
  `${head('doc')}variables:\n  locked: has(resource.attributes.locked) && resource.attributes.locked\nrules:\n  - name: deny-locked\n    actions: [edit, delete]\n    effect: deny\n    when: variables.locked\n`,
  `${head('folder')}rules:\n  - name: read\n    actions: ["*"]\n    effect: allow\n    roles: [admin, owner]\n`,
  `${head('"*"')}derivedRoles:\n  - name: owner\n    when: has(resource.attributes.owner) && resource.attributes.owner == subject.id\nrules:\n  - name: deny-suspended\n    actions: ["*"]\n    effect: deny\n    when: has(subject.attributes.suspended) && subject.attributes.suspended\n`,
  `${head('"*"')}rules:\n  - name: admins\n    actions: ["*"]\n    effect: allow\n    roles: [admin]\n`,
  `${head('doc')}rules:\n  - name: read\n    actions: [read, list]\n    effect: allow\n`,
  `${head('doc')}rules:\n  - name: broken\n    actions: [read]\n    effect: allow\n    when: subject.id + 1 == 2\n`,
  `${head('doc')}rules:\n  - name: bad\n    actions: [read]\n    efect: allow\n`,
  `${head('doc')}rules:\n  - name: a\n    actions: [read]\n    effect: allow\n---\n${head('folder')}rules:\n  - name: a\n    actions: [edit]\n    effect: deny\n    roles: [owner]\n`,
  `${head('folder')}derivedRoles:\n  - name: owner\n    when: "true"\nrules:\n  - name: edit\n    actions: [edit]\n    effect: allow\n    roles: [owner]\n`,
  // Usage limits: names are unique across the set, so the same variant in two files is a duplicate.
  `${head('doc')}rules:\n  - name: read\n    actions: [read]\n    effect: allow\nlimits:\n  - name: reads\n    actions: [read]\n    key: subject.id\n    rate: 10/1m\n`,
  // Declarations: the set's roles are checked against them (admin and employee only), and two files declaring is an error.
  `apiVersion: verdict/v1\nkind: Declarations\nroles: [employee, admin]\n`,
  // Declarations with schemas (enforced): doc and folder share a shape in the first; in the second
  // doc has no \`locked\` (the deny-locked variant does not load) and folder types it as a string.
  `apiVersion: verdict/v1\nkind: Declarations\nroles: [employee, admin]\nschemas:\n  mode: enforce\n  subject:\n    type: object\n    properties:\n      suspended: { type: boolean }\n  resources:\n    doc:\n      type: object\n      properties:\n        owner: { type: string }\n        locked: { type: boolean }\n    folder:\n      type: object\n      properties:\n        owner: { type: string }\n        locked: { type: boolean }\n`,
  `apiVersion: verdict/v1\nkind: Declarations\nroles: [employee, admin]\nschemas:\n  mode: enforce\n  resources:\n    doc:\n      type: object\n      properties:\n        owner: { type: string }\n    folder:\n      type: object\n      properties:\n        owner: { type: string }\n        locked: { type: string }\n`,
  `${head('folder')}rules:\n  - name: edit\n    actions: [edit]\n    effect: allow\nlimits:\n  - name: edits\n    actions: [edit]\n    key: subject.id\n    quota: {count: 5, period: day}\n`,
];

type Op =
  | { kind: 'put'; path: string; variant: number }
  | { kind: 'delete'; path: string }
  | { kind: 'rename'; from: string; to: string };

const path = fc.constantFrom(...PATHS);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('put' as const), path, variant: fc.nat(VARIANTS.length - 1) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), path }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('rename' as const), from: path, to: path }), weight: 1 },
);

const REQUESTS: CheckRequest[] = [];
for (const type of ['doc', 'folder', 'other']) {
  for (const action of ['read', 'edit', 'delete', 'x:y', 'list']) {
    for (const roles of [['employee'], ['admin'], []]) {
      for (const attributes of [{}, { owner: 'u1', locked: true }]) {
        REQUESTS.push({
          subject: { type: 'user', id: 'u1', roles, attributes: roles.length === 0 ? { suspended: true } : {} },
          action,
          resource: { type, id: 'r', attributes },
          context: {},
        } as unknown as CheckRequest);
      }
    }
  }
}
const NOW = new Date('2026-11-30T00:00:00Z');

function snapshot(files: ReadonlyMap<string, string>): PolicyFile[] {
  return [...files].map(([p, text]) => ({ path: p, text, sha256: sha256Hex(text) }));
}

function same(incremental: PolicyCompiler, files: ReadonlyMap<string, string>): void {
  const full = new PolicyCompiler().compileNow(snapshot(files));
  const inc = incremental.compileNow(snapshot(files));
  expect(inc.revision).to.equal(full.revision);
  expect(inc.issues).to.deep.equal(full.issues);
  expect(inc.set === undefined).to.equal(full.set === undefined);
  if (inc.set && full.set) {
    expect(inc.set.policies).to.deep.equal(full.set.policies);
    expect(inc.set.resourceTypes).to.deep.equal(full.set.resourceTypes);
    expect(inc.set.ruleCount).to.equal(full.set.ruleCount);
    expect(inc.set.policyCount).to.equal(full.set.policies.length);
    expect(inc.set.usage?.limits.map((l) => l.name)).to.deep.equal(full.set.usage?.limits.map((l) => l.name));
    for (const request of REQUESTS) {
      expect(decide(inc.set, request, { now: NOW, explain: true }), JSON.stringify(request)).to.deep.equal(decide(full.set, request, { now: NOW, explain: true }));
    }
    incremental.commit(inc);
  } else {
    incremental.discard(inc);
  }
}

describe('fuzz: incremental reload gives what a full load gives', function () {
  this.timeout(120_000);

  it('after any sequence of adds, edits, renames and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(path, fc.nat(VARIANTS.length - 1)), { minLength: 1, maxLength: 3 }), fc.array(op, { minLength: 1, maxLength: 8 }), (initial, ops) => {
        const files = new Map<string, string>(initial.map(([p, v]) => [p, VARIANTS[v]!]));
        const compiler = new PolicyCompiler();
        same(compiler, files);
        for (const o of ops) {
          if (o.kind === 'put') files.set(o.path, VARIANTS[o.variant]!);
          else if (o.kind === 'delete') files.delete(o.path);
          else if (files.has(o.from) && o.from !== o.to) {
            files.set(o.to, files.get(o.from)!);
            files.delete(o.from);
          }
          same(compiler, files);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
