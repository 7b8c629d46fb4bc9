/**
 * The fast YAML read (js-yaml, no positions) is used only where it is certain to read what the
 * precise one (`yaml`, with positions) reads. Property: for generated policy files and mutations of
 * them, whenever the fast read is taken, the precise read finds no problem and the same documents.
 * VERDICT_FUZZ_RUNS raises the number of cases (make fuzz).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { parsePolicyFile } from '../../src/policy/parse.js';
import { subsetYamlValue } from '../../src/policy/yaml-subset.js';
import { compileFileUnit, EnvironmentPool, type FileUnit } from '../../src/policy/unit.js';
import { runToEnd } from '../../src/policy/slices.js';
import type { ResourcePolicyDocument } from '../../src/policy/document.js';
import type { DeclarationsDocument } from '../../src/policy/declarations.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 400);

/** Scalars that YAML readers are known to treat differently or specially. */
const TRICKY = [
  'read', 'edit', 'report:*', '*', 'true', 'True', 'false', 'null', '~', '123', '-7', '0x1F', '0o17', '1e3', '.5', '.inf', '.NaN', '1_000',
  '0b101', '012', 'yes', 'no', 'on', 'a: b', 'a #b', 'a#b', '- x', '&a', '*a', '!x', '!!str x', '"q"', "'q'", '{x}', '[x]', 'x, y', '%x', '@x', '`x',
  '? x', '|', '>', 'has(subject.id) && !resource.attributes.locked', 'subject.id == "a\\"b"', 'é', '2001-12-14', '<<', '__proto__', '0', '',
];

const scalarText = fc.oneof({ arbitrary: fc.stringMatching(/^[a-z][a-z0-9_.:\-]{0,12}$/), weight: 6 }, { arbitrary: fc.constantFrom(...TRICKY), weight: 1 });

/** One scalar written in one of YAML's styles (the text may not be valid in that style: that is the point). */
const styled = (indent: string) =>
  fc.tuple(scalarText, fc.constantFrom('plain', 'plain', 'plain', 'single', 'double', 'literal', 'folded', 'literal-', 'folded-', 'folded+', 'plain2')).map(([v, style]) => {
    switch (style) {
      case 'single':
        return `'${v.replaceAll("'", "''")}'`;
      case 'double':
        return JSON.stringify(v);
      case 'literal':
      case 'folded':
      case 'literal-':
      case 'folded-':
      case 'folded+': {
        const head = style.startsWith('literal') ? '|' : '>';
        return `${head}${style.slice(style.startsWith('literal') ? 7 : 6)}\n${indent}  ${v}\n${indent}  ${v} more`;
      }
      case 'plain2':
        return `${v}\n${indent}  continued`;
      default:
        return v;
    }
  });

const list = (indent: string) =>
  fc.oneof(
    fc.array(scalarText, { minLength: 0, maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    fc.array(styled(`${indent}  `), { minLength: 1, maxLength: 3 }).map((xs) => xs.map((x) => `\n${indent}  - ${x}`).join('')),
    scalarText,
  );

const rule = fc.record({
  name: styled('    '),
  actions: list('    '),
  effect: fc.constantFrom('allow', 'deny', 'deny', 'allow', 'permit', '"allow"'),
  roles: fc.option(list('    ')),
  when: fc.option(styled('    ')),
  comment: fc.boolean(),
});

const policyText = fc
  .record({
    resource: styled(''),
    variables: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), styled('  ')), { maxLength: 2 }),
    derived: fc.array(fc.record({ name: styled('    '), when: styled('    ') }), { maxLength: 2 }),
    rules: fc.array(rule, { minLength: 1, maxLength: 3 }),
    docs: fc.integer({ min: 1, max: 2 }),
    leadingMarker: fc.boolean(),
  })
  .map((p) => {
    const doc = [
      'apiVersion: verdict/v1',
      'kind: ResourcePolicy',
      `resource: ${p.resource}`,
      ...(p.variables.length ? ['variables:', ...p.variables.map(([k, v]) => `  ${k}: ${v}`)] : []),
      ...(p.derived.length ? ['derivedRoles:', ...p.derived.flatMap((d) => [`  - name: ${d.name}`, `    when: ${d.when}`])] : []),
      'rules:',
      ...p.rules.flatMap((r) => [
        ...(r.comment ? ['  # a comment'] : []),
        `  - name: ${r.name}`,
        `    actions: ${r.actions}`,
        `    effect: ${r.effect}`,
        ...(r.roles !== null ? [`    roles: ${r.roles}`] : []),
        ...(r.when !== null ? [`    when: ${r.when}`] : []),
      ]),
    ].join('\n');
    return `${p.leadingMarker ? '---\n' : ''}${Array.from({ length: p.docs }, () => doc).join('\n---\n')}\n`;
  });

