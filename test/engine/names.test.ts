import { expect } from 'chai';
import { loadPolicyDirectory } from '../../src/policy/index.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { both, check, expectDecision, file, load, policy } from './helpers.js';

// The compiler keeps its own copy of every name read from a file (src/policy/yaml-reader.ts,
// ownString: property keys of a throwaway object). Names that mean something to plain objects must
// come through unchanged, or a rule would silently stop matching.
describe('names from policy files match requests whatever they spell', () => {
  const odd = ['__proto__', 'constructor', 'toString', '0', '42', 'hasOwnProperty', 'valueOf'];

  const body = `resource: constructor
derivedRoles:
  - name: proto-owner
    parentRoles: ["__proto__"]
    when: resource.attributes.owner == subject.id
rules:
  - name: toString
    actions: ["__proto__", "0"]
    effect: allow
    roles: [${odd.map((r) => JSON.stringify(r)).join(', ')}]
  - name: owners-edit
    actions: [valueOf]
    effect: allow
    roles: [proto-owner]
`;

  it('types, actions, roles, parent roles and rule names spelled like object properties', () => {
    const set = load(file('odd.yaml', body));
    for (const role of odd) {
      for (const action of ['__proto__', '0']) {
        expectDecision(both(set, { type: 'constructor', action, roles: [role] }), 'ALLOW', 'RULE_ALLOW', 'toString');
      }
    }
    expectDecision(both(set, { type: 'constructor', action: '__proto__', roles: ['prototype'] }), 'DENY', 'NO_MATCHING_RULE');
    expectDecision(both(set, { type: 'constructor', action: 'toString', roles: ['__proto__'] }), 'DENY', 'NO_MATCHING_RULE');
    expectDecision(both(set, { type: 'constructor', action: 'valueOf', roles: ['__proto__'], resource: { owner: 'alice' } }), 'ALLOW', 'RULE_ALLOW', 'owners-edit');
    expectDecision(both(set, { type: 'constructor', action: 'valueOf', roles: ['constructor'], resource: { owner: 'alice' } }), 'DENY', 'NO_MATCHING_RULE');
    expectDecision(check(set, { type: 'toString', action: '__proto__', roles: ['__proto__'] }), 'DENY', 'NO_POLICY');
    expect(set.resourceTypes).to.deep.equal(['constructor']);
  });

  it('the same from a directory (the fast YAML read), and every name compares equal to the request', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'verdict-names-'));
    try {
      await writeFile(path.join(dir, 'odd.yaml'), policy(body));
      const set = await loadPolicyDirectory(dir);
      const d = check(set, { type: 'constructor', action: '0', roles: ['42'] });
      expectDecision(d, 'ALLOW', 'RULE_ALLOW', 'toString');
      expect(d.policy).to.equal('odd.yaml');
      expectDecision(check(set, { type: 'constructor', action: '__proto__', roles: ['hasOwnProperty'] }), 'ALLOW', 'RULE_ALLOW', 'toString');
      expectDecision(check(set, { type: 'constructor', action: '1', roles: ['42'] }), 'DENY', 'NO_MATCHING_RULE');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
