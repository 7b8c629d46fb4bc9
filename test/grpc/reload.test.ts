/**
 * Hot reload of a real `verdict serve`: a changed policy file changes decisions without a restart
 * (file watching, and SIGHUP); a broken change is rejected, the old decisions keep being served,
 * and GetPolicySet and the log say what is wrong and where.
 */
import { expect } from 'chai';
import { cleanupServerProcesses, replaceFile, startServer, writeFile, type LogLine } from '../support/server-process.js';
import { authzClient, BROKEN_FIELD, check, closeClients, docRequest, documentPolicy, getPolicySet, policyDir, pollUntil, sleep, type AuthzClient, type CheckResponse } from './fixtures.js';

/** A YAML syntax error: a flow sequence left open on line 6, reported where it runs into line 7. */
const BROKEN_YAML = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read, edit
    effect: allow
    roles: [employee]
`;

/** A CEL type error in a condition on line 9. */
const BROKEN_CEL = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read, edit]
    effect: allow
    roles: [employee]
    when: subject.id + 1 == 2
`;

const allowed = (r: CheckResponse) => r.allowed === true;
const edit = (client: AuthzClient) => check(client, docRequest('edit'));

describe('gRPC hot reload (real server process)', function () {
  this.timeout(30_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('a rewritten policy file changes the decision (file watching), under a new revision', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir });
    const client = authzClient(server.address);
    const first = await edit(client);
    expect(first).to.include({ reason: 'NO_MATCHING_RULE' });
    const before = await getPolicySet(client);

    writeFile(dir, 'document.yaml', documentPolicy(true)); // a plain in-place write, as an editor does
    const flipped = await pollUntil('edit to be allowed', () => edit(client), allowed);
    expect(flipped).to.include({ reason: 'RULE_ALLOW', rule: 'employees-read' });
    expect(flipped.revision).to.not.equal(first.revision);

    const after = await getPolicySet(client);
    expect(after.revision).to.equal(flipped.revision);
    expect(Number(after.loadedAt!.seconds) * 1000 + after.loadedAt!.nanos! / 1e6).to.be.at.least(Number(before.loadedAt!.seconds) * 1000);
    const reloaded = await server.waitForLog((l) => l.msg === 'policy set reloaded' && l.revision === flipped.revision);
    expect(reloaded.previous).to.equal(first.revision);
  });

  it('a new file in a subdirectory is picked up too', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir });
    const client = authzClient(server.address);
    const folderRead = () => check(client, { subject: { id: 'a', roles: ['employee'] }, action: 'read', resource: { type: 'folder' } });
    expect((await folderRead()).reason).to.equal('NO_POLICY');
    replaceFile(dir, 'nested/folder.yaml', documentPolicy(false).replace('resource: document', 'resource: folder'));
    expect((await pollUntil('folder read to be allowed', folderRead, allowed)).rule).to.equal('employees-read');
    expect((await getPolicySet(client)).resourceTypes).to.have.members(['document', 'folder']);
  });

  it('SIGHUP reloads at once when file watching is off', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir, config: { reload: { watch: false } } });
    const client = authzClient(server.address);
    replaceFile(dir, 'document.yaml', documentPolicy(true));
    await sleep(500);
    expect((await edit(client)).allowed ?? false, 'not reloaded without a SIGHUP').to.equal(false);

    server.kill('SIGHUP');
    await server.waitForLog('SIGHUP: reloading policies');
    await server.waitForLog('policy set reloaded');
    expect((await edit(client)).allowed).to.equal(true);
    expect(server.running, 'SIGHUP does not stop the server').to.equal(true);

    // A SIGHUP with nothing changed keeps the revision.
    const revision = (await getPolicySet(client)).revision;
    server.kill('SIGHUP');
    await server.waitForLog((l) => l.msg === 'SIGHUP: reloading policies' && l !== server.findLog('SIGHUP: reloading policies'));
    await sleep(200);
    expect((await getPolicySet(client)).revision).to.equal(revision);
    expect(server.logs.filter((l) => l.msg === 'policy set reloaded')).to.have.length(1);
  });

  for (const [kind, text, line, code] of [
    ['an unknown field', BROKEN_FIELD, 7, 'UNKNOWN_FIELD'],
    ['a YAML syntax error', BROKEN_YAML, 7, 'YAML_SYNTAX'],
    ['a CEL type error', BROKEN_CEL, 9, 'CEL_TYPE'],
  ] as const) {
    it(`a broken change (${kind}) is rejected: old decisions hold, lastFailure and the log name file and line; fixing it loads`, async () => {
      const dir = policyDir({ 'document.yaml': documentPolicy(false), 'folder.yaml': documentPolicy(false).replace('resource: document', 'resource: folder') });
      const server = await startServer({ policies: dir });
      const client = authzClient(server.address);
      const good = await getPolicySet(client);
      expect((await check(client, docRequest('read'))).allowed).to.equal(true);

      writeFile(dir, 'document.yaml', text);
      // (Matched on the code too: an editor's in-place write could be caught half-written first.)
      const rejection = await server.waitForLog(
        (l) => l.msg === 'policy change rejected; the last good policy set keeps serving' && (l.errors as string[]).some((e) => e.includes(`: ${code}: `)),
      );
      expect(rejection.level).to.equal(50);
      expect(rejection.keptRevision).to.equal(good.revision);
      const errors = rejection.errors as string[];
      expect(errors.join('\n')).to.match(new RegExp(`^document\\.yaml:${line}:\\d+: ${code}: `, 'm'));

      // The old set keeps deciding: read still allowed, edit still denied, same revision.
      const read = await check(client, docRequest('read'));
      expect(read).to.include({ allowed: true, revision: good.revision });
      expect((await edit(client)).allowed ?? false).to.equal(false);

      const set = await getPolicySet(client);
      expect(set.revision).to.equal(good.revision);
      expect(set.loadedAt).to.deep.equal(good.loadedAt);
      const failure = set.lastFailure!;
      expect(failure, 'lastFailure').to.not.equal(undefined);
      expect(failure.message).to.match(/policy set rejected/);
      expect(Number(failure.at!.seconds)).to.be.at.least(Number(good.loadedAt!.seconds));
      const issue = failure.issues!.find((i) => i.code === code)!;
      expect(issue, JSON.stringify(failure.issues)).to.not.equal(undefined);
      expect(issue).to.include({ file: 'document.yaml', line, code });
      expect(issue.column).to.be.a('number').and.greaterThan(0);
      expect(issue.message).to.be.a('string').and.not.equal('');
      expect(errors).to.include(`${issue.file}:${issue.line}:${issue.column}: ${issue.code}: ${issue.message}`);

      // Fix it: the new set loads, the decision flips, and the failure is cleared.
      writeFile(dir, 'document.yaml', documentPolicy(true));
      const fixed = await pollUntil('edit to be allowed after the fix', () => edit(client), allowed);
      const after = await getPolicySet(client);
      expect(after.revision).to.equal(fixed.revision).and.not.equal(good.revision);
      expect(after.lastFailure).to.equal(undefined);
      const loaded: LogLine = await server.waitForLog('policy set reloaded');
      expect(loaded.revision).to.equal(after.revision);
    });
  }

  it('a broken change via SIGHUP is rejected the same way, and the server keeps running', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir, config: { reload: { watch: false } } });
    const client = authzClient(server.address);
    const good = await getPolicySet(client);
    replaceFile(dir, 'document.yaml', BROKEN_FIELD);
    server.kill('SIGHUP');
    await server.waitForLog('policy change rejected; the last good policy set keeps serving');
    const set = await getPolicySet(client);
    expect(set.revision).to.equal(good.revision);
    expect(set.lastFailure!.issues).to.deep.include({ file: 'document.yaml', line: 7, column: 5, code: 'UNKNOWN_FIELD', message: 'rules[0]: unknown field "efect" (allowed: name, description, actions, effect, roles, when)' });
    expect((await check(client, docRequest('read'))).allowed).to.equal(true);
    expect(server.running).to.equal(true);
  });
});