/** Policy files without tricky scalars in names and lists, so most are valid and take the fast read. */
const validName = fc.stringMatching(/^[a-z][a-z0-9_.:\-]{0,12}$/).filter((v) => !/^[0-9.+-]/.test(v));
const quoted = (v: string) => fc.constantFrom(v, `'${v}'`, JSON.stringify(v));
const validPolicyText = fc
  .record({
    resource: validName.chain(quoted),
    rules: fc.array(
      fc.record({
        name: validName.chain(quoted),
        actions: fc.array(validName, { minLength: 1, maxLength: 3 }),
        flow: fc.boolean(),
        effect: fc.constantFrom('allow', 'deny'),
        when: fc.option(styled('    ')),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map((p) =>
    [
      'apiVersion: verdict/v1',
      'kind: ResourcePolicy',
      `resource: ${p.resource}`,
      'rules:',
      ...p.rules.flatMap((r) => [
        `  - name: ${r.name}`,
        r.flow ? `    actions: [${r.actions.join(', ')}]` : `    actions:\n${r.actions.map((a) => `      - ${a}`).join('\n')}`,
        `    effect: ${r.effect}`,
        ...(r.when !== null ? [`    when: ${r.when}`] : []),
      ]),
      '',
    ].join('\n'),
  );

/** Policy files that compile: roles, derived roles with parent roles, conditions from valid CEL. */
const CONDITIONS = [
  'has(resource.attributes.owner) && resource.attributes.owner == subject.id',
  'has(resource.attributes.locked) && resource.attributes.locked',
  '!has(context.network) || context.network != "vpn"',
  'has(subject.attributes.department) && has(resource.attributes.department) && subject.attributes.department == resource.attributes.department',
];
const roleName = fc.constantFrom('employee', 'editor', 'admin', 'viewer', '*', 'owner', 'approver');
const compilingPolicyText = fc
  .record({
    derived: fc.array(fc.record({ name: fc.constantFrom('owner', 'approver'), parents: fc.array(fc.constantFrom('employee', 'manager'), { minLength: 1, maxLength: 2 }), when: fc.constantFrom(...CONDITIONS) }), { maxLength: 2 }),
    rules: fc.array(fc.record({ roles: fc.option(fc.array(roleName, { minLength: 1, maxLength: 3 })), when: fc.option(fc.constantFrom(...CONDITIONS)), flow: fc.boolean() }), { minLength: 1, maxLength: 5 }),
  })
  .map((p) => {
    const derived = p.derived.filter((d, i) => p.derived.findIndex((e) => e.name === d.name) === i);
    const defined = new Set(derived.map((d) => d.name));
    return [
      'apiVersion: verdict/v1',
      'kind: ResourcePolicy',
      'resource: doc',
      ...(derived.length > 0
        ? ['derivedRoles:', ...derived.flatMap((d) => [`  - name: ${d.name}`, `    parentRoles: [${d.parents.join(', ')}]`, `    when: ${JSON.stringify(d.when)}`])]
        : []),
      'rules:',
      ...p.rules.flatMap((r, i) => {
        const roles = r.roles?.filter((x) => (x !== 'owner' && x !== 'approver') || defined.has(x));
        return [
          `  - name: rule-${i}`,
          '    actions: [read]',
          '    effect: allow',
          ...(roles && roles.length > 0 ? [r.flow ? `    roles: [${roles.map((x) => JSON.stringify(x)).join(', ')}]` : `    roles:\n${roles.map((x) => `      - ${JSON.stringify(x)}`).join('\n')}`] : []),
          ...(r.when !== null ? [`    when: ${JSON.stringify(r.when)}`] : []),
        ];
      }),
      '',
    ].join('\n');
  });

/**
 * Declarations with JSON Schemas written the usual way: flow mappings (nested), flow sequences,
 * numbers and bools among tricky scalars and keys, with uneven spacing and the odd trailing comma.
 */
const FLOW_TRICKY_KEYS = ['type', 'enum', 'items', 'a.b', '_x', '$ref', 'a b', '"q"', "'q'", '123', 'true', 'null', 'x:y', '__proto__', '<<', '? k', 'é'];
const flowScalar = fc.oneof(
  { arbitrary: fc.constantFrom('string', 'number', 'object', '0', '-7', '12', '2.5', '-0', '-0.0', '1.', '.5', '007', '1e3', '+1', '0x1F', 'true', 'false', 'True', 'null', '~'), weight: 3 },
  { arbitrary: scalarText, weight: 2 },
  { arbitrary: scalarText.map((v) => JSON.stringify(v)), weight: 1 },
  { arbitrary: scalarText.map((v) => `'${v.replaceAll("'", "''")}'`), weight: 1 },
);
const spaced = fc.constantFrom('', ' ', ' ', '  ');
const flowValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    flowScalar,
    fc.tuple(spaced, fc.array(tie('value'), { maxLength: 3 }), spaced, fc.boolean()).map(([a, xs, b, trailing]) => `[${a}${xs.join(`,${b}`)}${trailing && xs.length ? ',' : ''}${b}]`),
    fc
      .tuple(spaced, fc.array(fc.tuple(fc.oneof({ arbitrary: fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,6}$/), weight: 4 }, { arbitrary: fc.constantFrom(...FLOW_TRICKY_KEYS), weight: 1 }), fc.constantFrom(': ', ':  ', ':', ' : '), tie('value')), { maxLength: 3 }), spaced, fc.boolean())
      .map(([a, pairs, b, trailing]) => `{${a}${pairs.map(([k, sep, v]) => `${k}${sep}${v}`).join(`,${b}`)}${trailing && pairs.length ? ',' : ''}${b}}`),
  ),
})).value;

