/**
 * When a changed policy directory goes live (issue 11): a file written in place goes live only once
 * it has stopped changing for the settle window, so a half-written file that happens to parse is never
 * served; an atomic rename and a Kubernetes ConfigMap `..data` switch go live at once.
 */
import { mkdirSync, openSync, renameSync, rmSync, symlinkSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { policyRevision, sha256Hex } from '../../src/policy/index.js';
import { cleanupServerProcesses, makeTempDir, replaceFile, startServer } from '../support/server-process.js';
import { authzClient, check, closeClients, documentPolicy, getPolicySet, policyDir, pollUntil, sleep, type CheckResponse } from './fixtures.js';

const HEADER = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
`;
const DENY_SECRET_OUTSIDE = `  - name: deny-secret-outside
    actions: ["*"]
    effect: deny
    when: resource.attributes.classification == "secret" && !context.ip.startsWith("10.")
`;
const EMPLOYEES_READ = `  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
`;
const CONTRACTORS_READ = `  - name: contractors-read
    actions: [read]
    effect: allow
    roles: [contractor]
`;
/** The live version: employees read, but never secret documents from outside the network. */
const V1 = HEADER + DENY_SECRET_OUTSIDE + EMPLOYEES_READ;
/** The new version adds contractors; its deny rule comes last. Cut before it, the file still parses. */
const V2_PART1 = HEADER + EMPLOYEES_READ + CONTRACTORS_READ;
const V2 = V2_PART1 + DENY_SECRET_OUTSIDE;

const secretReadFromOutside = {
  subject: { id: 'eve', roles: ['employee'] },
  action: 'read',
  resource: { type: 'document', id: 'plans', attributes: { classification: 'secret' } },
  context: { ip: '203.0.113.9' },
};

describe('policy reloads never apply a file mid-write (real server process)', function () {
  this.timeout(40_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('a file written in two parts 1.5 s apart: no read during the pause sees the half file (default settle window)', async () => {
    const dir = policyDir({ 'document.yaml': V1 });
    // VERDICT_TEST_SETTLE_MS=0 reproduces the old behaviour (and the failure this test guards against).
    const server = await startServer({ policies: dir, ...(process.env.VERDICT_TEST_SETTLE_MS ? { config: { reload: { settleMs: Number(process.env.VERDICT_TEST_SETTLE_MS) } } } : {}) });
    const client = authzClient(server.address);
    const before = await check(client, secretReadFromOutside);
    expect(before).to.include({ reason: 'RULE_DENY', rule: 'deny-secret-outside' });

    // An in-place write in two parts, as a slow copy or an editor without atomic saves does it.
    const fd = openSync(path.join(dir, 'document.yaml'), 'w');
    writeSync(fd, V2_PART1);
    const answers: CheckResponse[] = [];
    const pauseEnds = Date.now() + 1500;
    while (Date.now() < pauseEnds) {
      answers.push(await check(client, secretReadFromOutside));
      await sleep(25);
    }
    writeSync(fd, DENY_SECRET_OUTSIDE);
    closeSync(fd);

    expect(answers.length).to.be.greaterThan(5);
    expect(answers.filter((a) => a.allowed === true), 'reads allowed during the pause').to.deep.equal([]);
    for (const a of answers) expect(a).to.include({ revision: before.revision, rule: 'deny-secret-outside' });
    // The half file never became a revision at all.
    const halfRevision = policyRevision([{ path: 'document.yaml', sha256: sha256Hex(V2_PART1) }]);
    expect(server.logs.filter((l) => l.revision === halfRevision)).to.deep.equal([]);

    // The complete file goes live once it has settled, and still denies.
    const fullRevision = policyRevision([{ path: 'document.yaml', sha256: sha256Hex(V2) }]);
    const live = await server.waitForLog((l) => l.msg === 'policy set reloaded' && l.revision === fullRevision, 10_000);
    expect(live.previous).to.equal(before.revision);
    const after = await check(client, secretReadFromOutside);
    expect(after).to.include({ revision: fullRevision, reason: 'RULE_DENY' });
    expect((await check(client, { ...secretReadFromOutside, subject: { id: 'c', roles: ['contractor'] }, resource: { type: 'document', id: 'x', attributes: { classification: 'public' } } })).allowed).to.equal(true);
    expect(server.logs.filter((l) => l.msg === 'policy set reloaded')).to.have.length(1);
  });

  it('an atomic rename goes live at once, without waiting for the settle window', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir, config: { reload: { settleMs: 20_000, pollIntervalMs: 0 } } });
    const client = authzClient(server.address);
    const edit = { subject: { id: 'a', roles: ['employee'] }, action: 'edit', resource: { type: 'document', id: 'd' } };
    expect((await check(client, edit)).allowed ?? false).to.equal(false);
    const started = Date.now();
    replaceFile(dir, 'document.yaml', documentPolicy(true));
    await pollUntil('edit to be allowed', () => check(client, edit), (r) => r.allowed === true, 10_000);
    // Well inside the 20 s window: it did not wait for it.
    expect(Date.now() - started).to.be.lessThan(5_000);
    const line = await server.waitForLog('policy set reloaded');
    expect(line).to.include({ trigger: 'file-change', changed: 1, added: 0, removed: 0 });

    // A delete is atomic too: the type's policy is gone at once.
    replaceFile(dir, 'folder.yaml', documentPolicy(false).replace('resource: document', 'resource: folder'));
    const folderRead = { subject: { id: 'a', roles: ['employee'] }, action: 'read', resource: { type: 'folder', id: 'f' } };
    await pollUntil('folder read allowed', () => check(client, folderRead), (r) => r.allowed === true, 5_000);
    const deleted = Date.now();
    rmSync(path.join(dir, 'folder.yaml'));
    await pollUntil('folder read back to NO_POLICY', () => check(client, folderRead), (r) => r.reason === 'NO_POLICY', 5_000);
    expect(Date.now() - deleted).to.be.lessThan(5_000);
  });

  it('an in-place write waits for the settle window even when it is complete', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir, config: { reload: { settleMs: 3_000 } } });
    const client = authzClient(server.address);
    const edit = { subject: { id: 'a', roles: ['employee'] }, action: 'edit', resource: { type: 'document', id: 'd' } };
    const written = Date.now();
    writeFileSync(path.join(dir, 'document.yaml'), documentPolicy(true));
    await sleep(1_500);
    expect((await check(client, edit)).allowed ?? false, 'not live before the window ends').to.equal(false);
    await pollUntil('edit to be allowed', () => check(client, edit), (r) => r.allowed === true, 10_000);
    expect(Date.now() - written).to.be.at.least(3_000);
    // The log line travels a pipe of its own: it may reach the test after the answer that shows the reload.
    await server.waitForLog('policy set reloaded');
    expect(server.logs.filter((l) => l.msg === 'policy set reloaded')).to.have.length(1);
  });

  it('a Kubernetes ConfigMap update (..data symlink switch) goes live at once and whole, with the revision of the same plain files', async () => {
    // The layout the kubelet writes: ..<version>/ holds the files, ..data points at it, and each key
    // is a top-level symlink through ..data.
    const dir = makeTempDir('configmap');
    const writeVersion = (name: string, files: Record<string, string>) => {
      mkdirSync(path.join(dir, name));
      for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, name, k), v);
    };
    writeVersion('..2026_11_30_00_00_00.1', { 'document.yaml': documentPolicy(false) });
    symlinkSync('..2026_11_30_00_00_00.1', path.join(dir, '..data'));
    symlinkSync('..data/document.yaml', path.join(dir, 'document.yaml'));
    const server = await startServer({ policies: dir, config: { reload: { settleMs: 20_000, pollIntervalMs: 0 } } });
    const client = authzClient(server.address);
    const first = await getPolicySet(client);
    expect(first.revision).to.equal(policyRevision([{ path: 'document.yaml', sha256: sha256Hex(documentPolicy(false)) }]));

    // An update that changes one key and adds another. The new key's top-level symlink appears
    // only after the switch (as the kubelet does it), yet the new set is complete at once.
    const folder = documentPolicy(false).replace('resource: document', 'resource: folder');
    writeVersion('..2026_11_30_00_01_00.2', { 'document.yaml': documentPolicy(true), 'folder.yaml': folder });
    symlinkSync('..2026_11_30_00_01_00.2', path.join(dir, '..data_tmp'));
    const switched = Date.now();
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await sleep(300);
    symlinkSync('..data/folder.yaml', path.join(dir, 'folder.yaml'));
    rmSync(path.join(dir, '..2026_11_30_00_00_00.1'), { recursive: true });

    const expected = policyRevision([
      { path: 'document.yaml', sha256: sha256Hex(documentPolicy(true)) },
      { path: 'folder.yaml', sha256: sha256Hex(folder) },
    ]);
    const set = await pollUntil('the new revision', () => getPolicySet(client), (s) => s.revision !== first.revision, 10_000);
    expect(Date.now() - switched).to.be.lessThan(5_000);
    expect(set.revision).to.equal(expected);
    expect(set.resourceTypes).to.have.members(['document', 'folder']);
    expect(server.logs.filter((l) => l.msg === 'policy set reloaded').map((l) => l.revision)).to.deep.equal([expected]);
    const edit = await check(client, { subject: { id: 'a', roles: ['employee'] }, action: 'edit', resource: { type: 'document', id: 'd' } });
    expect(edit).to.include({ allowed: true, revision: expected });
  });
});
