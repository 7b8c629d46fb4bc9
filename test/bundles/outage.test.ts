/**
 * A replica and NATS outages, on a private nats-server (own port and store directory) that the
 * test stops and restarts: a replica starts from its cached bundle when NATS is down, and follows
 * pushes made once NATS is back; a connected replica whose NATS restarts re-watches the label and
 * picks up a push made after the restart (polling off, so only the re-watch can find it); without
 * NATS and without a cache a replica does not start, and says why; at start, a label naming a
 * bundle that does not load falls back to the cache.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { check, closeClients, docRequest, getPolicySet, authzClient } from '../grpc/fixtures.js';
import { cleanupServerProcesses, isServingLine, runVerdict } from '../support/server-process.js';
import { PrivateNats, Resources, randomToken, waitFor } from '../support/events-harness.js';
import { BROKEN, bundleOf, forceBundle, policyDir, pushArgs, startReplica, uniqueBuckets, V1, V2 } from './support.js';

const V3 = V2.replace('actions: [edit]', 'actions: [edit, delete]');

describe('policy bundles: NATS down at start, NATS restarted (private nats-server)', function () {
  this.timeout(90_000);
  const res = new Resources();

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
    await res.cleanup();
  });

  async function push(nats: PrivateNats, n: ReturnType<typeof uniqueBuckets>, text: string): Promise<string> {
    const run = await runVerdict(pushArgs(nats.url, n, policyDir(text)));
    expect(run.code, run.stderr).to.equal(0);
    return /label \S+: (sha256:[0-9a-f]{16})/.exec(run.stdout)![1]!;
  }

  it('starts from the cached bundle while NATS is down, then follows the label once NATS is back, and after a restart', async () => {
    const nats = await PrivateNats.start(res);
    const n = uniqueBuckets();
    const rev1 = await push(nats, n, V1);
    const first = await startReplica({ url: nats.url, names: n, instance: `o1-${randomToken(3)}`, pollIntervalMs: 0 });
    const cacheFile = path.join(first.cacheDir, `${n.objects}.${n.label}.bundle`);
    await waitFor('the bundle cached', () => existsSync(cacheFile));
    await first.stop('SIGTERM');

    await nats.kill('SIGKILL');
    const started = Date.now();
    const replica = await startReplica({ url: nats.url, names: n, instance: `o2-${randomToken(3)}`, cacheDir: first.cacheDir, pollIntervalMs: 0, timeoutMs: 1000 });
    const cached = replica.findLog('serving the cached policy bundle: the label could not be used at start');
    expect(cached, replica.tail()).to.deep.include({ revision: rev1 });
    expect(String(cached!.reason)).to.contain('did not answer within 1000 ms');
    expect(Date.now() - started, 'started within the NATS timeout plus start-up').to.be.below(10_000);
    const client = authzClient(replica.address);
    expect(await check(client, docRequest('read'))).to.deep.include({ allowed: true, revision: rev1 });
    expect((await getPolicySet(client)).revision).to.equal(rev1);

    // NATS back (same store): the replica connects, watches, and a push reaches it.
    await nats.restart();
    await replica.waitForLog('NATS connected', 15_000);
    const rev2 = await push(nats, n, V2);
    await waitFor('the replica on the push made after NATS came back', async () => (await check(client, docRequest('edit'))).revision === rev2, 15_000);
    expect((await check(client, docRequest('edit'))).allowed).to.equal(true);

    // NATS restarted under the connected replica: it re-watches (polling is off) and follows.
    await nats.kill('SIGKILL');
    await replica.waitForLog('NATS disconnected; reconnecting', 10_000);
    await nats.restart();
    await waitFor('the replica reconnected', () => replica.logs.filter((l) => l.msg === 'NATS reconnected').length > 0, 20_000);
    const rev3 = await push(nats, n, V3);
    // The re-watch at the reconnect finds it at once; nats.js's own ordered consumer alone took about
    // 14 s to recover here (measured with the re-watch disabled), beyond this wait.
    const pushed = Date.now();
    await waitFor('the replica on the push made after the restart', async () => (await check(client, docRequest('delete'))).revision === rev3, 8000, 20);
    console.log(`      push after the NATS restart → replica serving it: ${Date.now() - pushed} ms`);
    expect((await check(client, docRequest('delete'))).allowed).to.equal(true);
    // And the cache followed: a start without NATS now serves rev3.
    await waitFor('the cache updated', async () => {
      const { BundleCache } = await import('../../src/bundles/cache.js');
      const { DEFAULT_BUNDLE_LIMITS } = await import('../../src/bundles/format.js');
      return new BundleCache(first.cacheDir, n.objects, n.label).read(DEFAULT_BUNDLE_LIMITS)?.bundle.revision === rev3;
    });
  });

  it('without NATS and without a cached bundle, a replica does not start and says why', async () => {
    const nats = await PrivateNats.reserve(res); // never started
    const n = uniqueBuckets();
    const replica = await startReplica({ url: nats.url, names: n, instance: `o3-${randomToken(3)}`, timeoutMs: 500, wait: false });
    const status = await replica.exitWithin(20_000);
    expect(status.code).to.equal(1);
    const last = replica.logs.at(-1)!;
    expect(last.msg).to.match(/^verdict failed to start: policy set nats:\/\/127\.0\.0\.1:\d+\/\S+ rejected: NATS at nats:\/\/127\.0\.0\.1:\d+ did not answer within 500 ms; and no bundle is cached in \S+ yet/);
    expect(replica.findLog(isServingLine)).to.equal(undefined);
  });

  it('at start, a label naming a bundle that does not load falls back to the cached bundle and reports the failure', async () => {
    const nats = await PrivateNats.start(res);
    const n = uniqueBuckets();
    const rev1 = await push(nats, n, V1);
    const first = await startReplica({ url: nats.url, names: n, instance: `o4-${randomToken(3)}` });
    await waitFor('the bundle cached', () => existsSync(path.join(first.cacheDir, `${n.objects}.${n.label}.bundle`)));
    await first.stop('SIGTERM');
    const nc = await res.nats(nats.url);
    const bad = bundleOf(BROKEN);
    await forceBundle(nc, n, bad);
    const replica = await startReplica({ url: nats.url, names: n, instance: `o5-${randomToken(3)}`, cacheDir: first.cacheDir });
    const client = authzClient(replica.address);
    expect(await check(client, docRequest('read'))).to.deep.include({ allowed: true, revision: rev1 });
    const set = await waitFor('the failure reported', async () => {
      const s = await getPolicySet(client);
      return s.lastFailure ? s : undefined;
    });
    expect(set!.revision).to.equal(rev1);
    expect(set!.lastFailure!.issues![0]).to.deep.include({ file: 'document.yaml', code: 'CEL_TYPE' });
    expect(replica.findLog('serving the cached policy bundle: the label could not be used at start')).to.deep.include({ revision: rev1 });
    // A good push afterwards is followed, and clears the failure.
    const rev2 = await push(nats, n, V2);
    await waitFor('the replica on the good push', async () => (await getPolicySet(client)).revision === rev2);
    expect((await getPolicySet(client)).lastFailure).to.equal(undefined);
  });
});
