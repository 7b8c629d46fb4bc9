import { expect } from 'chai';
import { compilePolicySet } from '../../src/policy/index.js';
import { both, check, DENY_SUSPENDED_EVERYWHERE, expectDecision, explain, file, load, type File } from './helpers.js';

const TYPES = 1000;

function generatedFiles(withWildcard: boolean): File[] {
  const files: File[] = [];
  for (let i = 0; i < TYPES; i++) {
    files.push(
      file(
        `types/t${String(i).padStart(4, '0')}.yaml`,
        `resource: type-${i}
rules:
  - name: read-${i}
    actions: [read]
    effect: allow
    roles: [reader-${i}]
  - name: deny-locked-${i}
    actions: ["*"]
    effect: deny
    when: has(resource.attributes.locked) && resource.attributes.locked
  - name: ops-${i}
    actions: ["ops:*"]
    effect: allow
    roles: [operator]
    when: resource.attributes.n == ${i}
`,
      ),
    );
  }
  if (withWildcard) {
    files.push(
      DENY_SUSPENDED_EVERYWHERE,
    );
  }
  return files;
}

describe('rule index', function () {
  this.timeout(60_000);

  describe(`a set with ${TYPES} resource types`, () => {
    let set: ReturnType<typeof compilePolicySet>;
    let withCommon: ReturnType<typeof compilePolicySet>;

    before(() => {
      set = compilePolicySet(generatedFiles(false));
      withCommon = compilePolicySet(generatedFiles(true));
    });

    it('knows every type and rule', () => {
      expect(set.resourceTypes).to.have.length(TYPES);
      expect(set.ruleCount).to.equal(TYPES * 3);
      expect(withCommon.ruleCount).to.equal(TYPES * 3 + 1);
    });

    it('a check only evaluates the rules of the requested type', () => {
      for (const i of [0, 1, 499, 500, 998, 999]) {
        const d = explain(set, { type: `type-${i}`, roles: [`reader-${i}`], action: 'read' });
        expectDecision(d, 'ALLOW', 'RULE_ALLOW', `read-${i}`);
        expect(d.explanation, `type-${i}`).to.have.length(3);
        expect(d.explanation!.map((t) => t.rule)).to.deep.equal([`read-${i}`, `deny-locked-${i}`, `ops-${i}`]);
        expect(new Set(d.explanation!.map((t) => t.policy))).to.deep.equal(new Set([`types/t${String(i).padStart(4, '0')}.yaml`]));
      }
    });

    it('plus the "*" rules, and nothing else', () => {
      const d = explain(withCommon, { type: 'type-42', roles: ['reader-42'], action: 'read' });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'read-42');
      expect(d.explanation!.map((t) => t.rule).sort()).to.deep.equal(['deny-locked-42', 'deny-suspended', 'ops-42', 'read-42']);
      const unknown = explain(withCommon, { type: 'type-1000', roles: ['reader-1000'], action: 'read' });
      expectDecision(unknown, 'DENY', 'NO_POLICY');
      expect(unknown.explanation!.map((t) => t.rule)).to.deep.equal(['deny-suspended']);
      expect(explain(set, { type: 'nope' }).explanation).to.deep.equal([]);
    });

    it('rules of one type never apply to another', () => {
      expectDecision(both(set, { type: 'type-7', roles: ['reader-8'], action: 'read' }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { type: 'type-7', roles: ['reader-7'], action: 'read', resource: { locked: true } }), 'DENY', 'RULE_DENY', 'deny-locked-7');
      expectDecision(both(set, { type: 'type-7', roles: ['operator'], action: 'ops:restart', resource: { n: 7 } }), 'ALLOW', 'RULE_ALLOW', 'ops-7');
      expectDecision(both(set, { type: 'type-8', roles: ['operator'], action: 'ops:restart', resource: { n: 7 } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a check is fast however many types the set holds', () => {
      const start = performance.now();
      for (let k = 0; k < 2000; k++) check(set, { type: `type-${k % TYPES}`, roles: [`reader-${k % TYPES}`], action: 'read' });
      const perCheck = (performance.now() - start) / 2000;
      expect(perCheck, `${perCheck.toFixed(3)} ms per check`).to.be.below(2);
    });
  });

  describe('unknown actions on a type with glob rules', () => {
    const set = load(
      file(
        'report.yaml',
        `resource: report
rules:
  - name: reporters
    actions: ["report:*"]
    effect: allow
    roles: [reporter]
  - name: viewers
    actions: [report:view, list]
    effect: allow
    roles: [viewer]
  - name: no-delete
    actions: [report:delete]
    effect: deny
  - name: no-admin-actions
    actions: ["admin:*"]
    effect: deny
  - name: superusers
    actions: ["*"]
    effect: allow
    roles: [superuser]
`,
      ),
    );

    it('an action no rule names is matched by the globs', () => {
      const d = explain(set, { type: 'report', roles: ['reporter'], action: 'report:annotate' });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'reporters');
      expect(d.explanation!.map((t) => [t.rule, t.outcome])).to.deep.equal([
        ['reporters', 'APPLIED'],
        ['viewers', 'ACTION_MISMATCH'],
        ['no-delete', 'ACTION_MISMATCH'],
        ['no-admin-actions', 'ACTION_MISMATCH'],
        ['superusers', 'ROLE_MISMATCH'],
      ]);
      expectDecision(both(set, { type: 'report', roles: ['superuser'], action: 'never-heard-of-it' }), 'ALLOW', 'RULE_ALLOW', 'superusers');
      expectDecision(both(set, { type: 'report', roles: ['reporter'], action: 'never-heard-of-it' }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { type: 'report', roles: ['superuser'], action: 'admin:wipe' }), 'DENY', 'RULE_DENY', 'no-admin-actions');
    });

    it('an action named exactly also gets the glob rules that match it', () => {
      expectDecision(both(set, { type: 'report', roles: ['reporter'], action: 'report:view' }), 'ALLOW', 'RULE_ALLOW', 'reporters');
      expectDecision(both(set, { type: 'report', roles: ['viewer'], action: 'report:view' }), 'ALLOW', 'RULE_ALLOW', 'viewers');
      expectDecision(both(set, { type: 'report', roles: ['superuser'], action: 'list' }), 'ALLOW', 'RULE_ALLOW', 'superusers');
      expectDecision(both(set, { type: 'report', roles: ['reporter', 'superuser'], action: 'report:delete' }), 'DENY', 'RULE_DENY', 'no-delete');
    });

    it('answers stay right for many distinct unknown actions (beyond any memo bound), asked twice', () => {
      for (let round = 0; round < 2; round++) {
        for (let k = 0; k < 3000; k++) {
          const glob = check(set, { type: 'report', roles: ['reporter'], action: `report:a${k}` });
          expectDecision(glob, 'ALLOW', 'RULE_ALLOW', 'reporters');
          const none = check(set, { type: 'report', roles: ['reporter'], action: `other:a${k}` });
          expectDecision(none, 'DENY', 'NO_MATCHING_RULE');
          const admin = check(set, { type: 'report', roles: ['superuser'], action: `admin:a${k}` });
          expectDecision(admin, 'DENY', 'RULE_DENY', 'no-admin-actions');
        }
      }
    });

    it('a "*" policy\'s glob rules cover unknown actions on types without a policy', () => {
      const s = load(
        file(
          'common.yaml',
          `resource: "*"
rules:
  - name: no-exports
    actions: ["export:*"]
    effect: deny
  - name: platform-admins
    actions: ["*"]
    effect: allow
    roles: [platform-admin]
`,
        ),
      );
      expectDecision(both(s, { type: 'anything', roles: ['platform-admin'], action: 'export:csv' }), 'DENY', 'RULE_DENY', 'no-exports');
      expectDecision(both(s, { type: 'anything', roles: ['platform-admin'], action: 'exportx' }), 'ALLOW', 'RULE_ALLOW', 'platform-admins');
      expectDecision(both(s, { type: 'anything', roles: [], action: 'exportx' }), 'DENY', 'NO_POLICY');
    });
  });
});