const declarationsText = fc
  .record({
    subject: fc.option(flowValue),
    types: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9.]{0,8}$/), fc.array(fc.tuple(fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,6}$/), flowValue), { maxLength: 4 }), fc.constantFrom('false', 'true', '{ type: string }', 'no')), { maxLength: 3 }),
  })
  .map((d) =>
    [
      'apiVersion: verdict/v1',
      'kind: Declarations',
      'roles: [employee, admin]',
      'schemas:',
      '  mode: warn',
      ...(d.subject !== null ? [`  subject: ${d.subject}`] : []),
      ...(d.types.length ? ['  resources:'] : []),
      ...d.types.flatMap(([type, props, extra]) => [`    ${type}:`, '      type: object', ...(props.length ? ['      properties:', ...props.map(([k, v]) => `        ${k}: ${v}`)] : []), `      additionalProperties: ${extra}`]),
      '',
    ].join('\n'),
  );

/** Small edits with characters that matter to YAML. */
const mutated = fc.tuple(fc.oneof(policyText, validPolicyText, declarationsText), fc.array(fc.tuple(fc.nat(), fc.constantFrom(' ', '\n', '  ', '-', ':', '#', "'", '"', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '%', '?', '\t', '\r', '---\n', 'x'), fc.nat(3)), { maxLength: 3 })).map(([text, edits]) => {
  let t = text;
  for (const [at, ch, del] of edits) {
    const i = at % (t.length + 1);
    t = t.slice(0, i) + ch + t.slice(i + del);
  }
  return t;
});

