import { expect } from 'chai';
import { decide } from '../../src/engine/index.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { both, check, DENY_SUSPENDED_EVERYWHERE, expectDecision, explain, file, load, loadIssues, NOW, request } from './helpers.js';

describe('engine semantics', () => {
  describe('deny overrides allow', () => {
    const allowRule = `  - name: allow-read
    actions: [read]
    effect: allow
`;
    const denyRule = `  - name: deny-read
    actions: [read]
    effect: deny
    when: has(resource.attributes.locked) && resource.attributes.locked
`;

    it('denies when an allow and a deny rule both apply, deny rule last', () => {
      const set = load(file('a.yaml', `resource: doc\nrules:\n${allowRule}${denyRule}`));
      expectDecision(both(set, { resource: { locked: true } }), 'DENY', 'RULE_DENY', 'deny-read');
      expectDecision(both(set, { resource: { locked: false } }), 'ALLOW', 'RULE_ALLOW', 'allow-read');
    });

    it('denies when an allow and a deny rule both apply, deny rule first', () => {
      const set = load(file('a.yaml', `resource: doc\nrules:\n${denyRule}${allowRule}`));
      expectDecision(both(set, { resource: { locked: true } }), 'DENY', 'RULE_DENY', 'deny-read');
      expectDecision(both(set, { resource: { locked: false } }), 'ALLOW', 'RULE_ALLOW', 'allow-read');
    });

    it('denies across files for the same type, whichever file sorts first', () => {
      for (const [allowPath, denyPath] of [
        ['a-allow.yaml', 'z-deny.yaml'],
        ['z-allow.yaml', 'a-deny.yaml'],
      ] as const) {
        const allow = file(allowPath, `resource: doc\nrules:\n${allowRule}`);
        const deny = file(denyPath, `resource: doc\nrules:\n${denyRule}`);
        for (const files of [
          [allow, deny],
          [deny, allow],
        ]) {
          const set = load(...files);
          const d = both(set, { resource: { locked: true } });
          expectDecision(d, 'DENY', 'RULE_DENY', 'deny-read');
          expect(d.policy).to.equal(denyPath);
          expectDecision(both(set, { resource: { locked: false } }), 'ALLOW', 'RULE_ALLOW', 'allow-read');
        }
      }
    });

    it('a deny in a "*" policy overrides an allow of the type\'s own policy', () => {
      const set = load(
        file('common.yaml', `resource: "*"\nrules:\n${denyRule}`),
        file('doc.yaml', `resource: doc\nrules:\n${allowRule}`),
      );
      const d = both(set, { resource: { locked: true } });
      expectDecision(d, 'DENY', 'RULE_DENY', 'deny-read');
      expect(d.policy).to.equal('common.yaml');
      expectDecision(both(set, { resource: { locked: false } }), 'ALLOW', 'RULE_ALLOW', 'allow-read');
    });

    it('a deny with roles only denies subjects holding one of them', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: everyone-reads
    actions: [read]
    effect: allow
  - name: no-contractors
    actions: [read]
    effect: deny
    roles: [contractor]
`,
        ),
      );
      expectDecision(both(set, { roles: ['contractor', 'employee'] }), 'DENY', 'RULE_DENY', 'no-contractors');
      expectDecision(both(set, { roles: ['employee'] }), 'ALLOW', 'RULE_ALLOW', 'everyone-reads');
    });
  });

  describe('default deny', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: editors-edit
    actions: [edit]
    effect: allow
    roles: [editor]
    when: resource.attributes.status == "draft"
`,
      ),
    );

    it('denies with NO_MATCHING_RULE when no rule matches the action', () => {
      const d = both(set, { roles: ['editor'], action: 'read', resource: { status: 'draft' } });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.policy).to.equal('');
      expect(d.errors).to.deep.equal([]);
    });

    it('denies with NO_MATCHING_RULE when the role does not match', () => {
      expectDecision(both(set, { roles: ['viewer'], action: 'edit', resource: { status: 'draft' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('denies with NO_MATCHING_RULE when the condition is false', () => {
      expectDecision(both(set, { roles: ['editor'], action: 'edit', resource: { status: 'published' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('allows when action, role and condition all hold', () => {
      const d = both(set, { roles: ['editor'], action: 'edit', resource: { status: 'draft' } });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'editors-edit');
      expect(d.policy).to.equal('a.yaml');
    });

    it('denies with NO_POLICY for a type that has no policy', () => {
      expectDecision(both(set, { roles: ['editor'], action: 'edit', type: 'invoice', resource: { status: 'draft' } }), 'DENY', 'NO_POLICY');
    });

    it('a policy with no rules still governs its type', () => {
      const empty = load(file('a.yaml', 'resource: doc\nrules: []\n'));
      expectDecision(both(empty, {}), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(empty, { type: 'other' }), 'DENY', 'NO_POLICY');
    });
  });

  describe('roles', () => {
    it('static roles: the subject needs at least one of the rule\'s roles', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: staff-read
    actions: [read]
    effect: allow
    roles: [editor, viewer]
`,
        ),
      );
      expectDecision(both(set, { roles: ['viewer'] }), 'ALLOW', 'RULE_ALLOW', 'staff-read');
      expectDecision(both(set, { roles: ['guest', 'editor'] }), 'ALLOW', 'RULE_ALLOW', 'staff-read');
      expectDecision(both(set, { roles: ['guest'] }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { roles: [] }), 'DENY', 'NO_MATCHING_RULE');
      // Role names are case-sensitive.
      expectDecision(both(set, { roles: ['Editor'] }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('roles: ["*"] and an absent roles field match any subject, even one without roles', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: star
    actions: [read]
    effect: allow
    roles: ["*"]
  - name: absent
    actions: [list]
    effect: allow
  - name: star-among-others
    actions: [edit]
    effect: allow
    roles: [admin, "*"]
`,
        ),
      );
      for (const roles of [[], ['anything']]) {
        expectDecision(both(set, { roles, action: 'read' }), 'ALLOW', 'RULE_ALLOW', 'star');
        expectDecision(both(set, { roles, action: 'list' }), 'ALLOW', 'RULE_ALLOW', 'absent');
        expectDecision(both(set, { roles, action: 'edit' }), 'ALLOW', 'RULE_ALLOW', 'star-among-others');
      }
    });

    it('an empty roles list is rejected rather than meaning "anyone"', () => {
      const issues = loadIssues(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: nobody
    actions: [read]
    effect: allow
    roles: []
`,
        ),
      );
      expect(issues.map((i) => [i.code, i.line, i.column])).to.deep.equal([['INVALID_VALUE', 8, 12]]);
    });

    describe('derived roles', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
derivedRoles:
  - name: owner
    parentRoles: [employee]
    when: resource.attributes.owner == subject.id
  - name: listed
    when: subject.id in resource.attributes.viewers
rules:
  - name: owners-edit
    actions: [edit]
    effect: allow
    roles: [owner]
  - name: listed-read
    actions: [read]
    effect: allow
    roles: [listed, owner]
`,
        ),
      );

      it('a derived role holds when its parent role and condition hold', () => {
        const d = explain(set, { id: 'alice', roles: ['employee'], action: 'edit', resource: { owner: 'alice', viewers: [] } });
        expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'owners-edit');
        const trace = d.explanation!.find((t) => t.rule === 'owners-edit')!;
        expect(trace.outcome).to.equal('APPLIED');
        expect(trace.derivedRoles).to.deep.equal(['owner']);
      });

      it('without the parent role the derived role does not hold, even if the condition is true', () => {
        const d = both(set, { id: 'alice', roles: ['contractor'], action: 'edit', resource: { owner: 'alice', viewers: [] } });
        expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
        expect(d.errors).to.deep.equal([]);
      });

      it('with the parent role but a false condition the derived role does not hold', () => {
        expectDecision(both(set, { id: 'bob', roles: ['employee'], action: 'edit', resource: { owner: 'alice', viewers: [] } }), 'DENY', 'NO_MATCHING_RULE');
      });

      it('a derived role without parentRoles needs only its condition', () => {
        expectDecision(both(set, { id: 'carol', roles: [], action: 'read', resource: { owner: 'alice', viewers: ['carol'] } }), 'ALLOW', 'RULE_ALLOW', 'listed-read');
        expectDecision(both(set, { id: 'dave', roles: [], action: 'read', resource: { owner: 'alice', viewers: ['carol'] } }), 'DENY', 'NO_MATCHING_RULE');
      });

      it('the static role of the same name as a derived role does not grant it', () => {
        expectDecision(both(set, { id: 'bob', roles: ['owner', 'employee'], action: 'edit', resource: { owner: 'alice', viewers: [] } }), 'DENY', 'NO_MATCHING_RULE');
      });

      it('an erroring derived role makes the allow rule not apply, with the error reported', () => {
        const d = explain(set, { id: 'carol', roles: [], action: 'read', resource: { owner: 'alice', viewers: 'carol' } });
        expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
        expect(d.errors).to.have.length(1);
        expect(d.errors[0]!.rule).to.equal('listed-read');
        expect(d.errors[0]!.message).to.contain('listed');
        expect(d.explanation!.find((t) => t.rule === 'listed-read')!.outcome).to.equal('CONDITION_ERROR');
        // The other role of the rule still lets the owner in.
        expectDecision(both(set, { id: 'alice', roles: ['employee'], action: 'read', resource: { owner: 'alice', viewers: 'oops' } }), 'ALLOW', 'RULE_ALLOW', 'listed-read');
      });

      it('a derived role defined in a "*" policy is usable by the rules of a type', () => {
        const s = load(
          file(
            'common.yaml',
            `resource: "*"
derivedRoles:
  - name: department_member
    parentRoles: [employee]
    when: subject.attributes.department == resource.attributes.department
rules: []
`,
          ),
          file(
            'report.yaml',
            `resource: report
rules:
  - name: department-reads
    actions: [read]
    effect: allow
    roles: [department_member]
`,
          ),
        );
        const same = { roles: ['employee'], type: 'report', subject: { department: 'eng' }, resource: { department: 'eng' } };
        expectDecision(both(s, same), 'ALLOW', 'RULE_ALLOW', 'department-reads');
        expectDecision(both(s, { ...same, resource: { department: 'sales' } }), 'DENY', 'NO_MATCHING_RULE');
        expectDecision(both(s, { ...same, roles: ['contractor'] }), 'DENY', 'NO_MATCHING_RULE');
      });

      it('a derived role defined in another file for the same type is usable, whatever the file order', () => {
        const rules = file('a.yaml', 'resource: doc\nrules:\n  - name: owners-read\n    actions: [read]\n    effect: allow\n    roles: [owner]\n');
        const roles = file('z.yaml', 'resource: doc\nderivedRoles:\n  - name: owner\n    when: resource.attributes.owner == subject.id\nrules: []\n');
        for (const s of [load(rules, roles), load(roles, rules)]) {
          expectDecision(both(s, { id: 'alice', resource: { owner: 'alice' } }), 'ALLOW', 'RULE_ALLOW', 'owners-read');
          expectDecision(both(s, { id: 'bob', resource: { owner: 'alice' } }), 'DENY', 'NO_MATCHING_RULE');
        }
      });

      it('a derived role of the type takes precedence over a "*" derived role of the same name', () => {
        const s = load(
          file('common.yaml', 'resource: "*"\nderivedRoles:\n  - name: member\n    when: "true"\nrules: []\n'),
          file('doc.yaml', 'resource: doc\nderivedRoles:\n  - name: member\n    when: subject.id == "alice"\nrules:\n  - name: members\n    actions: [read]\n    effect: allow\n    roles: [member]\n'),
          file('folder.yaml', 'resource: folder\nrules:\n  - name: members\n    actions: [read]\n    effect: allow\n    roles: [member]\n'),
        );
        expectDecision(both(s, { id: 'alice' }), 'ALLOW', 'RULE_ALLOW', 'members');
        expectDecision(both(s, { id: 'bob' }), 'DENY', 'NO_MATCHING_RULE');
        expectDecision(both(s, { id: 'bob', type: 'folder' }), 'ALLOW', 'RULE_ALLOW', 'members');
      });

      it('an erroring derived role in a deny rule denies with RULE_ERROR', () => {
        const s = load(
          file(
            'a.yaml',
            `resource: doc
derivedRoles:
  - name: blocked
    when: subject.id in resource.attributes.blocklist
rules:
  - name: deny-blocked
    actions: [read]
    effect: deny
    roles: [blocked]
  - name: anyone
    actions: [read]
    effect: allow
`,
          ),
        );
        expectDecision(both(s, { id: 'eve', resource: { blocklist: ['eve'] } }), 'DENY', 'RULE_DENY', 'deny-blocked');
        expectDecision(both(s, { id: 'bob', resource: { blocklist: ['eve'] } }), 'ALLOW', 'RULE_ALLOW', 'anyone');
        const d = both(s, { id: 'bob', resource: {} });
        expectDecision(d, 'DENY', 'RULE_ERROR', 'deny-blocked');
        expect(d.errors[0]!.message).to.contain('derived role "blocked"');
      });

      it('a derived role of one type means nothing to another type (there it is a static role name)', () => {
        const s = load(
          file(
            'doc.yaml',
            `resource: doc
derivedRoles:
  - name: owner
    when: resource.attributes.owner == subject.id
rules: []
`,
          ),
          file(
            'folder.yaml',
            `resource: folder
rules:
  - name: owners-open
    actions: [read]
    effect: allow
    roles: [owner]
`,
          ),
        );
        expectDecision(both(s, { id: 'alice', type: 'folder', resource: { owner: 'alice' } }), 'DENY', 'NO_MATCHING_RULE');
        expectDecision(both(s, { id: 'alice', roles: ['owner'], type: 'folder', resource: { owner: 'bob' } }), 'ALLOW', 'RULE_ALLOW', 'owners-open');
      });
    });
  });

  describe('actions', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: report
rules:
  - name: exact
    actions: [read]
    effect: allow
    roles: [reader]
  - name: glob
    actions: ["report:*"]
    effect: allow
    roles: [reporter]
  - name: everything
    actions: ["*"]
    effect: allow
    roles: [admin]
  - name: single-string
    actions: archive
    effect: allow
    roles: [archivist]
`,
      ),
    );

    it('an exact action name matches only that action (case-sensitive)', () => {
      expectDecision(both(set, { type: 'report', roles: ['reader'], action: 'read' }), 'ALLOW', 'RULE_ALLOW', 'exact');
      expectDecision(both(set, { type: 'report', roles: ['reader'], action: 'Read' }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { type: 'report', roles: ['reader'], action: 'read:all' }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { type: 'report', roles: ['reader'], action: 'rea' }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a prefix glob matches every action with that prefix, including unseen ones', () => {
      for (const action of ['report:export', 'report:annotate', 'report:', 'report:x:y']) {
        expectDecision(both(set, { type: 'report', roles: ['reporter'], action }), 'ALLOW', 'RULE_ALLOW', 'glob');
      }
      for (const action of ['report', 'reports:export', 'xreport:export', 'read']) {
        expectDecision(both(set, { type: 'report', roles: ['reporter'], action }), 'DENY', 'NO_MATCHING_RULE');
      }
    });

    it('"*" matches every action', () => {
      for (const action of ['read', 'report:export', 'anything-at-all', 'x']) {
        expectDecision(both(set, { type: 'report', roles: ['admin'], action }), 'ALLOW', 'RULE_ALLOW', 'everything');
      }
    });

    it('a single string is accepted as a one-element action list', () => {
      expectDecision(both(set, { type: 'report', roles: ['archivist'], action: 'archive' }), 'ALLOW', 'RULE_ALLOW', 'single-string');
      expectDecision(both(set, { type: 'report', roles: ['archivist'], action: 'archived' }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a deny glob also denies actions nobody listed explicitly', () => {
      const s = load(
        file(
          'a.yaml',
          `resource: report
rules:
  - name: admins
    actions: ["*"]
    effect: allow
    roles: [admin]
  - name: no-export
    actions: ["export:*"]
    effect: deny
`,
        ),
      );
      expectDecision(both(s, { type: 'report', roles: ['admin'], action: 'export:pdf' }), 'DENY', 'RULE_DENY', 'no-export');
      expectDecision(both(s, { type: 'report', roles: ['admin'], action: 'export:brand-new' }), 'DENY', 'RULE_DENY', 'no-export');
      expectDecision(both(s, { type: 'report', roles: ['admin'], action: 'exporter' }), 'ALLOW', 'RULE_ALLOW', 'admins');
    });
  });

  describe('"*" resource policies', () => {
    const common = DENY_SUSPENDED_EVERYWHERE;
    const doc = file(
      'doc.yaml',
      `resource: doc
rules:
  - name: read-docs
    actions: [read]
    effect: allow
`,
    );

    it('apply to a type that has its own policy', () => {
      const set = load(common, doc);
      expectDecision(both(set, { subject: { suspended: true } }), 'DENY', 'RULE_DENY', 'deny-suspended');
      expectDecision(both(set, { subject: { suspended: false } }), 'ALLOW', 'RULE_ALLOW', 'read-docs');
    });

    it('apply to every type, including types without a policy', () => {
      const set = load(common, doc);
      for (const type of ['invoice', 'folder', 'x/y']) {
        const d = both(set, { type, subject: { suspended: true } });
        expectDecision(d, 'DENY', 'RULE_DENY', 'deny-suspended');
        expect(d.policy).to.equal('common.yaml');
      }
    });

    it('a type without a policy gets NO_POLICY when no "*" rule applies', () => {
      const set = load(common, doc);
      expectDecision(both(set, { type: 'invoice', subject: { suspended: false } }), 'DENY', 'NO_POLICY');
      expectDecision(both(set, { type: 'invoice' }), 'DENY', 'NO_POLICY');
    });

    it('a "*" allow rule allows on a type without a policy, and on types with one', () => {
      const set = load(
        file(
          'common.yaml',
          `resource: "*"
rules:
  - name: superusers
    actions: ["*"]
    effect: allow
    roles: [superuser]
`,
        ),
        doc,
      );
      const d = both(set, { type: 'invoice', roles: ['superuser'], action: 'pay' });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'superusers');
      expect(d.policy).to.equal('common.yaml');
      expectDecision(both(set, { type: 'doc', roles: ['superuser'], action: 'delete' }), 'ALLOW', 'RULE_ALLOW', 'superusers');
      expectDecision(both(set, { type: 'invoice', roles: ['user'], action: 'pay' }), 'DENY', 'NO_POLICY');
    });

    it('a set of only "*" policies gives NO_POLICY for every type', () => {
      const set = load(common);
      expect(set.resourceTypes).to.deep.equal([]);
      expectDecision(both(set, { type: 'doc' }), 'DENY', 'NO_POLICY');
      expectDecision(both(set, { type: 'doc', subject: { suspended: true } }), 'DENY', 'RULE_DENY', 'deny-suspended');
    });

    it('resource.type tells "*" rules which type is being checked', () => {
      const set = load(
        file(
          'common.yaml',
          `resource: "*"
rules:
  - name: public-types
    actions: [read]
    effect: allow
    when: resource.type in ["news", "faq"]
`,
        ),
      );
      expectDecision(both(set, { type: 'news' }), 'ALLOW', 'RULE_ALLOW', 'public-types');
      expectDecision(both(set, { type: 'payroll' }), 'DENY', 'NO_POLICY');
    });
  });

  describe('errors fail closed', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: owner-reads
    actions: [read]
    effect: allow
    when: resource.attributes.owner == subject.id
  - name: deny-on-hold
    actions: [delete]
    effect: deny
    when: resource.attributes.legalHold
  - name: anyone-deletes
    actions: [delete]
    effect: allow
  - name: dyn-condition
    actions: [edit]
    effect: allow
    when: resource.attributes.editable
  - name: dyn-condition-deny
    actions: [publish]
    effect: deny
    when: dyn(resource.attributes.flag)
  - name: anyone-publishes
    actions: [publish]
    effect: allow
`,
      ),
    );

    it('a missing attribute in an allow rule: rule not applied, error reported', () => {
      const d = both(set, { action: 'read', resource: {} });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors).to.have.length(1);
      expect(d.errors[0]).to.include({ policy: 'a.yaml', rule: 'owner-reads' });
      expect(d.errors[0]!.message).to.match(/owner/);
      const e = explain(set, { action: 'read', resource: {} });
      expect(e.errors).to.deep.equal(d.errors);
      const trace = e.explanation!.find((t) => t.rule === 'owner-reads')!;
      expect(trace.outcome).to.equal('CONDITION_ERROR');
      expect(trace.detail).to.match(/owner/);
    });

    it('the same allow rule applies once the attribute is present', () => {
      expectDecision(both(set, { id: 'alice', action: 'read', resource: { owner: 'alice' } }), 'ALLOW', 'RULE_ALLOW', 'owner-reads');
    });

    it('a missing attribute in a deny rule denies with RULE_ERROR, even when an allow rule applies', () => {
      const d = both(set, { action: 'delete', resource: {} });
      expectDecision(d, 'DENY', 'RULE_ERROR', 'deny-on-hold');
      expect(d.policy).to.equal('a.yaml');
      expect(d.errors).to.have.length(1);
      expect(d.errors[0]).to.include({ policy: 'a.yaml', rule: 'deny-on-hold' });
      expect(d.errors[0]!.message).to.match(/legalHold/);
      expectDecision(both(set, { action: 'delete', resource: { legalHold: false } }), 'ALLOW', 'RULE_ALLOW', 'anyone-deletes');
      expectDecision(both(set, { action: 'delete', resource: { legalHold: true } }), 'DENY', 'RULE_DENY', 'deny-on-hold');
    });

    it('a deny condition of the wrong type (string) denies with RULE_ERROR', () => {
      const d = both(set, { action: 'delete', resource: { legalHold: 'yes' } });
      expectDecision(d, 'DENY', 'RULE_ERROR', 'deny-on-hold');
      expect(d.errors[0]!.message).to.match(/not a bool/);
    });

    it('a dyn condition returning a non-bool is an error, never an allow', () => {
      for (const editable of ['yes', 1, null, ['x'], { a: true }]) {
        const d = both(set, { action: 'edit', resource: { editable } });
        expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
        expect(d.errors, JSON.stringify(editable)).to.have.length(1);
        expect(d.errors[0]!.rule).to.equal('dyn-condition');
        expect(d.errors[0]!.message).to.match(/not a bool/);
      }
      expect(check(set, { action: 'edit', resource: { editable: 1 } }).errors[0]!.message).to.equal('condition returned number, not a bool');
      expect(check(set, { action: 'edit', resource: { editable: 'yes' } }).errors[0]!.message).to.equal('condition returned string, not a bool');
      expect(check(set, { action: 'edit', resource: { editable: null } }).errors[0]!.message).to.equal('condition returned null, not a bool');
      expectDecision(both(set, { action: 'edit', resource: { editable: true } }), 'ALLOW', 'RULE_ALLOW', 'dyn-condition');
      expectDecision(both(set, { action: 'edit', resource: { editable: false } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a dyn deny condition returning a non-bool denies with RULE_ERROR', () => {
      const d = both(set, { action: 'publish', resource: { flag: 0 } });
      expectDecision(d, 'DENY', 'RULE_ERROR', 'dyn-condition-deny');
      expect(d.errors[0]!.message).to.match(/not a bool/);
      expectDecision(both(set, { action: 'publish', resource: { flag: false } }), 'ALLOW', 'RULE_ALLOW', 'anyone-publishes');
    });

    it('an erroring allow rule does not stop another allow rule from applying', () => {
      const s = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: broken
    actions: [read]
    effect: allow
    when: resource.attributes.missing == 1
  - name: works
    actions: [read]
    effect: allow
`,
        ),
      );
      const d = explain(s, {});
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'works');
      expect(d.errors.map((e) => e.rule)).to.deep.equal(['broken']);
    });

    it('an erroring deny rule denies even when another deny rule is false', () => {
      const s = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: fine
    actions: [read]
    effect: deny
    when: "false"
  - name: broken
    actions: [read]
    effect: deny
    when: resource.attributes.missing
  - name: anyone
    actions: [read]
    effect: allow
`,
        ),
      );
      expectDecision(both(s, {}), 'DENY', 'RULE_ERROR', 'broken');
    });

    it('arithmetic mixing a JSON number with an int literal errors (fails closed in deny rules)', () => {
      const s = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: odd-denied
    actions: [read]
    effect: deny
    when: resource.attributes.n + 1 > 2
  - name: anyone
    actions: [read]
    effect: allow
`,
        ),
      );
      expectDecision(both(s, { resource: { n: 1 } }), 'DENY', 'RULE_ERROR', 'odd-denied');
    });

    it('an unparsable timestamp in a deny rule denies', () => {
      const s = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: retention
    actions: [delete]
    effect: deny
    when: timestamp(resource.attributes.retainUntil) > now
  - name: anyone
    actions: [delete]
    effect: allow
`,
        ),
      );
      expectDecision(both(s, { action: 'delete', resource: { retainUntil: 'soon' } }), 'DENY', 'RULE_ERROR', 'retention');
      expectDecision(both(s, { action: 'delete', resource: { retainUntil: '2027-01-01T00:00:00Z' } }), 'DENY', 'RULE_DENY', 'retention');
      expectDecision(both(s, { action: 'delete', resource: { retainUntil: '2025-01-01T00:00:00Z' } }), 'ALLOW', 'RULE_ALLOW', 'anyone');
    });
  });

  describe('variables', () => {
    it('are usable from conditions and from other variables, defined in any order', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
variables:
  can_read: variables.is_owner || variables.is_public
  is_owner: has(resource.attributes.owner) && resource.attributes.owner == subject.id
  is_public: variables.classification == 0
  classification: "has(resource.attributes.classification) ? resource.attributes.classification : 1"
rules:
  - name: read
    actions: [read]
    effect: allow
    when: variables.can_read
`,
        ),
      );
      expectDecision(both(set, { id: 'alice', resource: { owner: 'alice' } }), 'ALLOW', 'RULE_ALLOW', 'read');
      expectDecision(both(set, { id: 'bob', resource: { owner: 'alice', classification: 0 } }), 'ALLOW', 'RULE_ALLOW', 'read');
      expectDecision(both(set, { id: 'bob', resource: { owner: 'alice', classification: 2 } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { id: 'bob', resource: { owner: 'alice' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('keep their types through chains of variables (lists, maps, timestamps, durations, null)', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
variables:
  all: variables.second && variables.typed
  second: variables.first
  first: subject.id == "a"
  names: '["a", "b"]'
  m: '{"k": 1}'
  t: now + duration("1h")
  d: duration("2h")
  n: "null"
  tags: resource.attributes.tags.map(x, x)
  typed: >-
    subject.id in variables.names && variables.m.k == 1 && variables.t > now &&
    variables.d > duration("1h") && variables.n == null && size(variables.tags) == 1
rules:
  - name: r
    actions: [read]
    effect: allow
    when: variables.all
`,
        ),
      );
      const d = explain(set, { id: 'a', resource: { tags: ['x'] } });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'r');
      expect(d.errors).to.deep.equal([]);
      expectDecision(both(set, { id: 'b', resource: { tags: ['x'] } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { id: 'a', resource: { tags: ['x', 'y'] } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('are lazy: a broken variable no evaluated condition needs causes no error', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
variables:
  broken: resource.attributes.missing == "x"
  fine: "true"
rules:
  - name: uses-fine
    actions: [read]
    effect: allow
    when: variables.fine
  - name: uses-broken
    actions: [edit]
    effect: allow
    when: variables.broken
  - name: short-circuit
    actions: [list]
    effect: allow
    when: variables.fine || variables.broken
`,
        ),
      );
      const read = explain(set, { action: 'read' });
      expectDecision(read, 'ALLOW', 'RULE_ALLOW', 'uses-fine');
      expect(read.errors).to.deep.equal([]);
      const list = explain(set, { action: 'list' });
      expectDecision(list, 'ALLOW', 'RULE_ALLOW', 'short-circuit');
      expect(list.errors).to.deep.equal([]);
    });

    it('an erroring variable makes every condition using it error (allow: not applied; deny: RULE_ERROR)', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
variables:
  level: resource.attributes.level
  high: variables.level > 2
rules:
  - name: deny-high
    actions: [delete]
    effect: deny
    when: variables.high
  - name: anyone-deletes
    actions: [delete]
    effect: allow
  - name: read-high
    actions: [read]
    effect: allow
    when: variables.high
  - name: read-level
    actions: [read]
    effect: allow
    when: variables.level == 1
`,
        ),
      );
      const del = both(set, { action: 'delete', resource: {} });
      expectDecision(del, 'DENY', 'RULE_ERROR', 'deny-high');
      expect(del.errors[0]!.message).to.match(/level/);
      const read = explain(set, { action: 'read', resource: {} });
      expectDecision(read, 'DENY', 'NO_MATCHING_RULE');
      expect(read.errors.map((e) => e.rule)).to.deep.equal(['read-high', 'read-level']);
      for (const e of read.errors) expect(e.message).to.match(/level/);
      expectDecision(both(set, { action: 'delete', resource: { level: 1 } }), 'ALLOW', 'RULE_ALLOW', 'anyone-deletes');
      expectDecision(both(set, { action: 'read', resource: { level: 1 } }), 'ALLOW', 'RULE_ALLOW', 'read-level');
      expectDecision(both(set, { action: 'read', resource: { level: 3 } }), 'ALLOW', 'RULE_ALLOW', 'read-high');
    });

    it('are evaluated afresh for every request (no cache between checks)', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
variables:
  mine: resource.attributes.owner == subject.id
rules:
  - name: read
    actions: [read]
    effect: allow
    when: variables.mine
`,
        ),
      );
      expectDecision(both(set, { id: 'a', resource: { owner: 'a' } }), 'ALLOW', 'RULE_ALLOW', 'read');
      expectDecision(both(set, { id: 'b', resource: { owner: 'a' } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { id: 'a', resource: {} }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { id: 'a', resource: { owner: 'a' } }), 'ALLOW', 'RULE_ALLOW', 'read');
    });

    it('are private to their policy: a derived role uses its own policy\'s variables', () => {
      const set = load(
        file(
          'common.yaml',
          `resource: "*"
variables:
  same: subject.attributes.dept == resource.attributes.dept
derivedRoles:
  - name: member
    when: variables.same
rules: []
`,
        ),
        file(
          'doc.yaml',
          `resource: doc
variables:
  same: "false"
rules:
  - name: members-read
    actions: [read]
    effect: allow
    roles: [member]
`,
        ),
      );
      expectDecision(both(set, { subject: { dept: 'x' }, resource: { dept: 'x' } }), 'ALLOW', 'RULE_ALLOW', 'members-read');
    });

    it('a variable of another policy is a load error (variables are per document)', () => {
      const issues = loadIssues(
        file('common.yaml', 'resource: "*"\nvariables:\n  shared: "true"\nrules: []\n'),
        file('doc.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.shared\n'),
      );
      expect(issues.map((i) => [i.file, i.code])).to.deep.equal([['doc.yaml', 'CEL_TYPE']]);
    });
  });

  describe('explanation', () => {
    const set = load(
      DENY_SUSPENDED_EVERYWHERE,
      file(
        'doc.yaml',
        `resource: doc
derivedRoles:
  - name: owner
    when: resource.attributes.owner == subject.id
rules:
  - name: deny-archived
    actions: [edit, delete]
    effect: deny
    when: has(resource.attributes.archived) && resource.attributes.archived
  - name: owners-edit
    actions: [edit]
    effect: allow
    roles: [owner]
  - name: admins-edit
    actions: [edit]
    effect: allow
    roles: [admin]
  - name: broken
    actions: ["*"]
    effect: allow
    when: resource.attributes.nope
  - name: readers
    actions: [read]
    effect: allow
`,
      ),
    );

    it('lists every rule of the type, with its outcome, in load order', () => {
      const d = explain(set, { id: 'alice', roles: ['employee'], action: 'edit', resource: { owner: 'alice' } });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'owners-edit');
      expect(d.policy).to.equal('doc.yaml');
      expect(d.explanation!.map((t) => [t.policy, t.rule, t.effect, t.outcome])).to.deep.equal([
        ['common.yaml', 'deny-suspended', 'deny', 'CONDITION_FALSE'],
        ['doc.yaml', 'deny-archived', 'deny', 'CONDITION_FALSE'],
        ['doc.yaml', 'owners-edit', 'allow', 'APPLIED'],
        ['doc.yaml', 'admins-edit', 'allow', 'ROLE_MISMATCH'],
        ['doc.yaml', 'broken', 'allow', 'CONDITION_ERROR'],
        ['doc.yaml', 'readers', 'allow', 'ACTION_MISMATCH'],
      ]);
      const byRule = new Map(d.explanation!.map((t) => [t.rule, t]));
      expect(byRule.get('owners-edit')!.derivedRoles).to.deep.equal(['owner']);
      expect(byRule.get('admins-edit')!.detail).to.contain('admin');
      expect(byRule.get('readers')!.detail).to.contain('"edit"');
      expect(byRule.get('deny-archived')!.detail).to.contain('has(resource.attributes.archived)');
      expect(byRule.get('broken')!.detail).to.match(/nope/);
      expect(d.errors).to.deep.equal([{ policy: 'doc.yaml', rule: 'broken', message: byRule.get('broken')!.detail }]);
    });

    it('still lists every rule when a deny decides, and the fast path reports the same decision', () => {
      const r = { id: 'alice', action: 'edit', resource: { owner: 'alice', archived: true } };
      const d = explain(set, r);
      expectDecision(d, 'DENY', 'RULE_DENY', 'deny-archived');
      expect(d.explanation).to.have.length(6);
      expect(d.explanation!.map((t) => t.outcome)).to.deep.equal(['CONDITION_FALSE', 'APPLIED', 'APPLIED', 'ROLE_MISMATCH', 'CONDITION_ERROR', 'ACTION_MISMATCH']);
      const fast = check(set, r);
      expectDecision(fast, 'DENY', 'RULE_DENY', 'deny-archived');
      expect(fast.explanation).to.equal(undefined);
    });

    it('for a type without a policy lists only the "*" rules', () => {
      const d = explain(set, { type: 'invoice', action: 'pay' });
      expectDecision(d, 'DENY', 'NO_POLICY');
      expect(d.explanation!.map((t) => [t.rule, t.outcome])).to.deep.equal([['deny-suspended', 'CONDITION_FALSE']]);
    });

    it('is absent unless explain is requested', () => {
      expect(check(set, {})).to.not.have.property('explanation');
    });
  });

  describe('revision', () => {
    const a = file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n');
    const b = file('b.yaml', 'resource: folder\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n');

    it('is the same for the same files, is reported in every decision, and looks like a hash', () => {
      const one = load(a, b);
      const two = load({ ...a }, { ...b });
      expect(one.revision).to.equal(two.revision);
      expect(one.revision).to.match(/^sha256:[0-9a-f]{16}$/);
      expect(check(one, {}).revision).to.equal(one.revision);
      expect(explain(one, { type: 'nothing' }).revision).to.equal(one.revision);
    });

    it('does not depend on the order of the files', () => {
      expect(load(a, b).revision).to.equal(load(b, a).revision);
    });

    it('changes when a file\'s text changes, even in whitespace or a comment', () => {
      const base = load(a, b).revision;
      expect(load({ ...a, text: a.text.replace('read', 'edit') }, b).revision).to.not.equal(base);
      expect(load({ ...a, text: `${a.text}# comment\n` }, b).revision).to.not.equal(base);
      expect(load({ ...a, text: `${a.text}\n` }, b).revision).to.not.equal(base);
    });

    it('changes when a file is renamed, added or removed', () => {
      const base = load(a, b).revision;
      expect(load({ ...a, path: 'c.yaml' }, b).revision).to.not.equal(base);
      expect(load(a).revision).to.not.equal(base);
      expect(load(a, b, file('c.yaml', 'resource: x\nrules: []\n')).revision).to.not.equal(base);
    });
  });

  describe('now', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: before-expiry
    actions: [read]
    effect: allow
    when: now < timestamp(resource.attributes.expires)
  - name: office-hours
    actions: [edit]
    effect: allow
    when: now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18
  - name: recent
    actions: [list]
    effect: allow
    when: now - timestamp(resource.attributes.created) < duration("24h")
`,
      ),
    );
    const expires = '2026-06-01T00:00:00Z';

    it('comes from the evaluation options, not the clock', () => {
      expectDecision(both(set, { resource: { expires } }, new Date('2026-05-31T23:59:59Z')), 'ALLOW', 'RULE_ALLOW', 'before-expiry');
      expectDecision(both(set, { resource: { expires } }, new Date('2026-06-01T00:00:01Z')), 'DENY', 'NO_MATCHING_RULE');
      // Far in the past and far in the future: not the wall clock.
      expectDecision(both(set, { resource: { expires } }, new Date('1999-01-01T00:00:00Z')), 'ALLOW', 'RULE_ALLOW', 'before-expiry');
      expectDecision(both(set, { resource: { expires } }, new Date('2099-01-01T00:00:00Z')), 'DENY', 'NO_MATCHING_RULE');
    });

    it('supports time zones and durations', () => {
      // 07:30Z is 09:30 in Berlin (CET+1 in March); 18:30Z is 19:30.
      expectDecision(both(set, { action: 'edit' }, new Date('2026-03-02T07:30:00Z')), 'ALLOW', 'RULE_ALLOW', 'office-hours');
      expectDecision(both(set, { action: 'edit' }, new Date('2026-03-02T18:30:00Z')), 'DENY', 'NO_MATCHING_RULE');
      const created = '2026-03-01T00:00:00Z';
      expectDecision(both(set, { action: 'list', resource: { created } }, new Date('2026-03-01T23:00:00Z')), 'ALLOW', 'RULE_ALLOW', 'recent');
      expectDecision(both(set, { action: 'list', resource: { created } }, new Date('2026-03-02T01:00:00Z')), 'DENY', 'NO_MATCHING_RULE');
    });
  });

  describe('numbers from JSON', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: high-level
    actions: [read]
    effect: allow
    when: resource.attributes.level >= 3
  - name: exact-zero
    actions: [list]
    effect: allow
    when: resource.attributes.count == 0
  - name: compare-two-attributes
    actions: [edit]
    effect: allow
    when: subject.attributes.clearance >= resource.attributes.level
`,
      ),
    );

    it('a JSON number compares with an int literal', () => {
      expectDecision(both(set, { resource: { level: 3 } }), 'ALLOW', 'RULE_ALLOW', 'high-level');
      expectDecision(both(set, { resource: { level: 4 } }), 'ALLOW', 'RULE_ALLOW', 'high-level');
      expectDecision(both(set, { resource: { level: 3.5 } }), 'ALLOW', 'RULE_ALLOW', 'high-level');
      const low = both(set, { resource: { level: 2.5 } });
      expectDecision(low, 'DENY', 'NO_MATCHING_RULE');
      expect(low.errors).to.deep.equal([]);
      expectDecision(both(set, { resource: { level: 2.9999 } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { resource: { level: -3 } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('equality between a JSON number and an int literal', () => {
      expectDecision(both(set, { action: 'list', resource: { count: 0 } }), 'ALLOW', 'RULE_ALLOW', 'exact-zero');
      expectDecision(both(set, { action: 'list', resource: { count: 0.5 } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { action: 'list', resource: { count: 1 } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('two JSON numbers compare with each other', () => {
      expectDecision(both(set, { action: 'edit', subject: { clearance: 2 }, resource: { level: 2 } }), 'ALLOW', 'RULE_ALLOW', 'compare-two-attributes');
      expectDecision(both(set, { action: 'edit', subject: { clearance: 1 }, resource: { level: 2 } }), 'DENY', 'NO_MATCHING_RULE');
    });
  });

  describe('request fields visible to CEL', () => {
    it('subject, resource, action, context and caller', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: all-fields
    actions: ["*"]
    effect: allow
    when: >-
      subject.type == "user" && subject.id == "alice" && "staff" in subject.roles &&
      subject.attributes.team == "x" && resource.type == "doc" && resource.id == "r1" &&
      action == "doc:open" && context.channel == "web" && caller.kind == "anonymous" && caller.id == ""
`,
        ),
      );
      expectDecision(
        both(set, { id: 'alice', roles: ['staff'], subject: { team: 'x' }, action: 'doc:open', context: { channel: 'web' } }),
        'ALLOW',
        'RULE_ALLOW',
        'all-fields',
      );
      expectDecision(both(set, { id: 'alice', roles: ['staff'], subject: { team: 'x' }, action: 'doc:close', context: { channel: 'web' } }), 'DENY', 'NO_MATCHING_RULE');
    });
  });

  describe('policy ids and conditions', () => {
    it('a multi-document file names each policy with a #N suffix', () => {
      const text = `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: doc\nrules: []\n---\napiVersion: verdict/v1\nkind: ResourcePolicy\nresource: folder\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n`;
      const set = compilePolicySet([{ path: 'm.yaml', text }]);
      const d = both(set, { type: 'folder' });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'r');
      expect(d.policy).to.equal('m.yaml#2');
      expect(set.policies.map((p) => p.id)).to.deep.equal(['m.yaml#1', 'm.yaml#2']);
      expectDecision(both(set, { type: 'doc' }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('YAML booleans are accepted as CEL literals in when', () => {
      const set = load(file('a.yaml', 'resource: doc\nrules:\n  - name: yes\n    actions: [read]\n    effect: allow\n    when: true\n  - name: no\n    actions: [edit]\n    effect: allow\n    when: false\n'));
      expectDecision(both(set, { action: 'read' }), 'ALLOW', 'RULE_ALLOW', 'yes');
      expectDecision(both(set, { action: 'edit' }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('caller is visible to conditions when the request carries it', () => {
      const set = load(file('a.yaml', 'resource: doc\nrules:\n  - name: gateway-only\n    actions: [read]\n    effect: allow\n    when: caller.kind == "spiffe" && caller.id.startsWith("spiffe://corp/")\n'));
      const base = request({});
      expectDecision(decide(set, { ...base, caller: { id: 'spiffe://corp/gw', kind: 'spiffe' } }, { now: NOW }), 'ALLOW', 'RULE_ALLOW', 'gateway-only');
      expectDecision(decide(set, { ...base, caller: { id: 'spiffe://other/gw', kind: 'spiffe' } }, { now: NOW }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(decide(set, base, { now: NOW }), 'DENY', 'NO_MATCHING_RULE');
    });
  });

  describe('compilePolicySet', () => {
    it('summarises the set', () => {
      const set = compilePolicySet([
        file('b.yaml', 'resource: folder\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n'),
        file('a.yaml', 'resource: doc\nvariables:\n  v: "true"\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n  - name: s\n    actions: [read]\n    effect: deny\n    when: "!variables.v"\n'),
        file('c.yaml', 'resource: "*"\nrules: []\n'),
      ]);
      expect(set.resourceTypes).to.deep.equal(['doc', 'folder']);
      expect(set.ruleCount).to.equal(3);
      expectDecision(check(set, { type: 'folder' }, NOW), 'ALLOW', 'RULE_ALLOW', 'r');
    });
  });
});
