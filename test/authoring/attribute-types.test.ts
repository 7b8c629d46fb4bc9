import { expect } from 'chai';
import { compilePolicySet, type PolicyIssue } from '../../src/policy/index.js';
import { file, loadIssues, type File } from '../engine/helpers.js';

/** Declarations with typed paths, an open object (labels) and an untyped one (anything). */
const DECLARATIONS: File = {
  path: '_declarations.yaml',
  text: `apiVersion: verdict/v1
kind: Declarations
roles: [employee]
schemas:
  subject:
    type: object
    properties:
      department: { type: string }
      limit: { type: number }
  resources:
    invoice:
      type: object
      properties:
        amount: { type: number }
        count: { type: integer }
        submitter: { type: string }
        status: { enum: [draft, submitted] }
        flagged: { type: boolean }
        tags: { type: array, items: { type: string } }
        maybe: { type: [number, "null"] }
        meta:
          type: object
          properties:
            currency: { type: string }
        labels: { type: object, additionalProperties: true }
        anything: {}
`,
};

/** A policy whose one rule's condition is `when` (file line 8, from column 11). */
function rule(when: string): File {
  return file('t.yaml', `resource: invoice\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: ${when}\n`);
}

function typeIssues(when: string): PolicyIssue[] {
  return [...loadIssues(DECLARATIONS, rule(when))];
}

/** Column of the last name of the first `path` in the condition (line 8 starts with "    when: "). */
const col = (when: string, path: string) => 11 + when.indexOf(path) + path.lastIndexOf('.') + 1;

