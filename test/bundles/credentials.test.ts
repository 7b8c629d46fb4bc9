/**
 * NATS with user/password authorization: the policy source, the fleet heartbeats and the bundle
 * commands use the decision stream's credential settings (events.natsUser, events.natsPasswordFile).
 * A replica configured with them serves a label; `verdict policies push --config` and
 * `verdict fleet --config` take the address, credentials and label from the same file; without
 * credentials the server refuses the push.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { stringify as toYaml } from 'yaml';
import { check, closeClients, docRequest, authzClient } from '../grpc/fixtures.js';
import { cleanupServerProcesses, isServingLine, makeTempDir, runVerdict, spawnVerdict } from '../support/server-process.js';
import { Resources, randomToken, waitFor } from '../support/events-harness.js';
import { ConfiguredNats } from '../events/nats-servers.js';
import { policyDir, uniqueBuckets, V1, V2 } from './support.js';

describe('policy bundles: NATS credentials shared with the decision stream (private nats-server with users)', function () {
  this.timeout(60_000);
  const res = new Resources();
  after(async () => {
    closeClients();
    await cleanupServerProcesses();
    await res.cleanup();
  });

  it('a replica and the commands authenticate with events.natsUser/natsPasswordFile; without them NATS refuses', async () => {
    const password = `pw-${randomToken()}`;
    const nats = await ConfiguredNats.start(res, () => `authorization { users = [ { user: ops, password: "${password}" } ] }`);
    const n = uniqueBuckets();
    const dir = makeTempDir('bundle-cred');
    const passwordFile = path.join(dir, 'nats-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const instance = `cred-${randomToken(3)}`;
    const configFile = path.join(dir, 'verdict.yaml');
    writeFileSync(
      configFile,
      toYaml({
        events: { enabled: false, instanceId: instance, natsUser: 'ops', natsPasswordFile: passwordFile },
        policySource: { url: `${nats.url}/${n.label}`, bucket: n.objects, labelsBucket: n.labels, cacheDir: path.join(dir, 'cache') },
        fleet: { bucket: n.fleet, heartbeatMs: 1000 },
      }),
    );

    const anonymous = await runVerdict(['policies', 'push', policyDir(V1), '--nats', nats.url, '--label', n.label, '--bucket', n.objects, '--labels-bucket', n.labels]);
    expect(anonymous.code).to.equal(1);
    expect(anonymous.stderr).to.match(/NATS at nats:\/\/127\.0\.0\.1:\d+ refused the connection: .*authori[sz]ation/i);

    const push = await runVerdict(['policies', 'push', policyDir(V1), '--config', configFile]);
    expect(push.code, push.stderr).to.equal(0);
    expect(push.stdout).to.match(new RegExp(`label ${n.label}: sha256:[0-9a-f]{16} \\(was unset\\)`));
    expect(push.stdout + push.stderr).to.not.contain(password);

    const replica = spawnVerdict(['serve', '--config', configFile, '--listen', '127.0.0.1:0', '--workers', '1'], { name: 'replica with credentials' });
    const serving = await replica.waitForLog(isServingLine, 20_000);
    const client = authzClient(String(serving.listen));
    expect((await check(client, docRequest('read'))).allowed).to.equal(true);
    expect(replica.stdout).to.not.contain(password);

    const second = await runVerdict(['policies', 'push', policyDir(V2), '--config', configFile]);
    expect(second.code, second.stderr).to.equal(0);
    await waitFor('the replica on the second push', async () => (await check(client, docRequest('edit'))).allowed === true);

    const fleet = await waitFor('the replica in the fleet view', async () => {
      const run = await runVerdict(['fleet', '--config', configFile, '--json']);
      const out = JSON.parse(run.stdout) as { replicas: { instance: string; current: boolean | null }[] };
      return out.replicas.find((r) => r.instance === instance && r.current === true);
    });
    expect(fleet).to.not.equal(undefined);
  });
});
