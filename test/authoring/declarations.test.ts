import { expect } from 'chai';
import { compilePolicySet, PolicyCompiler, withDigest, type PolicyIssue } from '../../src/policy/index.js';
import { decide } from '../../src/engine/index.js';
import type { Attributes } from '../../src/engine/request.js';
import { editDistance, nearestNames } from '../../src/engine/suggest.js';
import { parsePolicyFile } from '../../src/policy/parse.js';
import { file, loadIssues, type File } from '../engine/helpers.js';

/** The declarations file of the invoice fixture; `extra` lines go under schemas. */
function declarations(extra = ''): File {
  return {
    path: '_declarations.yaml',
    text: `apiVersion: verdict/v1
kind: Declarations
roles: [employee, finance, admin]
schemas:
  mode: warn
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
        submitter: { type: string }
        status: { type: string, enum: [draft, submitted, approved] }
        meta:
          type: object
          properties:
            currency: { type: string }
      required: [amount]
${extra}`,
  };
}

/** An invoice policy with a derived role and the rules given (body lines from file line 14). */
function invoice(rules: string): File {
  return file(
    'invoice.yaml',
    `resource: invoice
derivedRoles:
  - name: invoice_submitter
    parentRoles: [employee]
    when: resource.attributes.submitter == subject.id
variables:
  big: resource.attributes.amount > 1000.0
rules:
  - name: finance-approves
    actions: [approve]
    effect: allow
    roles: [finance]
${rules}`,
  );
}

function codes(issues: readonly PolicyIssue[]): string[] {
  return issues.map((i) => `${i.file}:${i.line}:${i.column} ${i.code}`);
}

