/**
 * What a replica refuses from the buckets, whoever wrote there: a bundle larger than
 * policySource.maxBundleBytes (refused from its size, before it is read), a label value that is not
 * a label record, and a bundle stored as a link to another object. Each time the live set keeps
 * serving and the failure is reported; a good push afterwards is followed.
 */
import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { check, closeClients, docRequest, getPolicySet, authzClient } from '../grpc/fixtures.js';
import { cleanupServerProcesses, runVerdict } from '../support/server-process.js';
import { NATS_URL, randomToken, waitFor } from '../support/events-harness.js';
import { BundleStore, LabelConflictError } from '../../src/bundles/store.js';
import { DEFAULT_BUNDLE_LIMITS } from '../../src/bundles/format.js';
import { bundleOf, deleteBuckets, forceBundle, policyDir, pushArgs, startReplica, uniqueBuckets, V1, V2 } from './support.js';

describe('policy bundles: what a replica refuses (real process, real NATS)', function () {
  this.timeout(60_000);
  const n = uniqueBuckets();
  let nc: NatsConnection;

  before(async () => (nc = await connect({ servers: NATS_URL })));
  after(async () => {
    closeClients();
    await cleanupServerProcesses();
    await nc.close();
    await deleteBuckets(NATS_URL, n);
  });

  it('an oversized bundle, a garbage label value and a link object are refused; the live set keeps serving', async () => {
    const push = await runVerdict(pushArgs(NATS_URL, n, policyDir(V1)));
    expect(push.code, push.stderr).to.equal(0);
    const rev1 = /label \S+: (sha256:[0-9a-f]{16})/.exec(push.stdout)![1]!;
    const replica = await startReplica({ url: NATS_URL, names: n, instance: `lim-${randomToken(3)}`, maxBundleBytes: 4096 });
    const client = authzClient(replica.address);
    const failure = async (re: RegExp) => waitFor(`a failure matching ${re}`, async () => re.test((await getPolicySet(client)).lastFailure?.message ?? ''));

    const big = bundleOf(`${V1}# ${'x'.repeat(6000)}\n`);
    await forceBundle(nc, n, big);
    await failure(new RegExp(`the bundle is ${big.bytes.length} bytes; at most 4096 allowed \\(policySource\\.maxBundleBytes\\)`));
    expect((await check(client, docRequest('read'))).revision).to.equal(rev1);

    const kv = await nc.jetstream().views.kv(n.labels, { bindOnly: true });
    await kv.put(n.label, '{"schema":"verdict.policy-label.v1","revision":"../../etc"}');
    await failure(/label value: revision must look like sha256:<16 hex digits>/);
    expect((await check(client, docRequest('read'))).revision).to.equal(rev1);

    // A link named like a revision, pointing at another object: never followed.
    const other = bundleOf(V2);
    const os = await nc.jetstream().views.os(n.objects);
    const target = await os.putBlob({ name: 'elsewhere' }, other.bytes);
    await os.link(other.bundle.revision, target);
    const current = await kv.get(n.label);
    await kv.update(n.label, JSON.stringify({ schema: 'verdict.policy-label.v1', revision: other.bundle.revision, digest: other.digest, size: other.bytes.length, files: 1, at: new Date().toISOString(), by: 'test', action: 'push', message: '', previous: null, tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } }), current!.revision);
    await failure(/is a link to another object; bundles are stored whole/);
    expect((await check(client, docRequest('read'))).revision).to.equal(rev1);

    const good = await runVerdict(pushArgs(NATS_URL, n, policyDir(V1.replace('employees-read', 'staff-read'))));
    expect(good.code, good.stderr).to.equal(0);
    const rev2 = /label \S+: (sha256:[0-9a-f]{16})/.exec(good.stdout)![1]!;
    await waitFor('the good push served, the failure cleared', async () => {
      const s = await getPolicySet(client);
      return s.revision === rev2 && s.lastFailure === undefined;
    });
  });

  it('a label update racing another is refused, not lost (compare-and-set)', async () => {
    const store = await BundleStore.open(nc, { objects: n.objects, labels: n.labels }, { create: true, limits: DEFAULT_BUNDLE_LIMITS, timeoutMs: 5000 });
    const label = `race-${randomToken(3)}`;
    const record = (revision: string) => ({ schema: 'verdict.policy-label.v1' as const, revision, digest: '0'.repeat(64), size: 1, files: 1, at: new Date().toISOString(), by: 't', action: 'push' as const, message: '', previous: null, tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } });
    const first = await store.setLabel(label, record('sha256:1111111111111111'), null);
    // Both read the label at `first`; the one that writes second is refused.
    await store.setLabel(label, record('sha256:2222222222222222'), first);
    let err: unknown;
    await store.setLabel(label, record('sha256:3333333333333333'), first).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(LabelConflictError);
    expect((err as Error).message).to.contain(`label ${label} changed meanwhile (another push or rollback); run the command again`);
    // A label that must not exist yet, but does.
    err = undefined;
    await store.setLabel(label, record('sha256:4444444444444444'), null).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(LabelConflictError);
    expect((await store.label(label))!.record.revision).to.equal('sha256:2222222222222222');
  });
});
