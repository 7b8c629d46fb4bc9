/**
 * Property-based fuzzing of the policy loader and the engine behind it, with fast-check:
 *
 *  - generated policies (rules with effects, actions, static and derived roles, variables, and
 *    conditions built from a small grammar whose meaning is computed here independently, CEL's
 *    error semantics included) always load, and every decision equals the reference decision:
 *    deny overrides allow, an erroring deny denies, an erroring allow does not apply, nothing
 *    applies → deny. In particular the engine never allows what the reference denies;
 *  - mutated policy files (characters, YAML and CEL tokens inserted, ranges deleted, lines repeated
 *    or swapped) either load or are rejected with a PolicyLoadError, never anything else, quickly;
 *    when one loads, deciding with it never throws.
 *
 * VERDICT_FUZZ_RUNS sets the number of cases per property (`make fuzz` runs many more).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { decide, type CheckRequest, type CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet, PolicyLoadError } from '../../src/policy/index.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 150);
const LOAD_MS = 3000;

// ---- the condition grammar and its reference meaning --------------------------------------------

type Cond =
  | { k: 'lit'; v: boolean }
  | { k: 'level'; op: '>=' | '<'; n: number; guarded: boolean }
  | { k: 'owner' }
  | { k: 'role'; role: string }
  | { k: 'tag'; tag: string }
  | { k: 'prefix'; p: string }
  | { k: 'var'; name: string }
  | { k: 'and' | 'or'; a: Cond; b: Cond }
  | { k: 'not'; a: Cond };

type Value = true | false | 'error';

function cel(c: Cond): string {
  switch (c.k) {
    case 'lit':
      return String(c.v);
    case 'level':
      return c.guarded ? `(has(subject.attributes.level) && subject.attributes.level ${c.op} ${c.n})` : `subject.attributes.level ${c.op} ${c.n}`;
    case 'owner':
      return 'resource.attributes.owner == subject.id';
    case 'role':
      return `"${c.role}" in subject.roles`;
    case 'tag':
      return `resource.attributes.tags.exists(t, t == "${c.tag}")`;
    case 'prefix':
      return `resource.id.matches("^${c.p}")`;
    case 'var':
      return `variables.${c.name}`;
    case 'and':
      return `(${cel(c.a)} && ${cel(c.b)})`;
    case 'or':
      return `(${cel(c.a)} || ${cel(c.b)})`;
    case 'not':
      return `!(${cel(c.a)})`;
  }
}

interface Req {
  id: string;
  roles: string[];
  level: number | string | undefined;
  resourceId: string;
  owner: string | undefined;
  tags: string[] | string | undefined;
  action: string;
}

/** CEL's meaning, errors included: `&&`/`||` absorb an error when the other side decides; `!` keeps it. */
function meaning(c: Cond, r: Req, vars: ReadonlyMap<string, Value>): Value {
  switch (c.k) {
    case 'lit':
      return c.v;
    case 'level': {
      if (r.level === undefined) return c.guarded ? false : 'error'; // has() is false; else: no such key
      if (typeof r.level !== 'number') return 'error'; // string vs int: no such overload
      return c.op === '>=' ? r.level >= c.n : r.level < c.n;
    }
    case 'owner':
      return r.owner === undefined ? 'error' : r.owner === r.id;
    case 'role':
      return r.roles.includes(c.role);
    case 'tag':
      if (!Array.isArray(r.tags)) return 'error'; // missing, or a string: not a range
      return r.tags.includes(c.tag);
    case 'prefix':
      return r.resourceId.startsWith(c.p);
    case 'var':
      return vars.get(c.name)!;
    case 'and': {
      const a = meaning(c.a, r, vars);
      const b = meaning(c.b, r, vars);
      if (a === false || b === false) return false;
      return a === true && b === true ? true : 'error';
    }
    case 'or': {
      const a = meaning(c.a, r, vars);
      const b = meaning(c.b, r, vars);
      if (a === true || b === true) return true;
      return a === false && b === false ? false : 'error';
    }
    case 'not': {
      const a = meaning(c.a, r, vars);
      return a === 'error' ? 'error' : !a;
    }
  }
}

interface Rule {
  name: string;
  effect: 'allow' | 'deny';
  actions: string[];
  roles: string[];
  when: Cond | undefined;
}

interface Policy {
  variables: { name: string; when: Cond }[];
  owner: { parentRoles: string[]; when: Cond } | undefined;
  rules: Rule[];
}

