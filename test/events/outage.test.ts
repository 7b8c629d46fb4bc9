import { expect } from 'chai';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import { ChainVerifier } from '../../src/audit/verifier.js';
import {
  check, countEvents, PrivateNats, randomToken, readStream, readTrail, Resources, runVerdict, sleep, startConsumer, startVerdict, trailFiles, uniqueNames, waitFor, writePolicies,
  type CheckResponse,
} from '../support/events-harness.js';

describe('events: NATS outage (private nats-server killed and restarted mid-stream)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup()); // also when a beforeEach hook failed

  const outages = {
    SIGKILL: 'nats-server is killed (SIGKILL) and restarted',
    SIGTERM: 'nats-server is stopped (SIGTERM) and restarted',
    SIGSTOP: 'nats-server stalls (SIGSTOP/SIGCONT: connection open, no acks)',
  } as const;
  for (const [signal, title] of Object.entries(outages) as [keyof typeof outages, string][]) {
    it(`every decision arrives exactly once and in chain order when ${title}`, async () => {
      const nats = await PrivateNats.start(res);
      const names = uniqueNames();
      const instance = `vt-${randomToken(3)}`;
      // A stall is only noticed through checkpoint timeouts: make them short.
      const configYaml = signal === 'SIGSTOP' ? 'events:\n  ackTimeoutMs: 500\n' : undefined;
      const server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: nats.url, ...names, spoolDir: res.tmpDir('spool'), instanceId: instance, ...(configYaml ? { configYaml } : {}) });
      await server.waitForLog(/^NATS available/);
      const client = res.client(server.address);

      // 300 checks over ~3 s, 10 concurrent every 100 ms; nats-server is down from ~1 s to ~3.5 s.
      const made: CheckResponse[] = [];
      const failures: unknown[] = [];
      const sender = (async () => {
        for (let round = 0; round < 30; round++) {
          const started = Date.now();
          const batch = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              check(client, { subject: { id: `u${i}`, roles: ['employee'], attributes: { suspended: i === 9 } }, action: 'read', resource: { type: 'document', id: `r${round}-${i}` } }, `r${round}-${i}`).catch((err: unknown) => {
                failures.push(err);
                return undefined;
              }),
            ),
          );
          for (const r of batch) if (r) made.push(r);
          await sleep(Math.max(0, 100 - (Date.now() - started)));
        }
      })();
      const chaos = (async () => {
        await sleep(1000);
        if (signal === 'SIGSTOP') {
          nats.proc!.child.kill('SIGSTOP');
          await sleep(2500);
          nats.proc!.child.kill('SIGCONT');
          return;
        }
        await nats.kill(signal);
        await sleep(2500);
        await nats.restart();
      })();
      await Promise.all([sender, chaos]);
      expect(failures, 'checks do not fail while NATS is down').to.deep.equal([]);
      expect(made).to.have.length(300);
      expect(server.log(/^NATS unavailable/), `the publisher noticed the outage: ${server.tail()}`).to.not.equal(undefined);

      const nc = await res.nats(nats.url);
      await waitFor('the publisher to catch up', async () => (await countEvents(nc, names.stream, names.prefix)) >= made.length, 20_000, 100);
      await sleep(500); // any late duplicate would land now
      const stored = await readStream(nc, names.stream);
      const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data as Record<string, any>);
      const ids = events.map((e) => e.id as string);
      expect(new Set(ids).size, 'no event stored twice').to.equal(ids.length);
      expect(events).to.have.length(made.length);
      expect(new Set(ids)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
      // seq 1 is the policy set that went live at start (verdict.policy.v1).
      expect(events.map((e) => e.chain.seq), 'stream order is chain order').to.deep.equal(events.map((_, i) => i + 2));
      expect(new Set(events.map((e) => e.chain.id)).size).to.equal(1);
      const verifier = new ChainVerifier();
      stored.forEach((m) => verifier.accept(m.data, `stream seq ${m.seq}`));
      expect(verifier.findings).to.deep.equal([]);

      // An audit consumer's files of the whole stream verify OK.
      const outDir = res.tmpDir('trail');
      const keeper = await startConsumer(res, { natsUrl: nats.url, ...names, outDir, durable: 'keeper' });
      await waitFor('the trail', () => readTrail(outDir).length >= stored.length, 10_000);
      expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
      const verify = await runVerdict(['audit', 'verify', ...trailFiles(outDir)]);
      expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
      expect(verify.stdout).to.include(`${made.length + 1} events`).and.match(/: OK$/m);
    });
  }

  it('NATS down when the server starts: decisions are spooled and published once it comes up', async () => {
    const nats = await PrivateNats.reserve(res);
    const names = uniqueNames();
    const server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: nats.url, ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}` });
    await server.waitForLog(/^cannot connect to NATS/);
    const client = res.client(server.address);
    const made: CheckResponse[] = [];
    for (let i = 0; i < 20; i++) made.push(await check(client, { subject: { id: 'alice', roles: ['employee'] }, action: i % 2 ? 'read' : 'edit', resource: { type: 'document', id: `d${i}` } }));
    await nats.restart();
    await server.waitForLog(/^NATS available/, 10_000);
    const nc = await res.nats(nats.url);
    await waitFor('the spooled decisions in the stream', async () => (await countEvents(nc, names.stream, names.prefix)) >= made.length, 10_000, 100);
    const events = (await readStream(nc, names.stream)).filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data as Record<string, any>);
    expect(events.map((e) => e.id)).to.deep.equal(made.map((r) => r.decisionId));
    expect(events.map((e) => e.chain.seq)).to.deep.equal(made.map((_, i) => i + 2)); // after the policy record
    expect(await server.stop('SIGTERM')).to.equal(0);
  });
});
