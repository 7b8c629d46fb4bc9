/**
 * A replica that serves a directory reports to the fleet view when fleet.natsUrl is set: listed
 * with its directory as source, compared with a label only when `verdict fleet --label` asks (the
 * same files give the same revision as their bundle), and without fleet.natsUrl it reports nothing.
 */
import { expect } from 'chai';
import { main } from '../../src/cli/main.js';
import { cleanupServerProcesses, runVerdict, startServer } from '../support/server-process.js';
import { NATS_URL, randomToken, waitFor } from '../support/events-harness.js';
import { deleteBuckets, policyDir, pushArgs, uniqueBuckets, V1, V2 } from './support.js';

async function fleet(...args: string[]): Promise<{ replicas: { instance: string; source: string; label: string | null; revision: string; current: boolean | null }[] }> {
  let out = '';
  const code = await main(['fleet', '--nats', NATS_URL, '--json', ...args], { out: (t) => (out += t), err: () => undefined });
  expect(code).to.equal(0);
  return JSON.parse(out);
}

describe('fleet view: a replica serving a directory (real process, real NATS)', function () {
  this.timeout(60_000);
  const n = uniqueBuckets();
  after(async () => {
    await cleanupServerProcesses();
    await deleteBuckets(NATS_URL, n);
  });

  it('reports with fleet.natsUrl, and is compared with a label on request', async () => {
    const dir = policyDir(V1);
    const push = await runVerdict(pushArgs(NATS_URL, n, dir));
    expect(push.code, push.stderr).to.equal(0);
    const rev = /label \S+: (sha256:[0-9a-f]{16})/.exec(push.stdout)![1]!;
    const id = `dir-${randomToken(3)}`;
    await startServer({ policies: dir, config: { events: { instanceId: id }, fleet: { bucket: n.fleet, heartbeatMs: 1000, natsUrl: NATS_URL } } });
    await startServer({ policies: policyDir(V2), config: { events: { instanceId: `quiet-${id}` }, fleet: { bucket: n.fleet, heartbeatMs: 1000 } } });
    const own = await waitFor('the directory replica in the fleet view', async () => (await fleet('--bucket', n.fleet)).replicas.find((r) => r.instance === id));
    expect(own).to.deep.include({ source: dir, label: null, revision: rev, current: null });
    const compared = (await fleet('--bucket', n.fleet, '--label', n.label, '--labels-bucket', n.labels)).replicas.find((r) => r.instance === id);
    expect(compared).to.deep.include({ label: n.label, current: true });
    // Without fleet.natsUrl a directory replica has nowhere to report.
    expect((await fleet('--bucket', n.fleet)).replicas.map((r) => r.instance)).to.deep.equal([id]);
  });
});
