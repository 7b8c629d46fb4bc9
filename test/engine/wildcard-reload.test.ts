/**
 * A change to a "*" policy reaches every type, but must not rebuild every type: at 1,000 types that
 * rebuild paused serving (docs/operations.md, "Reload model"). Only the "*" build and the types
 * whose rules name a "*" derived role that changed are built again; the others keep their build and
 * take the new "*" rules on their next check. Decisions are what a full load of the same files gives
 * (test/fuzz/reload.test.ts checks that over generated sequences).
 */
import { expect } from 'chai';
import { decide, type CheckRequest } from '../../src/engine/index.js';
import { PolicyCompiler, sha256Hex } from '../../src/policy/index.js';
import type { PolicyFile } from '../../src/service/policy-source.js';

const head = (resource: string) => `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: ${resource}\n`;
const DOC = `${head('doc')}rules:\n  - name: owners-edit\n    actions: [edit]\n    effect: allow\n    roles: [owner]\n`;
const FOLDER = `${head('folder')}rules:\n  - name: staff-read\n    actions: [read]\n    effect: allow\n    roles: [employee]\n`;
const common = (denied: string, ownerWhen: string) =>
  `${head('"*"')}derivedRoles:\n  - name: owner\n    when: ${ownerWhen}\nrules:\n  - name: deny-suspended\n    actions: [${denied}]\n    effect: deny\n    when: has(subject.attributes.suspended) && subject.attributes.suspended\n`;
const OWNER = 'resource.attributes.owner == subject.id';

const files = (entries: Record<string, string>): PolicyFile[] => Object.entries(entries).map(([path, text]) => ({ path, text, sha256: sha256Hex(text) }));
const NOW = new Date('2026-12-01T00:00:00Z');

function request(type: string, action: string, suspended: boolean, owner = 'u2'): CheckRequest {
  return { subject: { type: 'user', id: 'u1', roles: ['employee'], attributes: { suspended } }, action, resource: { type, id: 'r1', attributes: { owner } }, context: {} } as unknown as CheckRequest;
}

describe('a "*" policy change rebuilds only what depends on it', () => {
  it('types that name no "*" derived role keep their build; decisions follow the new "*" rules at once', () => {
    const compiler = new PolicyCompiler();
    const first = compiler.compileNow(files({ 'doc.yaml': DOC, 'folder.yaml': FOLDER, 'common.yaml': common('edit', OWNER) }));
    compiler.commit(first);
    expect(decide(first.set!, request('folder', 'read', true), { now: NOW }).effect).to.equal('ALLOW');

    // The "*" deny now covers every action; its derived role is recompiled with the file.
    const second = compiler.compileNow(files({ 'doc.yaml': DOC, 'folder.yaml': FOLDER, 'common.yaml': common('"*"', OWNER) }));
    expect(second.issues).to.deep.equal([]);
    const before = first.state.set.builds;
    const after = second.state.set.builds;
    expect(after.get('folder'), 'folder names no "*" derived role').to.equal(before.get('folder'));
    expect(after.get('doc'), 'doc names the "*" derived role "owner"').to.not.equal(before.get('doc'));
    expect(after.get('*')).to.not.equal(before.get('*'));

    const folderRead = decide(second.set!, request('folder', 'read', true), { now: NOW });
    expect(folderRead.effect).to.equal('DENY');
    expect(folderRead.rule).to.equal('deny-suspended');
    // The set before the change still answers as it did (a batch in flight keeps its revision).
    expect(decide(first.set!, request('folder', 'read', true), { now: NOW }).effect).to.equal('ALLOW');
    expect(decide(second.set!, request('folder', 'read', false), { now: NOW }).effect).to.equal('ALLOW');
    compiler.commit(second);

    // The derived role's condition changes: doc's rule must use the new one.
    const third = compiler.compileNow(files({ 'doc.yaml': DOC, 'folder.yaml': FOLDER, 'common.yaml': common('"*"', `resource.attributes.owner == "u1-${'x'}"`) }));
    expect(third.state.set.builds.get('folder')).to.equal(after.get('folder'));
    expect(decide(second.set!, request('doc', 'edit', false, 'u1'), { now: NOW }).effect).to.equal('ALLOW');
    expect(decide(third.set!, request('doc', 'edit', false, 'u1'), { now: NOW }).effect).to.equal('DENY');
    expect(decide(third.set!, request('doc', 'edit', false, 'u1-x'), { now: NOW }).effect).to.equal('ALLOW');
  });

  it('a "*" derived role that appears under a name a type used as a static role rebuilds that type', () => {
    const compiler = new PolicyCompiler();
    const withoutRole = `${head('"*"')}rules:\n  - name: admins\n    actions: ["*"]\n    effect: allow\n    roles: [admin]\n`;
    const first = compiler.compileNow(files({ 'doc.yaml': DOC, 'folder.yaml': FOLDER, 'common.yaml': withoutRole }));
    compiler.commit(first);
    // "owner" is a static role for doc here: the subject must carry it.
    expect(decide(first.set!, request('doc', 'edit', false, 'u1'), { now: NOW }).effect).to.equal('DENY');

    const second = compiler.compileNow(files({ 'doc.yaml': DOC, 'folder.yaml': FOLDER, 'common.yaml': common('delete', OWNER) }));
    expect(second.state.set.builds.get('doc')).to.not.equal(first.state.set.builds.get('doc'));
    expect(second.state.set.builds.get('folder')).to.equal(first.state.set.builds.get('folder'));
    expect(decide(second.set!, request('doc', 'edit', false, 'u1'), { now: NOW }).effect).to.equal('ALLOW');
  });
});
