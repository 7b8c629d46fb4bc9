import { expect } from 'chai';
import { compilePolicySet, formatIssue, PolicyLoadError, type PolicyIssue } from '../../src/policy/index.js';
import { file, loadIssues, onlyIssue, policy } from './helpers.js';

/** The issue without its message, for exact comparison. */
function at(issue: PolicyIssue): { file: string; line: number; column: number; code: string } {
  return { file: issue.file, line: issue.line, column: issue.column, code: issue.code };
}

function expectOnly(files: Parameters<typeof loadIssues>, code: string, line: number, column: number, message?: RegExp, path = 'a.yaml'): PolicyIssue {
  const issue = onlyIssue(...files);
  expect(at(issue), issue.message).to.deep.equal({ file: path, line, column, code });
  if (message) expect(issue.message).to.match(message);
  return issue;
}

/** A one-rule policy for `doc` whose rule has the given extra lines; the rule's `name` is on line 5. */
function rule(extra: string): string {
  return `resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n${extra}`;
}

describe('policy load errors', () => {
  describe('YAML and structure', () => {
    it('YAML syntax error: an unterminated flow sequence', () => {
      // line 6: "    actions: [read" — the parser notices at the next line's first item.
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read\n    effect: allow\n')], 'YAML_SYNTAX', 7, 5, /Flow sequence/);
    });

    it('YAML syntax error: an unterminated quoted string', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: "r\n')], 'YAML_SYNTAX', 6, 1, /quote/);
    });

    it('YAML duplicate key', () => {
      expectOnly([file('a.yaml', rule('    effect: deny\n'))], 'YAML_SYNTAX', 8, 5, /unique/);
    });

    it('a YAML syntax error in the middle of a file is reported at its own line, not the document start', () => {
      const text = policy('resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: "true"\n  - name: s\n    actions: [read\n    effect: deny\n');
      const issue = onlyIssue({ path: 'x/y.yaml', text });
      expect(at(issue)).to.deep.equal({ file: 'x/y.yaml', line: 11, column: 5, code: 'YAML_SYNTAX' });
    });

    it('unknown field in a rule', () => {
      expectOnly([file('a.yaml', rule('    rolez: [admin]\n'))], 'UNKNOWN_FIELD', 8, 5, /unknown field "rolez" \(allowed: name, description, actions, effect, roles, when\)/);
    });

    it('unknown field at the top level', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrulez: []\nrules: []\n')], 'UNKNOWN_FIELD', 4, 1, /unknown field "rulez"/);
    });

    it('unknown field in a derived role', () => {
      expectOnly([file('a.yaml', 'resource: doc\nderivedRoles:\n  - name: owner\n    when: "true"\n    parents: [x]\nrules: []\n')], 'UNKNOWN_FIELD', 7, 5, /unknown field "parents"/);
    });

    it('missing field: a rule without effect (reported at the rule)', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n')], 'MISSING_FIELD', 5, 5, /rule "r": missing required field "effect"/);
    });

    it('missing field: a rule without actions', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    effect: allow\n')], 'MISSING_FIELD', 5, 5, /missing required field "actions"/);
    });

    it('missing field: a policy without rules (reported at the document)', () => {
      expectOnly([file('a.yaml', 'resource: doc\n')], 'MISSING_FIELD', 1, 1, /missing required field "rules"/);
    });

    it('missing field: a derived role without when', () => {
      expectOnly([file('a.yaml', 'resource: doc\nderivedRoles:\n  - name: owner\nrules: []\n')], 'MISSING_FIELD', 5, 5, /missing required field "when"/);
    });

    it('an empty file', () => {
      expectOnly([{ path: 'a.yaml', text: '' }], 'MISSING_FIELD', 1, 1, /no policy document/);
    });

    it('no files at all', () => {
      const issues = loadIssues();
      expect(issues.map((i) => i.code)).to.deep.equal(['NO_POLICIES']);
    });

    it('duplicate rule names in one file', () => {
      const text = rule('  - name: r\n    actions: [edit]\n    effect: deny\n');
      expectOnly([file('a.yaml', text)], 'DUPLICATE_NAME', 8, 11, /rule "r" for resource "doc" is already defined at line 5/);
    });

    it('duplicate rule names across two files for the same type', () => {
      const a = file('a.yaml', rule(''));
      const b = file('b.yaml', 'resource: doc\nrules:\n  - name: other\n    actions: [read]\n    effect: allow\n  - name: r\n    actions: [edit]\n    effect: allow\n');
      expectOnly([a, b], 'DUPLICATE_NAME', 8, 11, /already defined at a\.yaml:5/, 'b.yaml');
    });

    it('the same rule name for different types, or in a "*" policy, is fine', () => {
      expect(() =>
        compilePolicySet([file('a.yaml', rule('')), file('b.yaml', rule('').replace('doc', 'folder')), file('c.yaml', rule('').replace('doc', '"*"'))]),
      ).to.not.throw();
    });

    it('duplicate derived role names', () => {
      expectOnly([file('a.yaml', 'resource: doc\nderivedRoles:\n  - name: o\n    when: "true"\n  - name: o\n    when: "false"\nrules: []\n')], 'DUPLICATE_NAME', 7, 11, /derived role "o"/);
    });

    it('a derived role defined again in a second document of the same file is rejected (not silently replaced)', () => {
      // Issue 11: the later definition used to win without a word.
      const doc = (when: string) => `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: doc\nderivedRoles:\n  - name: o\n    when: "${when}"\nrules: []\n`;
      const text = `${doc('true')}---\n${doc('false')}`;
      expectOnly([{ path: 'a.yaml', text }], 'DUPLICATE_NAME', 13, 11, /derived role "o" for resource "doc" is already defined at line 5/);
    });

    it('a derived role defined in two files for the same type is rejected, naming the first', () => {
      const body = 'resource: doc\nderivedRoles:\n  - name: o\n    when: "true"\nrules: []\n';
      expectOnly([file('a.yaml', body), file('b.yaml', body)], 'DUPLICATE_NAME', 5, 11, /already defined at a\.yaml:5/, 'b.yaml');
    });

    it('bad effect', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: permit\n')], 'INVALID_EFFECT', 7, 13, /effect "permit" must be "allow" or "deny"/);
    });

    it('bad action glob "re*ad"', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read, "re*ad"]\n    effect: allow\n')], 'INVALID_ACTION', 6, 21, /action "re\*ad"/);
    });

    it('other bad actions: "*:export", a leading glob, an empty list', () => {
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: ["*:export"]\n    effect: allow\n')], 'INVALID_ACTION', 6, 15);
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions:\n      - read\n      - "*read"\n    effect: allow\n')], 'INVALID_ACTION', 8, 9);
      expectOnly([file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: []\n    effect: allow\n')], 'INVALID_ACTION', 6, 14, /must not be empty/);
    });

    it('unsupported apiVersion', () => {
      expectOnly([{ path: 'a.yaml', text: 'apiVersion: verdict/v2\nkind: ResourcePolicy\nresource: doc\nrules: []\n' }], 'UNSUPPORTED_API_VERSION', 1, 13, /"verdict\/v2"/);
    });

    it('unknown kind', () => {
      expectOnly([{ path: 'a.yaml', text: 'apiVersion: verdict/v1\nkind: RolePolicy\nresource: doc\nrules: []\n' }], 'UNKNOWN_KIND', 2, 7, /"RolePolicy"/);
    });

    it('an invalid resource type', () => {
      expectOnly([file('a.yaml', 'resource: "my doc"\nrules: []\n')], 'INVALID_VALUE', 3, 11);
    });

    it('the second document of a multi-document file is checked, with file positions', () => {
      const text = `${policy('resource: doc\nrules: []\n')}---\n${policy('resource: folder\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: subject.idd == "x"\n')}`;
      const issue = onlyIssue({ path: 'm.yaml', text });
      expect(at(issue)).to.deep.equal({ file: 'm.yaml', line: 13, column: 19, code: 'CEL_TYPE' });
    });
  });

  describe('CEL', () => {
    it('CEL syntax error: unexpected end of input', () => {
      expectOnly([file('a.yaml', rule('    when: subject.id == (\n'))], 'CEL_SYNTAX', 8, 26, /rule "r"/);
    });

    it('CEL syntax error points at the offending character', () => {
      // "    when: subject.id === ..." : the expression starts at column 11; the third "=" is at 24.
      expectOnly([file('a.yaml', rule('    when: subject.id === "x"\n'))], 'CEL_SYNTAX', 8, 24);
    });

    it('CEL syntax error inside a variable', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  v: 1 +\nrules: []\n')], 'CEL_SYNTAX', 5, 9, /variables\.v/);
    });

    it('CEL type error: unknown variable subjet', () => {
      expectOnly([file('a.yaml', rule('    when: subjet.id == "x"\n'))], 'CEL_TYPE', 8, 11, /Unknown variable: subjet/);
    });

    it('CEL type error: no such key subject.idd (points at the field)', () => {
      expectOnly([file('a.yaml', rule('    when: subject.idd == "x"\n'))], 'CEL_TYPE', 8, 19, /No such key: idd/);
    });

    it('CEL type error positions are exact inside the expression, whatever the quoting', () => {
      expectOnly([file('a.yaml', rule('    when: subject.id == "x" && subject.idd == "x"\n'))], 'CEL_TYPE', 8, 40);
      expectOnly([file('a.yaml', rule(`    when: "subject.idd == 'y'"\n`))], 'CEL_TYPE', 8, 20);
      expectOnly([file('a.yaml', rule(`    when: 'subject.idd == "y"'\n`))], 'CEL_TYPE', 8, 20);
      // Literal and folded block scalars: the second line of the block.
      expectOnly([file('a.yaml', rule('    when: |\n      subject.id == "x" &&\n      subject.idd == "y"\n'))], 'CEL_TYPE', 10, 15);
      expectOnly([file('a.yaml', rule('    when: >-\n      subject.id == "x" &&\n      subject.idd == "y"\n'))], 'CEL_TYPE', 10, 15);
    });

    it('CEL type error: wrong argument types', () => {
      expectOnly([file('a.yaml', rule('    when: inCidr(context.ip, 8)\n'))], 'CEL_TYPE', 8, 11, /inCidr/);
    });

    it('non-bool condition', () => {
      expectOnly([file('a.yaml', rule('    when: size(subject.roles)\n'))], 'CEL_NOT_BOOL', 8, 11, /is int/);
    });

    it('non-bool derived role condition and non-bool variable used as a condition', () => {
      expectOnly([file('a.yaml', 'resource: doc\nderivedRoles:\n  - name: o\n    when: subject.id\nrules: []\n')], 'CEL_NOT_BOOL', 6, 11, /is string/);
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  n: size(subject.roles)\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.n\n')], 'CEL_NOT_BOOL', 10, 11);
    });

    it('a non-bool variable is fine when not used as a condition', () => {
      expect(() =>
        compilePolicySet([file('a.yaml', 'resource: doc\nvariables:\n  n: size(subject.roles)\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.n > 1\n')]),
      ).to.not.throw();
    });

    it('undefined variable referenced from a variable', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  a: variables.b && true\nrules: []\n')], 'UNDEFINED_VARIABLE', 5, 6, /variable "b" is not defined/);
    });

    it('undefined variable referenced from a condition is a type error at the field', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  a: "true"\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: variables.typo\n')], 'CEL_TYPE', 10, 21, /typo/);
    });

    it('cyclic variables', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  a: variables.b\n  b: variables.c\n  c: variables.a\nrules: []\n')], 'CYCLIC_VARIABLE', 5, 3, /a -> b -> c -> a/);
    });

    it('a variable referring to itself', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  ok: "true"\n  a: "!variables.a"\nrules: []\n')], 'CYCLIC_VARIABLE', 6, 3, /a -> a/);
    });

    it('matches() with a non-literal pattern', () => {
      expectOnly([file('a.yaml', rule('    when: resource.id.matches(resource.attributes.pattern)\n'))], 'CEL_UNSAFE', 8, 31, /string literal pattern/);
    });

    it('matches() with a backreference', () => {
      expectOnly([file('a.yaml', rule(`    when: 'resource.id.matches("(a)\\\\1")'\n`))], 'CEL_UNSAFE', 8, 32, /backreferences are not supported/);
    });

    it('matches() with lookahead and lookbehind', () => {
      expectOnly([file('a.yaml', rule('    when: resource.id.matches("^(?=x)x")\n'))], 'CEL_UNSAFE', 8, 31, /lookahead and lookbehind are not supported/);
      expectOnly([file('a.yaml', rule('    when: resource.id.matches("(?<!y)x")\n'))], 'CEL_UNSAFE', 8, 31, /lookahead and lookbehind are not supported/);
      expectOnly([file('a.yaml', rule('    when: resource.id.matches("(?!y)x")\n'))], 'CEL_UNSAFE', 8, 31);
      expectOnly([file('a.yaml', rule('    when: resource.id.matches("(?<=y)x")\n'))], 'CEL_UNSAFE', 8, 31);
    });

    it('matches() with an invalid pattern', () => {
      expectOnly([file('a.yaml', rule('    when: resource.id.matches("(a")\n'))], 'CEL_UNSAFE', 8, 31, /not valid RE2 syntax: missing closing \)/);
    });

    it('matches() inside a variable is checked as well', () => {
      expectOnly([file('a.yaml', 'resource: doc\nvariables:\n  v: resource.id.matches(resource.type)\nrules: []\n')], 'CEL_UNSAFE', 5, 26);
    });

    it('a literal CIDR that does not parse', () => {
      expectOnly([file('a.yaml', rule('    when: inCidr(context.ip, "10.0.0.0/33")\n'))], 'CEL_UNSAFE', 8, 30, /prefix length must be 0\.\.32/);
      expectOnly([file('a.yaml', rule('    when: inCidr(context.ip, "10.0.0.300/8")\n'))], 'CEL_UNSAFE', 8, 30, /not an IP address/);
      expectOnly([file('a.yaml', rule('    when: inCidr(context.ip, "2001:db8::/129")\n'))], 'CEL_UNSAFE', 8, 30, /0\.\.128/);
    });
  });

  describe('reporting', () => {
    it('reports several errors in several files at once, in one PolicyLoadError, sorted by file and line', () => {
      const files = [
        file('c.yaml', 'resource: folder\nrules:\n  - name: fine\n    actions: [read]\n    effect: allow\n'),
        // b.yaml: a CEL error (found late, by the compiler) above a structural one (found early, by the parser).
        file('b.yaml', 'resource: doc\nrules:\n  - name: first\n    actions: [read]\n    effect: allow\n    when: subjet.id == "x"\n  - name: second\n    actions: [read]\n    effect: permit\n    rolez: [x]\n'),
        { path: 'a.yaml', text: 'apiVersion: verdict/v9\nkind: ResourcePolicy\nresource: report\nrules:\n  - name: r\n    actions: ["x*y"]\n    effect: allow\n' },
        { path: 'd/e.yaml', text: 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: doc\nrules:\n  - name: r\n    actions: [read\n' },
      ];
      let caught: unknown;
      try {
        compilePolicySet(files);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(PolicyLoadError);
      const error = caught as PolicyLoadError;
      expect(error.code).to.equal('POLICY_LOAD_FAILED');
      expect(error.issues.map(at)).to.deep.equal([
        { file: 'a.yaml', line: 1, column: 13, code: 'UNSUPPORTED_API_VERSION' },
        { file: 'a.yaml', line: 6, column: 15, code: 'INVALID_ACTION' },
        { file: 'b.yaml', line: 8, column: 11, code: 'CEL_TYPE' },
        { file: 'b.yaml', line: 11, column: 13, code: 'INVALID_EFFECT' },
        { file: 'b.yaml', line: 12, column: 5, code: 'UNKNOWN_FIELD' },
        { file: 'd/e.yaml', line: 7, column: 1, code: 'YAML_SYNTAX' },
      ]);
      expect(error.message).to.contain('policy set rejected with 6 errors');
      for (const issue of error.issues) expect(error.message).to.contain(formatIssue(issue));
      expect(formatIssue(error.issues[0]!)).to.match(/^a\.yaml:1:13: UNSUPPORTED_API_VERSION: /);
    });

    it('a valid set loads without issues', () => {
      expect(() => compilePolicySet([file('a.yaml', rule('    when: subject.id == "x"\n'))])).to.not.throw();
    });
  });
});