describe('declarations: roles and attribute schemas checked at load', () => {
  it('a misspelt role next to a derived role is a load error with the suggestion', () => {
    const issues = loadIssues(
      declarations(),
      invoice(`  - name: no-self-approval
    actions: [approve]
    effect: deny
    roles: [invoice_submiter]
`),
    );
    expect(codes(issues)).to.deep.equal(['invoice.yaml:18:13 UNDECLARED_ROLE']);
    expect(issues[0]!.message).to.equal(
      'rule "no-self-approval": role "invoice_submiter" is neither declared (declarations: roles) nor a derived role for resource "invoice" (did you mean "invoice_submitter"?)',
    );
  });

  it('the same policy loads with the role spelt right, and the deny applies', () => {
    const set = compilePolicySet([
      declarations(),
      invoice(`  - name: no-self-approval
    actions: [approve]
    effect: deny
    roles: [invoice_submitter]
`),
    ]);
    const d = decide(set, {
      subject: { type: 'user', id: 'ann', roles: ['employee', 'finance'], attributes: {} },
      action: 'approve',
      resource: { type: 'invoice', id: 'i1', attributes: { amount: 5, submitter: 'ann' } },
      context: {},
    }, { now: new Date(0) });
    expect([d.effect, d.rule]).to.deep.equal(['DENY', 'no-self-approval']);
  });

  it('a misspelt parent role is a load error; a derived role as a parent is explained', () => {
    const issues = loadIssues(declarations(), file('x.yaml', `resource: invoice
derivedRoles:
  - name: a
    parentRoles: [employe]
    when: "true"
  - name: b
    parentRoles: [a]
    when: "true"
rules: []
`));
    expect(codes(issues)).to.deep.equal(['x.yaml:6:19 UNDECLARED_ROLE', 'x.yaml:9:19 UNDECLARED_ROLE']);
    expect(issues[0]!.message).to.match(/parent role "employe" is not a declared role \(did you mean "employee"\?\)/);
    expect(issues[1]!.message).to.match(/it is a derived role; parentRoles must be static roles/);
  });

  it('a misspelt attribute is a load error with the suggestion, at the name itself', () => {
    const issues = loadIssues(
      declarations(),
      invoice(`  - name: big-needs-admin
    actions: [approve]
    effect: deny
    when: resource.attributes.amout > 10000.0 && !("admin" in subject.roles)
`),
    );
    expect(codes(issues)).to.deep.equal(['invoice.yaml:18:31 UNKNOWN_ATTRIBUTE']);
    expect(issues[0]!.message).to.equal('rule "big-needs-admin": resource.attributes.amout is not declared in schemas.resources.invoice (did you mean "amount"?)');
  });

  it('nested paths, has(), index access and variables are all checked', () => {
    const issues = loadIssues(
      declarations(),
      file('y.yaml', `resource: invoice
variables:
  eur: has(resource.attributes.meta.curency) && resource.attributes["meta"].currency == "EUR"
  dept: subject.attributes.departmnet
rules:
  - name: r
    actions: [read]
    effect: allow
    when: variables.eur && subject.attributes["limt"] > 1.0
`),
    );
    expect(issues.map((i) => i.message)).to.deep.equal([
      'variables.eur: resource.attributes.meta.curency is not declared in schemas.resources.invoice (did you mean "currency"?)',
      'variables.dept: subject.attributes.departmnet is not declared in schemas.subject (did you mean "department"?)',
      'rule "r": subject.attributes.limt is not declared in schemas.subject (did you mean "limit"?)',
    ]);
    expect(codes(issues)).to.deep.equal(['y.yaml:5:37 UNKNOWN_ATTRIBUTE', 'y.yaml:6:28 UNKNOWN_ATTRIBUTE', 'y.yaml:11:48 UNKNOWN_ATTRIBUTE']);
  });

  it('an open level (additionalProperties: true) is not checked below it; the level above is', () => {
    const withTagged: File = {
      path: '_declarations.yaml',
      text: declarations().text.replace('  resources:\n', '  resources:\n    tagged:\n      type: object\n      properties:\n        labels: { type: object, additionalProperties: true }\n'),
    };
    const tagged = (path: string) => file('z.yaml', `resource: tagged\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: resource.attributes.${path} == 1.0\n`);
    expect(compilePolicySet([withTagged, tagged('labels.anything.at.all')]).ruleCount).to.equal(1);
    expect(loadIssues(withTagged, tagged('lables.x')).map((i) => i.message)).to.deep.equal(['rule "r": resource.attributes.lables is not declared in schemas.resources.tagged (did you mean "labels"?)']);
  });

  it('a "*" policy may read a path any resource schema declares, not one none does', () => {
    const issues = loadIssues(declarations(), file('common.yaml', `resource: "*"
rules:
  - name: r
    actions: ["*"]
    effect: deny
    when: has(resource.attributes.status) && has(resource.attributes.stauts)
`));
    expect(issues.map((i) => i.message)).to.deep.equal(['rule "r": resource.attributes.stauts is not declared in any schemas.resources entry (did you mean "status"?)']);
  });

  it('a schema that does not compile, two declarations documents, and a bad mode are load errors', () => {
    const issues = loadIssues(
      { path: '_declarations.yaml', text: 'apiVersion: verdict/v1\nkind: Declarations\nroles: [a]\nschemas:\n  mode: strict\n  subject:\n    type: object\n    porperties: {}\n' },
      { path: 'more.yaml', text: 'apiVersion: verdict/v1\nkind: Declarations\nroles: [b]\n' },
      file('p.yaml', 'resource: x\nrules: []\n'),
    );
    expect(codes(issues)).to.deep.equal(['_declarations.yaml:5:9 INVALID_VALUE', '_declarations.yaml:7:5 INVALID_SCHEMA', 'more.yaml:1:1 DUPLICATE_DECLARATIONS']);
    expect(issues[1]!.message).to.match(/porperties/);
  });

  it('an invalid property schema is reported for each type that has it, in ajv\'s words for the whole schema, however many types share it', () => {
    const decl = (resources: string) => ({ path: '_declarations.yaml', text: `apiVersion: verdict/v1\nkind: Declarations\nroles: [a]\nschemas:\n  resources:\n${resources}` });
    const type = (name: string, body: string) => `    ${name}:\n      type: object\n      properties:\n        ok: { type: string }\n${body}`;
    const p = file('p.yaml', 'resource: x\nrules: []\n');
    const typeIs = 'must be equal to one of the allowed values, data/properties/amount/type must be array, data/properties/amount/type must match a schema in anyOf';
    const issues = loadIssues(decl(type('x', '        amount: { type: numbr }\n') + type('y', '        amount: { type: numbr }\n') + type('z', '      required: [ok, ok]\n') + type('w', '      additionalProperties: { minimum: x }\n')), p);
    expect(issues.map((i) => `${i.line}:${i.column} ${i.message}`)).to.deep.equal([
      `7:7 schemas.resources.x: data/properties/amount/type ${typeIs}`,
      `12:7 schemas.resources.y: data/properties/amount/type ${typeIs}`,
      '17:7 schemas.resources.z: data/required must NOT have duplicate items (items ## 1 and 0 are identical)',
      '22:7 schemas.resources.w: data/additionalProperties/minimum must be number',
    ]);
  });

  it('a property schema ajv\'s strict mode refuses is a load error, though it is valid JSON Schema (not left to the first request)', () => {
    const decl = { path: '_declarations.yaml', text: `apiVersion: verdict/v1\nkind: Declarations\nroles: [a]\nschemas:\n  resources:\n    x:\n      type: object\n      properties:\n        email: { type: string, format: email }\n        amount: { minimum: 0 }\n        code: { type: [string, number] }\n` };
    const issues = loadIssues(decl, file('p.yaml', 'resource: x\nrules: []\n'));
    expect(issues.map((i) => `${i.line}:${i.column} ${i.code}`)).to.deep.equal(['7:7 INVALID_SCHEMA']);
    expect(issues[0]!.message).to.match(/unknown format "email"/);
    // each alone is refused too
    for (const body of ['amount: { minimum: 0 }', 'code: { type: [string, number] }']) {
      const one = { path: '_declarations.yaml', text: decl.text.replace(/ {8}email.*\n {8}amount.*\n {8}code.*\n/, ` ${' '.repeat(7)}${body}\n`) };
      expect(codes(loadIssues(one, file('p.yaml', 'resource: x\nrules: []\n'))), body).to.deep.equal(['_declarations.yaml:7:7 INVALID_SCHEMA']);
    }
  });

  it('a set without declarations loads, with a one-line warning naming what it misses', () => {
    const candidate = new PolicyCompiler().compileNow([withDigest(file('p.yaml', 'resource: x\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    roles: [anything]\n'))]);
    expect(candidate.issues).to.deep.equal([]);
    expect(candidate.warnings).to.have.length(1);
    expect(candidate.warnings[0]).to.match(/no declarations.*role names and attribute paths are not checked/);
  });

  it('a change to the declarations alone re-checks the unchanged policy files', () => {
    const compiler = new PolicyCompiler();
    const policy = withDigest(invoice(`  - name: deny-drafts
    actions: [approve]
    effect: deny
    when: resource.attributes.status == "draft"
`));
    const first = compiler.compileNow([withDigest(declarations()), policy]);
    expect(first.issues).to.deep.equal([]);
    compiler.commit(first);
    const narrowed = withDigest({ path: '_declarations.yaml', text: declarations().text.replace('        status: { type: string, enum: [draft, submitted, approved] }\n', '') });
    const second = compiler.compileNow([narrowed, policy]);
    expect(codes(second.issues)).to.deep.equal(['invoice.yaml:18:31 UNKNOWN_ATTRIBUTE']);
  });

  it('a declarations file reads the same the fast way as the precise way, numbers included; binary literals go the precise way', () => {
    const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'position' || k === 'positions' ? undefined : x instanceof Map ? Object.fromEntries(x) : x)));
    const text = declarations().text.replace('{ type: number }', '{ type: number, minimum: -1.5, maximum: 1e3, multipleOf: 0.5 }');
    const fast = parsePolicyFile({ path: 'd.yaml', text }, false);
    const precise = parsePolicyFile({ path: 'd.yaml', text }, true);
    expect([fast.precise, fast.issues]).to.deep.equal([false, []]);
    expect(strip(fast.declarations)).to.deep.equal(strip(precise.declarations));
    expect(strip(fast.declarations)[0].resources.invoice.schema.properties.amount).to.deep.equal({ type: 'number' });
    expect(parsePolicyFile({ path: 'd.yaml', text: text.replace('maximum: 1e3', 'maximum: 0b11') }, false).precise).to.equal(true);
  });

  it('a schema holding .inf does not share the validator of the same schema with null (JSON writes both as null)', () => {
    const set = compilePolicySet([
      {
        path: '_declarations.yaml',
        text: `apiVersion: verdict/v1
kind: Declarations
roles: [employee]
schemas:
  mode: enforce
  resources:
    a:
      type: object
      properties:
        x: { const: null }
    b:
      type: object
      properties:
        x: { const: .inf }
`,
      },
      file('a.yaml', 'resource: a\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    roles: [employee]\n'),
      file('b.yaml', 'resource: b\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    roles: [employee]\n'),
    ]);
    const ask = (type: string) =>
      decide(set, { subject: { id: 'u', type: 'user', roles: ['employee'], attributes: {} }, action: 'read', resource: { type, id: '1', attributes: { x: null } }, context: {} }, { now: new Date(0) });
    expect(ask('a').effect).to.equal('ALLOW');
    const b = ask('b');
    expect([b.effect, b.reason]).to.deep.equal(['DENY', 'SCHEMA_MISMATCH']);
  });

  it('types whose schemas share a shape share the work, never an answer: each type is checked against its own schema, at load and per request', () => {
    // a, b and d list the same property schemas (one object each: the reader shares a repeated flow
    // mapping); a and d also require owner (one shape), b does not; c types amount as a string, e has
    // no amount. Every policy has the same condition, so its reads are one list checked under each shape.
    const type = (name: string, amount: string | undefined, required: boolean) =>
      `    ${name}:\n      type: object\n      properties:\n${amount ? `        amount: ${amount}\n` : ''}        owner: { type: string }\n${required ? '      required: [owner]\n' : ''}`;
    const decl = {
      path: '_declarations.yaml',
      text: `apiVersion: verdict/v1\nkind: Declarations\nroles: [employee]\nschemas:\n  mode: enforce\n  resources:\n${type('a', '{ type: number }', true)}${type('b', '{ type: number }', false)}${type('c', '{ type: string }', true)}${type('d', '{ type: number }', true)}${type('e', undefined, true)}`,
    };
    const policyOf = (t: string) =>
      file(`${t}.yaml`, `resource: ${t}\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    roles: [employee]\n    when: resource.attributes.amount > 10.0 && resource.attributes.owner == subject.id\n`);
    const issues = loadIssues(decl, ...['a', 'b', 'c', 'd', 'e'].map(policyOf));
    expect(codes(issues)).to.deep.equal(['c.yaml:9:31 ATTRIBUTE_TYPE', 'e.yaml:9:31 UNKNOWN_ATTRIBUTE']);
    expect(issues[1]!.message).to.match(/resource\.attributes\.amount is not declared in schemas\.resources\.e/);
    // Without c and e the set loads; the request check follows each type's own `required`.
    const set = compilePolicySet([decl, ...['a', 'b', 'd'].map(policyOf)]);
    const ask = (t: string, attributes: Attributes) =>
      decide(set, { subject: { id: 'u', type: 'user', roles: ['employee'], attributes: {} }, action: 'read', resource: { type: t, id: '1', attributes }, context: {} }, { now: new Date(0) });
    expect(['a', 'b', 'd'].map((t) => ask(t, { amount: 20, owner: 'u' }).effect)).to.deep.equal(['ALLOW', 'ALLOW', 'ALLOW']);
    expect(['a', 'b', 'd'].map((t) => ask(t, { amount: 20 }).reason)).to.deep.equal(['SCHEMA_MISMATCH', 'NO_MATCHING_RULE', 'SCHEMA_MISMATCH']);
    expect(ask('d', { amount: 'x', owner: 'u' }).schemaProblems).to.deep.equal(['resource.attributes/amount: must be number']);
  });

  it('at run time, a "No such key" error names the near key the request does have (no declarations needed)', () => {
    const set = compilePolicySet([file('p.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: subject.attributes.is_submiter\n')]);
    const d = decide(set, {
      subject: { type: 'user', id: 'a', roles: [], attributes: { is_submitter: true } },
      action: 'read',
      resource: { type: 'doc', id: 'd', attributes: {} },
      context: {},
    }, { now: new Date(0) });
    expect(d.effect).to.equal('DENY');
    expect(d.errors.map((e) => e.message)).to.deep.equal(['No such key: is_submiter (did you mean "is_submitter"?)']);
  });

  it('run-time suggestions are bounded: at most 2 per check, whatever the request sends', () => {
    const rules = [1, 2, 3].map((i) => `  - name: r${i}\n    actions: [read]\n    effect: allow\n    when: subject.attributes.is_submiter${i}\n`).join('');
    const set = compilePolicySet([file('p.yaml', `resource: doc\nrules:\n${rules}`)]);
    const attributes = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`is_submitter${i}`, true]));
    const d = decide(set, { subject: { type: 'user', id: 'a', roles: [], attributes }, action: 'read', resource: { type: 'doc', id: 'd', attributes: {} }, context: {} }, { now: new Date(0) });
    expect(d.errors).to.have.length(3);
    expect(d.errors.filter((e) => e.message.includes('did you mean')).length).to.equal(2);
  });

  it('did-you-mean: transpositions count as one edit; far names are not suggested', () => {
    expect(editDistance('submiter', 'submitter')).to.equal(1);
    expect(editDistance('amuont', 'amount')).to.equal(1);
    expect(nearestNames('amout', ['amount', 'owner', 'status'])).to.deep.equal(['amount']);
    expect(nearestNames('xyz', ['amount', 'owner'])).to.deep.equal([]);
  });
});