/** A document without positions (the fast read has none) and without functions. */
function comparable(doc: ResourcePolicyDocument): unknown {
  return JSON.parse(JSON.stringify(doc, (key, value: unknown) => (key === 'position' || key === 'positionAt' || key === 'rolePositions' || key === 'parentRolePositions' ? undefined : value)));
}

/** Declarations without positions; schemas as read (deep equality tells -0 from 0). */
function comparableDeclarations(d: DeclarationsDocument): unknown {
  return { roles: d.roles.map((r) => r.name), mode: d.mode, subject: d.subject?.schema, resources: [...d.resources].map(([type, s]) => [type, s.schema]) };
}

function sameReading(text: string): boolean {
  const file = { path: 'p.yaml', text };
  const fast = parsePolicyFile(file, false);
  if (fast.precise) return true; // the fast read declined: the precise one is used, nothing to compare
  const precise = parsePolicyFile(file, true);
  expect(fast.issues, 'a fast read that is used has no issue').to.deep.equal([]);
  expect(precise.issues, `precise read of a file the fast read accepted:\n${text}`).to.deep.equal([]);
  expect(fast.documents.map(comparable), text).to.deep.equal(precise.documents.map(comparable));
  expect(fast.declarations.map(comparableDeclarations), text).to.deep.equal(precise.declarations.map(comparableDeclarations));
  return true;
}