function yaml(p: Policy): string {
  const lines = ['apiVersion: verdict/v1', 'kind: ResourcePolicy', 'resource: doc'];
  if (p.variables.length > 0) {
    lines.push('variables:');
    for (const v of p.variables) lines.push(`  ${v.name}: '${cel(v.when)}'`);
  }
  if (p.owner) {
    lines.push('derivedRoles:', '  - name: owner', `    parentRoles: [${p.owner.parentRoles.join(', ')}]`, `    when: '${cel(p.owner.when)}'`);
  }
  lines.push(p.rules.length === 0 ? 'rules: []' : 'rules:');
  for (const r of p.rules) {
    lines.push(`  - name: ${r.name}`, `    effect: ${r.effect}`, `    actions: [${r.actions.map((a) => JSON.stringify(a)).join(', ')}]`);
    if (r.roles.length > 0) lines.push(`    roles: [${r.roles.map((a) => JSON.stringify(a)).join(', ')}]`);
    if (r.when) lines.push(`    when: '${cel(r.when)}'`);
  }
  return `${lines.join('\n')}\n`;
}

/** The reference decision: deny overrides allow, errors fail closed, nothing applies → deny. */
function reference(p: Policy, r: Req): 'ALLOW' | 'DENY' {
  const vars = new Map<string, Value>();
  for (const v of p.variables) vars.set(v.name, meaning(v.when, r, vars));
  const ownerRole: Value | undefined = p.owner
    ? p.owner.parentRoles.length > 0 && !p.owner.parentRoles.some((x) => r.roles.includes(x))
      ? false
      : meaning(p.owner.when, r, vars)
    : undefined;
  const outcome = (rule: Rule): Value => {
    if (rule.roles.length > 0) {
      const statics = rule.roles.filter((x) => !(x === 'owner' && p.owner));
      if (!statics.some((x) => r.roles.includes(x))) {
        if (!(rule.roles.includes('owner') && p.owner)) return false;
        if (ownerRole !== true) return ownerRole === 'error' ? 'error' : false;
      }
    }
    if (!rule.when) return true;
    const v = meaning(rule.when, r, vars);
    return v;
  };
  const candidates = p.rules.filter((x) => x.actions.includes('*') || x.actions.includes(r.action));
  if (candidates.some((x) => x.effect === 'deny' && outcome(x) !== false)) return 'DENY';
  return candidates.some((x) => x.effect === 'allow' && outcome(x) === true) ? 'ALLOW' : 'DENY';
}

function toRequest(r: Req): CheckRequest {
  const subject: Record<string, unknown> = r.level === undefined ? {} : { level: r.level };
  const resource: Record<string, unknown> = {};
  if (r.owner !== undefined) resource.owner = r.owner;
  if (r.tags !== undefined) resource.tags = r.tags;
  return {
    subject: { type: 'user', id: r.id, roles: r.roles, attributes: subject as CheckRequest['subject']['attributes'] },
    action: r.action,
    resource: { type: 'doc', id: r.resourceId, attributes: resource as CheckRequest['resource']['attributes'] },
    context: {},
  };
}

// ---- arbitraries ----------------------------------------------------------------------------------

function condition(vars: readonly string[]): fc.Arbitrary<Cond> {
  const leaves: fc.Arbitrary<Cond>[] = [
    fc.boolean().map((v) => ({ k: 'lit', v })),
    fc.record({ k: fc.constant('level' as const), op: fc.constantFrom('>=' as const, '<' as const), n: fc.integer({ min: 0, max: 3 }), guarded: fc.boolean() }),
    fc.constant({ k: 'owner' as const }),
    fc.constantFrom('admin', 'employee', 'viewer').map((role) => ({ k: 'role' as const, role })),
    fc.constantFrom('x', 'y').map((tag) => ({ k: 'tag' as const, tag })),
    fc.constantFrom('a', 'b').map((p) => ({ k: 'prefix' as const, p })),
  ];
  if (vars.length > 0) leaves.push(fc.constantFrom(...vars).map((name) => ({ k: 'var' as const, name })));
  const { cond } = fc.letrec<{ cond: Cond }>((tie) => ({
    cond: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      ...leaves,
      fc.record({ k: fc.constantFrom('and' as const, 'or' as const), a: tie('cond'), b: tie('cond') }),
      fc.record({ k: fc.constant('not' as const), a: tie('cond') }),
    ),
  }));
  return cond;
}

const policyArb: fc.Arbitrary<Policy> = fc
  .record({ nvars: fc.integer({ min: 0, max: 2 }), hasOwner: fc.boolean() })
  .chain(({ nvars, hasOwner }) => {
    const names = Array.from({ length: nvars }, (_, i) => `v${i}`);
    const rule = fc.record({
      effect: fc.constantFrom('allow' as const, 'deny' as const),
      actions: fc.oneof(fc.constant<string[]>(['*']), fc.subarray(['read', 'write'], { minLength: 1 })),
      roles: fc.subarray(['admin', 'employee', 'owner']),
      when: fc.option(condition(names), { nil: undefined }),
    });
    return fc.record({
      variables: fc.tuple(...names.map((name) => condition([]).map((when) => ({ name, when })))),
      owner: hasOwner ? fc.record({ parentRoles: fc.subarray(['employee']), when: condition(names) }) : fc.constant(undefined),
      rules: fc.array(rule, { maxLength: 6 }).map((rs) => rs.map((r, i) => ({ ...r, name: `r${i}` }))),
    });
  });