describe('declarations: attribute types checked at load (ATTRIBUTE_TYPE)', () => {
  const rejected: [string, string, string][] = [
    ['resource.attributes.amount > "100"', 'resource.attributes.amount', 'is declared as number in schemas.resources.invoice, but is compared (>) with a string'],
    ['resource.attributes.amount.startsWith("1")', 'resource.attributes.amount', 'is declared as number in schemas.resources.invoice, but is used with startsWith(), which needs a string'],
    ['resource.attributes.count.matches("^1")', 'resource.attributes.count', 'is declared as integer in schemas.resources.invoice, but is used with matches(), which needs a string'],
    ['subject.id in resource.attributes.amount', 'resource.attributes.amount', 'is declared as number in schemas.resources.invoice, but is the right side of `in`, which needs a list or map'],
    ['resource.attributes.submitter * 2 > 10', 'resource.attributes.submitter', 'is declared as string in schemas.resources.invoice, but is used in arithmetic (*), which needs a number'],
    ['resource.attributes.submitter + 1 > 2', 'resource.attributes.submitter', 'is declared as string in schemas.resources.invoice, but is added (+) to a number'],
    ['resource.attributes.submitter == -1', 'resource.attributes.submitter', 'is declared as string in schemas.resources.invoice, but is compared (==) with a number'],
    ['resource.attributes.status == 1', 'resource.attributes.status', 'is declared as string in schemas.resources.invoice, but is compared (==) with a number'],
    ['resource.attributes.submitter && true', 'resource.attributes.submitter', 'is declared as string in schemas.resources.invoice, but is used as a condition (&&), which needs a bool'],
    ['size(resource.attributes.amount) > 0', 'resource.attributes.amount', 'is declared as number in schemas.resources.invoice, but is used with size(), which needs a string, list or map'],
    ['resource.attributes.meta.currency > 1.5', 'resource.attributes.meta.currency', 'is declared as string in schemas.resources.invoice, but is compared (>) with a number'],
    ['resource.attributes.tags == "a"', 'resource.attributes.tags', 'is declared as array in schemas.resources.invoice, but is compared (==) with a string'],
    [
      'resource.attributes.amount == subject.attributes.department',
      'resource.attributes.amount',
      'is declared as number in schemas.resources.invoice, but is compared (==) with subject.attributes.department, declared as string',
    ],
    ['resource.attributes.maybe == "x"', 'resource.attributes.maybe', 'is declared as number or null in schemas.resources.invoice, but is compared (==) with a string'],
  ];
  for (const [when, path, message] of rejected) {
    it(`rejects ${when} at the attribute's position`, () => {
      const issues = typeIssues(when);
      expect(issues.map((i) => `${i.file}:${i.line}:${i.column} ${i.code}`)).to.deep.equal([`t.yaml:8:${col(when, path)} ATTRIBUTE_TYPE`]);
      expect(issues[0]!.message).to.equal(`rule "r": ${path} ${message}`);
    });
  }

  it('checks derived roles and variables too', () => {
    const issues = loadIssues(
      DECLARATIONS,
      file('v.yaml', `resource: invoice
derivedRoles:
  - name: rich
    parentRoles: [employee]
    when: subject.attributes.limit.endsWith("0")
variables:
  big: resource.attributes.flagged > 1000
rules:
  - name: r
    actions: [read]
    effect: allow
    roles: [rich]
    when: variables.big
`),
    );
    expect(issues.map((i) => `${i.line}:${i.column} ${i.code} ${i.message}`)).to.deep.equal([
      '7:30 ATTRIBUTE_TYPE derived role "rich": subject.attributes.limit is declared as number in schemas.subject, but is used with endsWith(), which needs a string',
      '9:28 ATTRIBUTE_TYPE variables.big: resource.attributes.flagged is declared as boolean in schemas.resources.invoice, but is compared (>) with a number',
    ]);
  });

  it('checks usage limits: when, key and cost read paths like conditions do', () => {
    const issues = loadIssues(
      DECLARATIONS,
      file('l.yaml', `resource: invoice
rules: []
limits:
  - name: l
    actions: [read]
    when: resource.attributes.amount > "5"
    key: resource.attributes.submitter
    rate: 10/1m
  - name: m
    actions: [read]
    key: resource.attributes.submiter
    quota: {count: 5, period: day}
    cost: "int(resource.attributes.count)"
`),
    );
    expect(issues.map((i) => `${i.line}:${i.column} ${i.code} ${i.message}`)).to.deep.equal([
      '8:31 ATTRIBUTE_TYPE limit "l": when: resource.attributes.amount is declared as number in schemas.resources.invoice, but is compared (>) with a string',
      '13:30 UNKNOWN_ATTRIBUTE limit "m": key: resource.attributes.submiter is not declared in schemas.resources.invoice (did you mean "submitter"?)',
    ]);
  });

  it('accepts typed uses: int and double literals on number and integer paths, strings, lists, bools, null', () => {
    const set = compilePolicySet([
      DECLARATIONS,
      rule(
        'resource.attributes.amount > 100 && resource.attributes.amount < 1000.5 && resource.attributes.count == 3 && resource.attributes.amount == resource.attributes.count' +
          ' && resource.attributes.submitter.startsWith("a") && "x" in resource.attributes.tags && resource.attributes.flagged && size(resource.attributes.tags) > 0' +
          ' && resource.attributes.meta.currency == "EUR" && resource.attributes.maybe == null && resource.attributes.maybe > 1 && resource.attributes.status in ["draft"]' +
          ' && resource.attributes.amount - 1 > -2.5 && resource.attributes.submitter + "x" == subject.attributes.department && subject.attributes.limit >= resource.attributes.amount',
      ),
    ]);
    expect(set.ruleCount).to.equal(1);
  });

  it('accepts any use of a path under an open schema or without a declared type', () => {
    const set = compilePolicySet([
      DECLARATIONS,
      rule('resource.attributes.labels.x > "a" && resource.attributes.labels.y > 1 && resource.attributes.anything > 1 && resource.attributes.anything.startsWith("a") && subject.id in resource.attributes.anything'),
    ]);
    expect(set.ruleCount).to.equal(1);
  });
});