describe('fuzz: the fast YAML read agrees with the precise one', function () {
  this.timeout(60_000);

  it('on generated policy files', () => {
    let fastTaken = 0;
    fc.assert(
      fc.property(fc.oneof(policyText, validPolicyText), (text) => {
        if (!parsePolicyFile({ path: 'p.yaml', text }, false).precise) fastTaken++;
        return sameReading(text);
      }),
      { numRuns: RUNS },
    );
    // The property would hold vacuously if the fast read were never taken.
    expect(fastTaken).to.be.greaterThan(RUNS / 10);
  });

  it('compiled, a fast-read file lists the same role references and read sites as a precise one (positions aside)', () => {
    // Files that compile (valid CEL, roles, derived roles with parent roles), so most take the fast read.
    // A fast-read unit lists its role references only when asked (FastReadReferences).
    const references = (u: FileUnit) =>
      u.documents.map((d) => ({
        roles: d.references.roles.map((r) => [r.name, r.where, r.parent]),
        reads: d.references.readGroups.map((g) => [g.where, g.raw.map((r) => `${r.root}.${r.path.join('.')}`)]),
      }));
    let fastTaken = 0;
    fc.assert(
      fc.property(compilingPolicyText, (text) => {
        const file = { path: 'p.yaml', text, sha256: 'x' };
        const fast = runToEnd(compileFileUnit(file, new EnvironmentPool(), undefined, false));
        const precise = runToEnd(compileFileUnit(file, new EnvironmentPool(), undefined, true));
        if (!fast.precise) fastTaken++;
        expect(references(fast), text).to.deep.equal(references(precise));
        expect(fast.issues).to.deep.equal(precise.issues);
      }),
      { numRuns: RUNS },
    );
    expect(fastTaken).to.be.greaterThan(RUNS / 10);
  });

  it('on mutated policy files', () => {
    fc.assert(fc.property(mutated, sameReading), { numRuns: RUNS });
  });

  it('on declarations files with flow mappings, numbers and bools', () => {
    let fastTaken = 0;
    let subsetTaken = 0;
    fc.assert(
      fc.property(declarationsText, (text) => {
        if (!parsePolicyFile({ path: 'p.yaml', text }, false).precise) fastTaken++;
        if (subsetYamlValue(text) !== undefined) subsetTaken++;
        return sameReading(text);
      }),
      { numRuns: RUNS },
    );
    expect(fastTaken).to.be.greaterThan(RUNS / 20);
    expect(subsetTaken).to.be.greaterThan(RUNS / 20);
  });

  it('the plain-subset reader (tried first) reads exactly what `yaml` reads, with no error, whenever it reads a file', () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(policyText, validPolicyText, declarationsText, mutated), (text) => {
        const value = subsetYamlValue(text);
        if (value === undefined) return true;
        taken++;
        const docs = parseAllDocuments(text);
        const list = Array.isArray(docs) ? docs : [docs];
        expect(list.length, text).to.equal(1);
        expect(list[0]!.errors, text).to.deep.equal([]);
        expect(value, text).to.deep.equal(list[0]!.toJS());
        return true;
      }),
      { numRuns: RUNS },
    );
    expect(taken).to.be.greaterThan(RUNS / 50);
  });

  it('takes the fast read for the generated benchmark shape and declines anchors, tags, tabs and typed scalars', () => {
    const plain = 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: doc\nrules:\n  - name: r\n    actions: [read, "x:*"]\n    effect: allow\n    when: >-\n      has(resource.attributes.a) &&\n      !resource.attributes.b\n';
    expect(parsePolicyFile({ path: 'p.yaml', text: plain }, false).precise).to.equal(false);
    // That shape is read by the plain-subset reader, without js-yaml.
    expect(subsetYamlValue(plain)).to.deep.equal({ apiVersion: 'verdict/v1', kind: 'ResourcePolicy', resource: 'doc', rules: [{ name: 'r', actions: ['read', 'x:*'], effect: 'allow', when: 'has(resource.attributes.a) && !resource.attributes.b' }] });
    // White space YAML does not count as such (a no-break space), a control character, a comment
    // line inside folded text, a second document: the subset reader leaves those to the libraries.
    for (const text of [plain.replace('  - name: r', '\u00a0 - name: r'), plain.replace('resource: doc', 'resource: d\u0007oc'), plain.replace('      !resource', '      # x\n      !resource'), `${plain}---\n${plain}`]) {
      expect(subsetYamlValue(text), text).to.equal(undefined);
    }
    for (const text of [
      plain.replace('resource: doc', 'resource: &d doc'),
      plain.replace('effect: allow', 'effect: !!str allow').replace('rules:', 'x: &a 1\nrules:'),
      plain.replace('    effect', '\teffect'),
      plain.replace('resource: doc', 'resource: 0x10'),
      plain.replace('resource: doc', 'resource: "123"'),
      // A flow sequence continued on a less indented line: js-yaml accepts it, yaml does not.
      plain.replace('actions: [read, "x:*"]', 'actions: [read,\n, "x:*"]'),
      plain.replace('resource: doc', 'resource: "d\n  oc"'),
      // js-yaml takes `#` right after a flow sequence as a comment; yaml reports an error.
      plain.replace('actions: [read, "x:*"]', 'actions: [read, "x:*"]#'),
      // An explicit tag: js-yaml reads `effect: !` as null, yaml as "" (found by the property below at 5,000 runs).
      plain.replace('effect: allow', 'effect: !'),
      plain.replace('effect: allow', 'effect: ! allow'),
      plain.replace('actions: [read, "x:*"]', 'actions: !!seq [read, "x:*"]'),
      plain.replace('resource: doc', 'resource: !!str 12'),
      'apiVersion: verdict/v1\nkind: Declarations\nroles: [a]\nschemas:\n  resources:\n    x:\n      type: object\n      additionalProperties: !\n',
    ]) {
      expect(parsePolicyFile({ path: 'p.yaml', text }, false).precise, text).to.equal(true);
    }
  });
});
