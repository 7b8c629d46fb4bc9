/**
 * Reloads in a cluster (real primary and workers): workers compile a change one after another, the
 * first one is the canary (a broken change is compiled by it alone and served by none), and all swap
 * together on the primary's word, so every worker ends on one revision with one loadedAt.
 */
import { expect } from 'chai';
import { policyRevision, sha256Hex } from '../../src/policy/index.js';
import { cleanupServerProcesses, replaceFile, startServer } from '../support/server-process.js';
import { BROKEN_FIELD, closeClients, documentPolicy, getPolicySet, policyDir, pollUntil, separateClients } from '../grpc/fixtures.js';

describe('cluster reloads: staggered compile, canary, one swap', function () {
  this.timeout(40_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('workers compile a change one at a time, then all serve it; a broken change is compiled by the first worker only', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const server = await startServer({ policies: dir, workers: 2, config: { logLevel: 'debug', reload: { pollIntervalMs: 0 } } });
    const clients = separateClients(server.address, 4);

    replaceFile(dir, 'document.yaml', documentPolicy(true));
    const revision = policyRevision([{ path: 'document.yaml', sha256: sha256Hex(documentPolicy(true)) }]);
    const reloaded = await server.waitForLog((l) => l.msg === 'policy set reloaded' && l.worker === undefined, 10_000);
    expect(reloaded).to.include({ revision, trigger: 'file-change', workers: 2, changed: 1 });
    const compiled = server.logs.filter((l) => l.msg === 'policy change compiled' && l.revision === revision);
    expect(compiled.map((l) => l.worker)).to.deep.equal([0, 1]);
    // One after the other: the second worker starts only once the first has finished.
    expect(Number(compiled[1]!.startedAt)).to.be.at.least(Number(compiled[0]!.endedAt));
    const sets = await pollUntil('every connection on the new revision', () => Promise.all(clients.map(getPolicySet)), (ss) => ss.every((s) => s.revision === revision));
    expect(new Set(sets.map((s) => JSON.stringify(s.loadedAt))).size, 'one loadedAt').to.equal(1);

    // A broken change: the canary (worker 0) compiles it and refuses it; worker 1 never compiles it.
    replaceFile(dir, 'document.yaml', BROKEN_FIELD);
    const broken = policyRevision([{ path: 'document.yaml', sha256: sha256Hex(BROKEN_FIELD) }]);
    await server.waitForLog('policy change rejected; the last good policy set keeps serving', 10_000);
    const attempts = server.logs.filter((l) => l.msg === 'policy change compiled' && l.revision === broken);
    expect(attempts.map((l) => [l.worker, l.status])).to.deep.equal([[0, 'rejected']]);
    const held = await pollUntil('every worker to report the failure', () => Promise.all(clients.map(getPolicySet)), (ss) => ss.every((s) => s.lastFailure !== undefined));
    for (const s of held) expect(s.revision).to.equal(revision);
  });
});
