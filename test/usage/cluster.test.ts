/**
 * scope: cluster with three `verdict serve` processes sharing one real nats-server: driven at twice
 * a cluster quota, the total allowed stays within the documented bound; with NATS stopped, the
 * documented fallback (local counting with a reduced share) applies and is logged.
 */
import { expect } from 'chai';
import { call, verdictClient, type AnyClient } from '../gateway/helpers/envoy.js';
import { Resources } from '../support/events-harness.js';
import { cleanupServerProcesses, makeTempDir, writeFile, type VerdictProcess } from '../support/server-process.js';
import { ConfiguredNats } from '../events/nats-servers.js';
import { scrape, startWithAdmin } from '../observability/helpers.js';

const LIMIT = 300;
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
    scope: cluster
`;

describe('usage limits with scope: cluster (three verdict serve, one NATS)', function () {
  this.timeout(90_000);
  const res = new Resources();
  let nats: ConfiguredNats;
  const servers: VerdictProcess[] = [];
  const admins: string[] = [];
  const clients: AnyClient[] = [];

  before(async () => {
    nats = await ConfiguredNats.start(res, () => '');
    const dir = makeTempDir('usage-cluster');
    writeFile(dir, 'api.yaml', POLICY);
    const config = { events: { natsUrl: nats.url }, usage: { stateDir: '', cluster: { bucket: 'VT_USAGE_CLUSTER', syncIntervalMs: 50, staleAfterMs: 1000, fallback: 'local', localShare: 0.34 } } };
    for (let i = 0; i < 3; i++) {
      const { proc, admin } = await startWithAdmin({ policies: dir, config, name: `replica ${i}` });
      servers.push(proc);
      admins.push(admin);
    }
    for (const s of servers) clients.push(verdictClient(s.address));
  });

  after(async () => {
    for (const c of clients) c.close();
    await cleanupServerProcesses();
    await res.cleanup();
  });

  const check = (replica: number, subject: string) =>
    call<{ allowed: boolean; reason: string }>(clients[replica]!, 'Check', { subject: { id: subject }, action: { name: 'call' }, resource: { type: 'api', id: 'a' } });

  /** `total` checks for `subject`, round-robin over the replicas, `perTick` every 25 ms; the allowed count per replica. */
  async function drive(subject: string, total: number, perTick: number, replicas = [0, 1, 2]): Promise<number[]> {
    const allowed = [0, 0, 0];
    let sent = 0;
    while (sent < total) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < perTick && sent < total; i++, sent++) {
        const r = replicas[sent % replicas.length]!;
        batch.push(check(r, subject).then((a) => void (a.allowed && allowed[r]!++)));
      }
      await Promise.all([...batch, new Promise((resolve) => setTimeout(resolve, 25))]);
    }
    return allowed;
  }

  it(`driven at twice the limit (${2 * LIMIT} checks over about 5 s), the three allow at most 5% more than ${LIMIT}`, async () => {
    const allowed = await drive('tenant-a', 2 * LIMIT, 6);
    const total = allowed.reduce((a, b) => a + b, 0);
    console.log(`      allowed per replica ${allowed.join(' + ')} = ${total} of ${2 * LIMIT} (limit ${LIMIT})`);
    expect(total).to.be.at.least(LIMIT);
    expect(total).to.be.at.most(Math.floor(LIMIT * 1.05));
    // Every replica took part: the shared count stopped each of them.
    for (const n of allowed) expect(n).to.be.greaterThan(0);
    const metrics = await scrape(admins[0]!);
    expect(metrics.value('verdict_usage_cluster_fallback')).to.equal(0);
    expect(metrics.value('verdict_usage_keys')).to.equal(1);
  });

  it('NATS stopped: after usage.cluster.staleAfterMs each replica counts alone with localShare of the limit, and says so', async () => {
    await nats.kill();
    // Traffic makes each replica try to sync, fail, and after staleAfterMs switch to the fallback.
    await drive('tenant-b', 30, 3);
    for (const s of servers) await s.waitForLog((l) => l.msg === 'usage cluster counters unreachable; cluster limits count locally with a reduced share (usage.cluster.fallback: local)', 10_000);
    for (const admin of admins) expect((await scrape(admin)).value('verdict_usage_cluster_fallback')).to.equal(1);
    const allowed = await drive('tenant-c', 3 * 150, 15);
    console.log(`      fallback: allowed per replica ${allowed.join(', ')} (share 0.34 of ${LIMIT} = ${Math.floor(LIMIT * 0.34)})`);
    for (const n of allowed) expect(n).to.equal(Math.floor(LIMIT * 0.34));
  });
});
