/**
 * `verdict serve --workers 2 --admin`: the primary serves one scrape holding every worker's series
 * (labelled worker="N") and its own; a worker killed mid-run does not break the scrape (it shows as
 * verdict_worker_up 0 until its replacement answers, whose counters start again from zero).
 */
import { expect } from 'chai';
import { cleanupServerProcesses, type LogLine } from '../support/server-process.js';
import { check, closeClients, docRequest, getPolicySet, policyDir, pollUntil, separateClients } from '../grpc/fixtures.js';
import { http, scrape, startWithAdmin } from './helpers.js';

const workerServing = (index: number) => (l: LogLine) => l.msg === 'verdict serving' && l.worker === index;

describe('observability: one scrape for a cluster (--workers 2)', function () {
  this.timeout(60_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it("merges every worker's metrics with the primary's, and survives a worker restart", async () => {
    const { proc, admin } = await startWithAdmin({ policies: policyDir(), workers: 2 });
    const clients = separateClients(proc.address, 6);
    const revision = (await getPolicySet(clients[0]!)).revision!;
    for (const c of clients) for (let i = 0; i < 3; i++) await check(c, docRequest('read'));

    const s = await scrape(admin);
    expect(s.samples('verdict_worker_up').map((m) => [m.labels!.worker, m.value])).to.deep.equal([
      ['0', '1'],
      ['1', '1'],
    ]);
    // Every decision is counted once, by the worker that made it; both workers took connections.
    expect(s.value('verdict_decisions_total', { source: 'check', effect: 'allow', reason: 'RULE_ALLOW' })).to.equal(18);
    const byWorker = (scr: typeof s, w: string) => scr.value('verdict_decisions_total', { worker: w });
    expect(byWorker(s, '0') + byWorker(s, '1')).to.equal(18);
    expect(byWorker(s, '0')).to.be.greaterThan(0);
    expect(byWorker(s, '1')).to.be.greaterThan(0);
    expect(s.samples('verdict_policy_info').map((m) => m.labels)).to.have.deep.members([
      { revision, worker: '0' },
      { revision, worker: '1' },
    ]);
    // Reloads are the primary's (it reads the directory): counted once, without a worker label.
    expect(s.samples('verdict_policy_reloads_total', { result: 'loaded' }).map((m) => [m.labels, m.value])).to.deep.equal([[{ result: 'loaded' }, '1']]);
    // Process metrics of all three processes.
    expect(s.samples('process_cpu_seconds_total').map((m) => m.labels?.worker ?? 'primary')).to.have.members(['primary', '0', '1']);
    const ready = await http(admin, '/readyz');
    expect(ready.status).to.equal(200);
    expect(JSON.parse(ready.body)).to.deep.equal({ status: 'SERVING', ready: true, workers: [{ worker: 0, ready: true }, { worker: 1, ready: true }] });

    // Kill worker 0: the scrape still answers at once, without its series.
    const w0 = (await proc.waitForLog(workerServing(0))).pid as number;
    const w1Before = byWorker(s, '1');
    process.kill(w0, 'SIGKILL');
    await proc.waitForLog((l) => l.msg === 'worker exited unexpectedly; starting a replacement' && l.worker === 0);
    const t = Date.now();
    const during = await scrape(admin);
    expect(Date.now() - t).to.be.lessThan(5_000);
    if (during.value('verdict_worker_up', { worker: '0' }) === 0) {
      expect(byWorker(during, '0')).to.equal(0);
    }
    expect(during.value('verdict_worker_up', { worker: '1' })).to.equal(1);
    expect(byWorker(during, '1')).to.equal(w1Before);

    // The replacement answers the next scrapes; its counters start from zero.
    await proc.waitForLog((l) => workerServing(0)(l) && l.pid !== w0, 20_000);
    const after = await pollUntil('worker 0 to answer scrapes again', () => scrape(admin), (x) => x.value('verdict_worker_up', { worker: '0' }) === 1);
    expect(byWorker(after, '0')).to.equal(0);
    expect(byWorker(after, '1')).to.equal(w1Before);
    const fresh = separateClients(proc.address, 4);
    for (const c of fresh) await check(c, docRequest('read'));
    const last = await scrape(admin);
    expect(byWorker(last, '0') + byWorker(last, '1')).to.equal(w1Before + 4);
  });
});