const requestArb: fc.Arbitrary<Req> = fc.record({
  id: fc.constantFrom('alice', 'bob'),
  roles: fc.subarray(['admin', 'employee', 'viewer', 'owner']),
  level: fc.constantFrom(undefined, 0, 1, 2, 3, 'x'),
  resourceId: fc.constantFrom('a1', 'b2'),
  owner: fc.constantFrom(undefined, 'alice', 'bob'),
  tags: fc.constantFrom(undefined, [], ['x'], ['y', 'x'], ['y'], 'x'),
  action: fc.constantFrom('read', 'write', 'delete'),
});

const TOKENS = [': ', '\n', '\n  ', '- ', '[', ']', '{', '}', '"', "'", '*', '&a ', '*a', '!!str ', '# ', '|', '>-', '\t', '---\n', 'when: ', '((((', '))))', '.exists(', '.matches("(a+)+', 'variables.', '\\', 'has(', ' && ', ' || ', 'subject.attributes.', '[0]', '1e400', '"\\u', 'resource: "*"\n', 'effect: deny\n'];

const mutationArb = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
    fc.record({ kind: fc.constant('repeatLine' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swapLines' as const), at: fc.nat(), with: fc.nat() }),
  ),
  { minLength: 1, maxLength: 5 },
);

function mutate(text: string, steps: readonly { kind: string; at: number; text?: string; length?: number; with?: number }[]): string {
  let t = text;
  for (const s of steps) {
    const at = s.at % (t.length + 1);
    if (s.kind === 'insert') t = t.slice(0, at) + s.text! + t.slice(at);
    else if (s.kind === 'delete') t = t.slice(0, at) + t.slice(at + s.length!);
    else {
      const lines = t.split('\n');
      const i = s.at % lines.length;
      if (s.kind === 'repeatLine') lines.splice(i, 0, lines[i]!);
      else {
        const j = s.with! % lines.length;
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      }
      t = lines.join('\n');
    }
  }
  return t;
}

function load(text: string): CompiledPolicySet | PolicyLoadError {
  const start = performance.now();
  try {
    return compilePolicySet([{ path: 'doc.yaml', text }]);
  } catch (err) {
    if (err instanceof PolicyLoadError) return err;
    throw new Error(`the loader threw ${String(err)} for:\n${text}`);
  } finally {
    const ms = performance.now() - start;
    if (ms > LOAD_MS) throw new Error(`loading took ${ms.toFixed(0)} ms:\n${text}`);
  }
}

describe('fuzz: policy loader and engine (fast-check)', function () {
  this.timeout(300_000);
  const now = new Date('2026-03-01T09:00:00Z');

  it(`generated policies load, and decide as the reference does (${RUNS} policies × 25 requests)`, () => {
    fc.assert(
      fc.property(policyArb, fc.array(requestArb, { minLength: 25, maxLength: 25 }), (policy, requests) => {
        const text = yaml(policy);
        const set = load(text);
        if (set instanceof PolicyLoadError) throw new Error(`a generated policy was rejected: ${set.message}\n${text}`);
        for (const r of requests) {
          const d = decide(set, toRequest(r), { now });
          const expected = reference(policy, r);
          if (d.effect !== expected) throw new Error(`${d.effect} (${d.reason} ${d.rule}) where the reference says ${expected} for ${JSON.stringify(r)}:\n${text}`);
          const explained = decide(set, toRequest(r), { now, explain: true });
          expect(explained.effect).to.equal(expected);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`mutated policy files load or are rejected with a PolicyLoadError, quickly; what loads decides without throwing (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(policyArb, mutationArb, fc.array(requestArb, { minLength: 5, maxLength: 5 }), (policy, steps, requests) => {
        const text = mutate(yaml(policy), steps);
        const set = load(text);
        if (set instanceof PolicyLoadError) {
          expect(set.issues.length).to.be.greaterThan(0);
          for (const i of set.issues) expect(i.line).to.be.at.least(1);
          return;
        }
        for (const r of requests) {
          const d = decide(set, toRequest(r), { now });
          expect(['ALLOW', 'DENY']).to.include(d.effect);
          expect(d.reason).to.not.equal('INTERNAL_ERROR');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
