import { expect } from 'chai';
import { mkdirSync, renameSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { EVENT_SCHEMA, EVENTS_LOST_SCHEMA } from '../../src/events/event.js';
import {
  check, NATS_URL, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type CheckResponse, type ServerProc,
} from '../support/events-harness.js';
import { checkChains } from './chain-check.js';
import { healthStatus, TRAIL_HEALTH, trailStatus } from './trail-probe.js';

const ask = (client: AuthzClient, i: number, tag: string) =>
  check(client, { subject: { id: `u${i}`, roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `${tag}-${i}` } }, `${tag}-${i}`, 5000);

/**
 * The publisher thread killed under a running server (fault injection: VERDICT_FAULT_INJECTION=
 * publisher-thread makes SIGUSR2 crash it with an uncaught error, as a bug would), and kept from
 * starting again by a spool segment replaced with a directory (EISDIR), then given back.
 */
describe('events: a dead publisher thread is started again from the spool (real server, real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(names: { stream: string; prefix: string }, spoolDir: string, configYaml: string, required = false, fault = 'publisher-thread'): Promise<ServerProc> {
    process.env.VERDICT_FAULT_INJECTION = fault;
    try {
      return await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir, instanceId: `vt-${randomToken(3)}`, configYaml, required });
    } finally {
      delete process.env.VERDICT_FAULT_INJECTION;
    }
  }

  /** Makes the spool's segment unopenable (a directory in its place); returns the undo. */
  function blockSpool(spoolDir: string): () => void {
    const segment = path.join(spoolDir, 'decisions-00000001.wal');
    renameSync(segment, `${segment}.aside`);
    mkdirSync(segment);
    return () => {
      rmdirSync(segment);
      renameSync(`${segment}.aside`, segment);
    };
  }

  it('default mode: a thread killed under load is restarted and every answered decision still reaches the stream once', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names, res.tmpDir('spool'), 'events:\n  checkpointIntervalMs: 20\n');
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const made: CheckResponse[] = [];
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) made.push(await ask(client, i, `w${w}`));
      }),
    );
    await waitFor('checks before the crash', () => made.length >= 100, 10_000, 10);
    server.child.kill('SIGUSR2');
    await server.waitForLog(/^decision publisher thread died/);
    await server.waitForLog('decision publisher thread running again');
    const atRestart = made.length;
    await waitFor('checks after the restart', () => made.length >= atRestart + 100, 10_000, 10);
    stop = true;
    await load;
    for (const r of made) expect(r.reason).to.equal('RULE_ALLOW');

    const nc = await res.nats(NATS_URL);
    let stored: Awaited<ReturnType<typeof readStream>> = [];
    await waitFor('every answered decision in the stream', async () => {
      stored = await readStream(nc, names.stream);
      const ids = new Set(stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id));
      return made.every((r) => ids.has(r.decisionId));
    }, 20_000, 200);
    const ids = stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id);
    expect(new Set(ids).size, 'nothing stored twice').to.equal(ids.length);
    const report = checkChains(stored);
    expect(report.seqs.size, 'the dead thread\'s chain and the new one').to.equal(2);
    expect(report.unexplained).to.deep.equal([]);
    expect(report.broken).to.deep.equal([]);
    expect(await healthStatus(server.address, TRAIL_HEALTH)).to.equal('SERVING');
    const trail = await trailStatus(client);
    expect(trail).to.include({ enabled: true, healthy: true, publisherRunning: true });
    expect(trail.counters).to.include({ threadRestarts: '1', lostHandoff: '0', failed: '0' });
  });

  it('while no thread runs: default mode holds events within the hand-off bound, drops (and later explains) the rest', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const spool = res.tmpDir('spool');
    const server = await serve(names, spool, 'events:\n  checkpointIntervalMs: 20\n  handoffMaxEvents: 20\n');
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const before = await ask(client, 0, 'before');
    await sleep(100);
    const unblock = blockSpool(spool);
    server.child.kill('SIGUSR2');
    await server.waitForLog(/could not start again/);
    expect(await healthStatus(server.address, TRAIL_HEALTH)).to.equal('NOT_SERVING');
    expect(await healthStatus(server.address, '')).to.equal('SERVING'); // events.healthRequiresTrail is off
    const down = await trailStatus(client);
    expect(down.healthy ?? false).to.equal(false);
    expect(down.publisherRunning ?? false).to.equal(false);
    expect(down.problems).to.deep.equal(['the decision publisher thread is down (restarting)']);
    const during: CheckResponse[] = [];
    for (let i = 0; i < 30; i++) during.push(await ask(client, i, 'during'));
    for (const r of during) expect(r.reason, 'default mode answers as decided').to.equal('RULE_ALLOW');
    unblock();
    await server.waitForLog('decision publisher thread running again', 15_000);

    const nc = await res.nats(NATS_URL);
    let stored: Awaited<ReturnType<typeof readStream>> = [];
    await waitFor('the held events and the loss record', async () => {
      stored = await readStream(nc, names.stream);
      return stored.some((m) => m.data.schema === EVENTS_LOST_SCHEMA) && stored.filter((m) => m.data.schema === EVENT_SCHEMA).length >= 21;
    }, 15_000, 200);
    const ids = new Set(stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id));
    expect(ids.has(before.decisionId)).to.equal(true);
    expect(during.slice(0, 20).every((r) => ids.has(r.decisionId)), 'the first 20 (the bound) were held and handed over').to.equal(true);
    expect(during.slice(20).some((r) => ids.has(r.decisionId)), 'the rest were dropped').to.equal(false);
    const lost = stored.find((m) => m.data.schema === EVENTS_LOST_SCHEMA)!.data as { lost: Record<string, unknown> };
    expect(lost.lost).to.include({ stage: 'handoff', count: 10 });
    expect(String(lost.lost.reason)).to.match(/publisher thread is down/);
    expect(checkChains(stored).unexplained).to.deep.equal([]);
    await waitFor('trail healthy again', async () => (await trailStatus(client)).healthy === true, 10_000, 100);
    expect((await trailStatus(client)).counters).to.include({ lostHandoff: '10', failed: '10' });
  });

  it('required mode: every check is denied with AUDIT_UNAVAILABLE while the thread is down, and allowed again once it runs', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const spool = res.tmpDir('spool');
    const server = await serve(names, spool, 'events:\n  checkpointIntervalMs: 20\n  healthRequiresTrail: true\n', true);
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    expect(await ask(client, 0, 'before')).to.include({ reason: 'RULE_ALLOW' });
    const unblock = blockSpool(spool);
    server.child.kill('SIGUSR2');
    await server.waitForLog(/could not start again/);
    for (let i = 0; i < 5; i++) expect(await ask(client, i, 'during')).to.include({ allowed: false, reason: 'AUDIT_UNAVAILABLE' });
    expect(await healthStatus(server.address, ''), 'healthRequiresTrail: the whole server is NOT_SERVING').to.equal('NOT_SERVING');
    unblock();
    await server.waitForLog('decision publisher thread running again', 15_000);
    await waitFor('SERVING again', async () => (await healthStatus(server.address, '')) === 'SERVING', 10_000, 100);
    const after = await ask(client, 0, 'after');
    expect(after).to.include({ allowed: true, reason: 'RULE_ALLOW' });
    const nc = await res.nats(NATS_URL);
    await waitFor('the allowed decision in the stream', async () => (await readStream(nc, names.stream)).some((m) => m.data.id === after.decisionId), 10_000, 100);
  });

  it('required mode: a check waiting on a thread that dies after taking its group is denied at once, not left hanging; counters still answer', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names, res.tmpDir('spool'), 'events:\n  checkpointIntervalMs: 20\n', true, 'publisher-thread-after-take');
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    expect(await ask(client, 0, 'before')).to.include({ allowed: true, reason: 'RULE_ALLOW' });
    server.child.kill('SIGUSR2'); // the thread dies right after taking the next group, before answering it
    await sleep(300);
    const started = Date.now();
    // Before: the answer died with the thread and this call waited until its deadline (5 s).
    const orphan = await ask(client, 1, 'orphan');
    expect(orphan).to.include({ allowed: false, reason: 'AUDIT_UNAVAILABLE' });
    expect(Date.now() - started, 'answered, not left to its deadline').to.be.below(4000);
    await server.waitForLog(/^decision publisher thread died/);
    const status = await trailStatus(client);
    expect(status.counters?.threadRestarts).to.be.oneOf(['0', '1']);
    await server.waitForLog('decision publisher thread running again', 15_000);
    await waitFor('allowed again', async () => (await ask(client, 2, 'after')).allowed === true, 10_000, 100);
  });
});
