/**
 * scope: instance under `verdict serve --workers 2`: the workers share the instance's counters
 * through the primary (src/usage/worker-sync.ts). Driven at twice a quota over separate gRPC
 * connections that reach both workers, the instance allows the limit within the documented bound
 * (docs/operations.md#workers-and-scope-instance; sync every 50 ms here), not 2×; the primary writes one state file with the instance's total,
 * and after a restart neither worker allows more.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, startServer, writeFile, type VerdictProcess } from '../support/server-process.js';
import { check, closeClients, separateClients, type AuthzClient, type CheckResponse } from '../grpc/fixtures.js';

const LIMIT = 300;
const WORKERS = 2;
const CONNECTIONS = 6;
const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: api
rules:
  - name: callers
    actions: [call]
    effect: allow
limits:
  - name: calls-per-day
    actions: [call]
    key: subject.id
    quota: {count: ${LIMIT}, period: day}
`;

const call = (client: AuthzClient, subject: string): Promise<CheckResponse> =>
  check(client, { subject: { id: subject }, action: 'call', resource: { type: 'api', id: 'a' } });

describe('usage limits with scope: instance across the workers of serve --workers 2', function () {
  this.timeout(60_000);
  let dir: string;
  let stateDir: string;
  let server: VerdictProcess;

  before(() => {
    dir = makeTempDir('usage-workers');
    writeFile(dir, 'api.yaml', POLICY);
    stateDir = makeTempDir('usage-workers-state');
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  const start = () => startServer({ policies: dir, workers: WORKERS, config: { logDecisions: true, usage: { stateDir, saveIntervalMs: 0, cluster: { syncIntervalMs: 50 } } } });

  /** The worker that answered each decision, from its log line. */
  async function workersOf(ids: readonly string[]): Promise<number[]> {
    return Promise.all(ids.map(async (id) => (await server.waitForLog((l) => l.msg === 'decision' && l.decisionId === id, 5_000)).worker as number));
  }

  it(`driven at twice the limit (${2 * LIMIT} checks over about 2.5 s on ${CONNECTIONS} connections), the instance allows at most 5% more than ${LIMIT}`, async () => {
    server = await start();
    const clients = separateClients(server.address, CONNECTIONS);
    const answers: CheckResponse[] = [];
    let sent = 0;
    while (sent < 2 * LIMIT) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 6 && sent < 2 * LIMIT; i++, sent++) batch.push(call(clients[sent % CONNECTIONS]!, 'tenant-a').then((r) => void answers.push(r)));
      await Promise.all([...batch, new Promise((resolve) => setTimeout(resolve, 25))]);
    }
    const allowed = answers.filter((a) => a.allowed);
    const workers = await workersOf(allowed.map((a) => a.decisionId!));
    const perWorker = Array.from({ length: WORKERS }, (_, w) => workers.filter((x) => x === w).length);
    console.log(`      allowed per worker ${perWorker.join(' + ')} = ${allowed.length} of ${2 * LIMIT} (limit ${LIMIT})`);
    expect(allowed.length).to.be.at.least(LIMIT);
    expect(allowed.length).to.be.at.most(Math.floor(LIMIT * 1.05));
    // Both workers served allowed requests: the shared count stopped each of them.
    for (const n of perWorker) expect(n).to.be.greaterThan(LIMIT / 10);
    const denied = answers.filter((a) => !a.allowed);
    expect(denied.every((a) => a.reason === 'QUOTA_EXCEEDED')).to.equal(true);
    expect(new Set(await workersOf(denied.map((a) => a.decisionId!))).size, 'both workers denied').to.equal(WORKERS);
    // Another key has its own count.
    expect(await call(clients[0]!, 'tenant-b')).to.include({ allowed: true });
  });

  it('the primary writes one state file with the instance total; after a restart neither worker allows more', async () => {
    const stopped = await server.stop();
    expect(stopped.code).to.equal(0);
    expect(readdirSync(stateDir).filter((f) => f.endsWith('.json'))).to.deep.equal(['usage.json']);
    const file = path.join(stateDir, 'usage.json');
    expect(existsSync(file)).to.equal(true);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { counters: { limit: string; key: string; b: number }[] };
    const a = saved.counters.find((c) => c.key === 'tenant-a')!;
    expect(a.b).to.be.at.least(LIMIT).and.at.most(Math.floor(LIMIT * 1.05));
    expect(saved.counters.find((c) => c.key === 'tenant-b')).to.include({ b: 1 });

    server = await start();
    const clients = separateClients(server.address, CONNECTIONS);
    const again = await Promise.all(clients.map((c) => call(c, 'tenant-a')));
    expect(new Set(await workersOf(again.map((r) => r.decisionId!))).size, 'the connections reach both workers').to.equal(WORKERS);
    for (const r of again) expect(r).to.include({ allowed: false, reason: 'QUOTA_EXCEEDED' });
    // tenant-b goes on from 1 on whichever worker: 1 + 6 taken.
    const b = await Promise.all(clients.map((c) => call(c, 'tenant-b')));
    expect(b.every((r) => r.allowed)).to.equal(true);
    const stoppedAgain = await server.stop();
    expect(stoppedAgain.code).to.equal(0);
    const after = JSON.parse(readFileSync(file, 'utf8')) as { counters: { key: string; b: number }[] };
    expect(after.counters.find((c) => c.key === 'tenant-b')).to.include({ b: 1 + CONNECTIONS });
    expect(after.counters.find((c) => c.key === 'tenant-a')!.b).to.equal(a.b);
  });

  it('a worker killed and replaced takes the instance quota counters from the primary: still no more', async () => {
    server = await start();
    const first = await server.waitForLog((l) => l.msg === 'verdict serving' && l.worker === 0, 5_000);
    process.kill(first.pid as number, 'SIGKILL');
    await server.waitForLog((l) => l.msg === 'verdict serving' && l.worker === 0 && l.pid !== first.pid, 15_000);
    const clients = separateClients(server.address, CONNECTIONS);
    const answers = await Promise.all(clients.map((c) => call(c, 'tenant-a')));
    const lines = await Promise.all(answers.map((r) => server.waitForLog((l) => l.msg === 'decision' && l.decisionId === r.decisionId, 5_000)));
    expect(lines.some((l) => l.worker === 0 && l.pid !== first.pid), 'the replacement answered').to.equal(true);
    for (const r of answers) expect(r).to.include({ allowed: false, reason: 'QUOTA_EXCEEDED' });
  });
});
