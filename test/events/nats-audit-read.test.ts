import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection, type StreamConfig } from 'nats';
import { headKey } from '../../src/events/checkpoint.js';
import { startKeeper } from '../audit/support.js';
import { check, randomToken, readTrail, Resources, runVerdict, startVerdict, trailFiles, uniqueNames, waitFor, writePolicies } from '../support/events-harness.js';
import { ConfiguredNats } from './nats-servers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLE = path.join(ROOT, 'examples/nats/nats-server.conf');
const STREAM_EXAMPLE = path.join(ROOT, 'examples/nats/verdict-stream.json');

describe('audit verify / explain / replay / diff read NATS with the --nats-* credentials (real nats-server with examples/nats/nats-server.conf)', function () {
  this.timeout(60_000);
  const res = new Resources();
  const opened: NatsConnection[] = [];
  after(async () => {
    for (const nc of opened) await nc.close().catch(() => undefined);
    await res.cleanup();
  });

  it('the read-only keeper user reads the heads KV and the revisions Object Store with its credentials and can write neither; without credentials each command is refused (exit 1, saying what to give)', async () => {
    const names = uniqueNames();
    const pw = { operator: `op-${randomToken()}`, verdict: `v-${randomToken()}`, keeper: `k-${randomToken()}` };
    const text = readFileSync(EXAMPLE, 'utf8')
      .replace(/^listen: .*$/m, '')
      .replace(/^jetstream .*$/m, '')
      .replaceAll('VERDICT_DECISIONS', names.stream)
      .replaceAll('verdict.decisions', names.prefix)
      .replace('change-me-operator', pw.operator)
      .replace('change-me-verdict', pw.verdict)
      .replace('change-me-keeper', pw.keeper);
    const nats = await ConfiguredNats.start(res, () => text);
    const dir = res.tmpDir('secrets');
    const secret = (name: string, value: string) => {
      writeFileSync(path.join(dir, name), `${value}\n`, { mode: 0o600 });
      return path.join(dir, name);
    };
    const as = async (user: string, pass: string) => {
      const nc = await connect({ servers: nats.url, user, pass, maxReconnectAttempts: 0, timeout: 3000 });
      opened.push(nc);
      return nc;
    };

    // The operator creates the stream and both buckets (docs/events.md); Verdict runs as `verdict`.
    const op = await as('operator', pw.operator);
    const stream = JSON.parse(readFileSync(STREAM_EXAMPLE, 'utf8').replaceAll('VERDICT_DECISIONS', names.stream).replaceAll('verdict.decisions', names.prefix)) as StreamConfig;
    await (await op.jetstreamManager()).streams.add(stream);
    const ojs = op.jetstream();
    await ojs.views.kv('VERDICT_HEADS', { history: 64 });
    await ojs.views.os('VERDICT_POLICIES', { storage: 'file' as never });
    const instance = `vt-${randomToken(3)}`;
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: nats.url, ...names, spoolDir: res.tmpDir('spool'), instanceId: instance,
      configYaml: `events:\n  checkpointIntervalMs: 20\n  headsIntervalMs: 1000\n  natsUser: verdict\n  natsPasswordFile: ${secret('verdict.password', pw.verdict)}\n  manageStream: false\n`,
    });
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } }));
    const kvOp = await ojs.views.kv('VERDICT_HEADS', { bindOnly: true });
    await waitFor('the revision\'s text in the Object Store', async () => (await (await ojs.views.os('VERDICT_POLICIES')).list()).length === 1, 10_000, 100);
    await waitFor('Verdict\'s head in the KV bucket', async () => (await kvOp.get(headKey(instance)))?.operation === 'PUT', 10_000, 100);
    expect(await server.stop('SIGTERM'), server.tail(20)).to.equal(0);

    const out = res.tmpDir('trail');
    const keeperCreds = ['--nats-user', 'keeper', '--nats-password-file', secret('keeper.password', pw.keeper)];
    const keeper = await startKeeper(res, ['--nats', nats.url, '--stream', names.stream, '--out', out, '--durable', 'keeper', ...keeperCreds]);
    await waitFor('the whole chain in the keeper\'s trail', () => readTrail(out).some((l) => (l.data as { final?: boolean } | undefined)?.final === true), 15_000, 100);
    expect(await keeper.stop('SIGTERM'), keeper.tail(20)).to.equal(0);
    const files = trailFiles(out);
    const revision = (readTrail(out).find((l) => l.data?.revision)?.data as { revision: string }).revision;

    // With the keeper's credentials: heads and revisions are read and everything verifies.
    const [verify, explain, replay, diff] = await Promise.all([
      runVerdict(['audit', 'verify', '--heads', nats.url, '--revisions', nats.url, ...keeperCreds, ...files]),
      runVerdict(['audit', 'explain', made[0]!.decisionId, '--revisions', nats.url, ...keeperCreds, ...files]),
      runVerdict(['audit', 'replay', '--revisions', nats.url, ...keeperCreds, ...files]),
      runVerdict(['audit', 'diff', revision, revision, '--revisions', nats.url, ...keeperCreds]),
    ]);
    expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
    expect(verify.stdout).to.match(/stored policy revisions: 1 checked, 1 verified/);
    expect(verify.stdout).to.match(/: OK$/m);
    expect(explain.code, explain.stdout + explain.stderr).to.equal(0);
    expect(explain.stdout).to.match(new RegExp(`policy text of ${revision}: verified`));
    expect(replay.code, replay.stdout + replay.stderr).to.equal(0);
    expect(replay.stdout).to.match(/replayed 3 decisions against 1 revisions: 3 same/);
    expect(diff.code, diff.stdout + diff.stderr).to.equal(0);
    expect(verify.stdout + verify.stderr + explain.stdout + explain.stderr, 'the password is never printed').to.not.include(pw.keeper);

    // Without credentials the server refuses each of them: exit 1 and what to give.
    const hint = /Authorization Violation'? \(give a user allowed to read it: --nats-user with --nats-password-file/;
    const refused = [
      ['audit', 'verify', '--heads', nats.url, ...files],
      ['audit', 'explain', made[0]!.decisionId, '--revisions', nats.url, ...files],
      ['audit', 'replay', '--revisions', nats.url, ...files],
      ['audit', 'diff', revision, revision, '--revisions', nats.url, '--nats-user', 'keeper', '--nats-password-file', secret('wrong.password', 'not-the-password')],
    ];
    const runs = await Promise.all(refused.map((args) => runVerdict(args)));
    runs.forEach((r, i) => {
      expect(r.code, `${refused[i]!.slice(0, 3).join(' ')}: ${r.stderr}`).to.equal(1);
      expect(r.stderr, `${refused[i]!.join(' ')}: ${r.stderr}`).to.match(hint);
    });
    expect(runs[0]!.stderr).to.match(/cannot read chain heads from nats:\/\/127\.0\.0\.1:\d+: 'Authorization Violation'/);
    // A missing credential file is a usage error naming the flag.
    const broken = await runVerdict(['audit', 'diff', revision, revision, '--revisions', nats.url, '--nats-user', 'keeper', '--nats-password-file', path.join(dir, 'missing')]);
    expect(broken.code).to.equal(2);
    expect(broken.stderr).to.match(/--nats-password-file: cannot read .*missing \(ENOENT\)/);

    // Reading is all the keeper may do: no put, delete or purge on either bucket.
    const k = await as('keeper', pw.keeper);
    const kv = await k.jetstream().views.kv('VERDICT_HEADS', { bindOnly: true });
    const os = await k.jetstream().views.os('VERDICT_POLICIES');
    const refusedOp = async (what: string, op: () => Promise<unknown>) => {
      const err = await op().then(() => undefined, (e: unknown) => e);
      expect(err, `${what} is refused`).to.be.instanceOf(Error);
      expect(String((err as Error).message), what).to.match(/Permissions Violation|permissions/i);
    };
    await refusedOp('a forged head', () => kv.put(headKey(instance), '{"forged":true}'));
    await refusedOp('deleting the head', () => kv.delete(headKey(instance)));
    await refusedOp('a forged revision', () => os.putBlob({ name: 'sha256:0000000000000000' }, new TextEncoder().encode('{}')));
    await refusedOp('deleting a revision', () => os.delete(revision));
    const kjsm = await k.jetstreamManager();
    await refusedOp('purging the heads', () => kjsm.streams.purge('KV_VERDICT_HEADS'));
    await refusedOp('purging the revisions', () => kjsm.streams.purge('OBJ_VERDICT_POLICIES'));
    expect((await kvOp.get(headKey(instance)))?.operation, 'the head is untouched').to.equal('PUT');
    expect((await (await ojs.views.os('VERDICT_POLICIES')).list()).map((o) => o.name)).to.deep.equal([revision]);
  });
});
