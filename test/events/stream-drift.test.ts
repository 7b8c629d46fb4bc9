import { expect } from 'chai';
import type { NatsConnection, StreamConfig } from 'nats';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import {
  check, countEvents, NATS_URL, randomToken, readStream, Resources, sleep, startVerdict, streamExists, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type CheckResponse, type ServerProc,
} from '../support/events-harness.js';
import { healthStatus, TRAIL_HEALTH, trailStatus } from './trail-probe.js';

const ask = (client: AuthzClient, i: number) => check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } }, `r${i}`);

async function streamConfig(nc: NatsConnection, stream: string): Promise<StreamConfig> {
  return (await (await nc.jetstreamManager()).streams.info(stream)).config;
}

/** What an anonymous client with the old recommended permissions could do: shrink the stream to one event. */
async function shrink(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  const have = (await jsm.streams.info(stream)).config;
  await jsm.streams.update(stream, { ...have, max_msgs: 1 });
}

describe('events: a stream nobody can shrink unnoticed (real server, real NATS)', function () {
  this.timeout(40_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(names: { stream: string; prefix: string }, extra = ''): Promise<ServerProc> {
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}`,
      configYaml: `events:\n  checkpointIntervalMs: 20\n  streamCheckIntervalMs: 200\n${extra}`,
    });
    await server.waitForLog(/^NATS available/);
    return server;
  }

  it('max_msgs: 1 set under a running Verdict is found within the check interval, logged as an error, reported, and undone', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names);
    const client = res.client(server.address);
    for (let i = 0; i < 20; i++) await ask(client, i);
    const nc = await res.nats(NATS_URL);
    await waitFor('20 events', async () => (await countEvents(nc, names.stream, names.prefix)) >= 20);
    await shrink(nc, names.stream);
    const found = await server.waitForLog(/^decision stream configuration had been changed; restored it/, 5000);
    expect(found.level).to.equal(50);
    expect(found.drift).to.deep.equal(['max_msgs is 1, must be -1 (unlimited): the stream would discard events']);
    expect((await streamConfig(nc, names.stream)).max_msgs).to.equal(-1);
    const trail = await trailStatus(client);
    expect(trail.lastStreamIncident).to.deep.include({ problems: ['max_msgs is 1, must be -1 (unlimited): the stream would discard events'], repaired: true });
    expect(trail.counters).to.include({ streamDrifts: '1' });
    // Put back, the stream takes every later decision again.
    const later: CheckResponse[] = [];
    for (let i = 0; i < 5; i++) later.push(await ask(client, 100 + i));
    await waitFor('the later decisions', async () => {
      const ids = new Set((await readStream(nc, names.stream)).map((m) => m.data.id));
      return later.every((r) => ids.has(r.decisionId));
    });
  });

  it('with events.manageStream false a drifted stream is not published into: events wait in the spool, the trail is NOT_SERVING, and flow once an operator fixes it', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    // The operator creates the stream (here: a first Verdict that may manage it).
    const first = await serve(names);
    expect(await first.stop('SIGTERM')).to.equal(0);
    const server = await serve(names, '  manageStream: false\n  healthRequiresTrail: true\n');
    const client = res.client(server.address);
    expect(await healthStatus(server.address, TRAIL_HEALTH)).to.equal('SERVING');
    const nc = await res.nats(NATS_URL);
    await shrink(nc, names.stream);
    const drift = await server.waitForLog(/^decision stream is not as required/, 5000);
    expect(drift.drift).to.deep.equal(['max_msgs is 1, must be -1 (unlimited): the stream would discard events']);
    await waitFor('trail NOT_SERVING', async () => (await healthStatus(server.address, TRAIL_HEALTH)) === 'NOT_SERVING', 5000, 50);
    expect(await healthStatus(server.address, ''), 'events.healthRequiresTrail').to.equal('NOT_SERVING');
    const trail = await trailStatus(client);
    expect(trail.healthy ?? false).to.equal(false);
    expect(trail.streamDrift).to.deep.equal(['max_msgs is 1, must be -1 (unlimited): the stream would discard events']);
    expect(trail.problems).to.deep.equal(['stream: max_msgs is 1, must be -1 (unlimited): the stream would discard events']);
    expect((await streamConfig(nc, names.stream)).max_msgs, 'Verdict did not touch it').to.equal(1);

    // Decisions go on, their events wait in the spool: nothing is published into a stream that would discard them.
    const held: CheckResponse[] = [];
    for (let i = 0; i < 10; i++) held.push(await ask(client, i));
    await sleep(500);
    const storedIds = new Set((await readStream(nc, names.stream)).map((m) => m.data.id));
    expect(held.some((r) => storedIds.has(r.decisionId))).to.equal(false);

    // The operator puts the stream back: the held events are published.
    const jsm = await nc.jetstreamManager();
    await jsm.streams.update(names.stream, { ...(await streamConfig(nc, names.stream)), max_msgs: -1 });
    await waitFor('the held events', async () => {
      const ids = new Set((await readStream(nc, names.stream)).filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id));
      return held.every((r) => ids.has(r.decisionId));
    }, 10_000, 100);
    await waitFor('SERVING again', async () => (await healthStatus(server.address, '')) === 'SERVING', 5000, 50);
  });

  it('a restart puts back a stream left shrunk, with an error; a stream deleted under a running Verdict is recreated, with an error', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const first = await serve(names);
    expect(await first.stop('SIGTERM')).to.equal(0);
    const nc = await res.nats(NATS_URL);
    await shrink(nc, names.stream);
    const server = await serve(names);
    expect(server.log(/^decision stream configuration had been changed; restored it/)?.drift).to.deep.equal(['max_msgs is 1, must be -1 (unlimited): the stream would discard events']);
    expect((await streamConfig(nc, names.stream)).max_msgs).to.equal(-1);

    await (await nc.jetstreamManager()).streams.delete(names.stream);
    const deleted = await server.waitForLog(/^decision stream was deleted under a running Verdict/, 5000);
    expect(deleted.level).to.equal(50);
    expect(await streamExists(nc, names.stream)).to.equal(true);
    const client = res.client(server.address);
    const trail = await trailStatus(client);
    expect(trail.lastStreamIncident).to.deep.include({ problems: ['the stream was deleted'], repaired: true });
    const after = await ask(client, 1);
    await waitFor('a decision in the new stream', async () => (await readStream(nc, names.stream)).some((m) => m.data.id === after.decisionId));
  });

  it('a stream deleted while events.manageStream is false is reported, not recreated', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const first = await serve(names);
    expect(await first.stop('SIGTERM')).to.equal(0);
    const server = await serve(names, '  manageStream: false\n');
    const nc = await res.nats(NATS_URL);
    await (await nc.jetstreamManager()).streams.delete(names.stream);
    await server.waitForLog(/^decision stream is not as required/, 5000);
    await waitFor('trail NOT_SERVING', async () => (await healthStatus(server.address, TRAIL_HEALTH)) === 'NOT_SERVING', 5000, 50);
    const trail = await trailStatus(res.client(server.address));
    expect(trail.streamDrift![0]).to.match(/does not exist and events.manageStream is false/);
    expect(trail.lastStreamIncident).to.deep.include({ problems: ['the stream was deleted'], repaired: false });
    expect(await streamExists(nc, names.stream)).to.equal(false);
  });
});
