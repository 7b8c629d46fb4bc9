import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import {
  check, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies,
  type CheckResponse,
} from '../support/events-harness.js';
import { checkChains } from './chain-check.js';
import { startCluster, type ConfiguredNats } from './nats-servers.js';

describe('events: R3 on a 3-node NATS cluster (three local nats-server processes)', function () {
  this.timeout(120_000);
  const res = new Resources();
  const opened: NatsConnection[] = [];
  afterEach(async () => {
    for (const nc of opened.splice(0)) await nc.close().catch(() => undefined);
    await res.cleanup();
  });
  after(() => res.cleanup());

  async function client(nodes: readonly ConfiguredNats[]): Promise<NatsConnection> {
    const nc = await connect({ servers: nodes.map((n) => n.url), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    opened.push(nc);
    return nc;
  }

  it('the stream has 3 replicas, and killing the stream leader during load loses nothing: every chain seq is stored once', async () => {
    const nodes = await startCluster(res);
    const names = uniqueNames();
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: nodes.map((n) => n.url).join(','), ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}`,
      configYaml: 'events:\n  replicas: 3\n  checkpointIntervalMs: 50\n  ackTimeoutMs: 1000\n',
    });
    await server.waitForLog(/^NATS available/, 30_000);
    const nc = await client(nodes);
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(names.stream);
    expect(info.config.num_replicas).to.equal(3);

    const api = res.client(server.address);
    const made: CheckResponse[] = [];
    const failures: unknown[] = [];
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          try {
            made.push(await check(api, { subject: { id: `u${w}`, roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `w${w}-${i}` } }, `w${w}-${i}`, 5000));
          } catch (err) {
            failures.push(err);
          }
        }
      }),
    );
    await waitFor('load before the kill', () => made.length >= 300, 15_000, 10);
    const leaderName = (await jsm.streams.info(names.stream)).cluster?.leader;
    const leader = nodes.find((n) => n.name === leaderName);
    expect(leader, `stream leader ${leaderName} is one of ours`).to.not.equal(undefined);
    await leader!.kill('SIGKILL');
    const atKill = made.length;
    await waitFor('load after the kill', () => made.length >= atKill + 300, 20_000, 10);
    await sleep(200);
    stop = true;
    await load;
    expect(failures, 'checks never fail because of NATS').to.deep.equal([]);

    const survivors = nodes.filter((n) => n !== leader);
    const reader = await client(survivors);
    let stored: Awaited<ReturnType<typeof readStream>> = [];
    await waitFor('every answered decision in the stream', async () => {
      // While the cluster settles, an ordered consumer's fetch can hang: give each read 8 s. A
      // timeout says which it was: the stream could not be read, or decisions were missing from it.
      const read = await Promise.race([
        readStream(reader, names.stream, 6000).then((messages) => ({ messages }), (err: Error) => ({ error: err.message })),
        sleep(8000).then(() => ({ error: 'no answer within 8 s' })),
      ]);
      if ('error' in read) throw new Error(`reading the stream: ${read.error}`);
      stored = read.messages;
      const ids = new Set(stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id));
      const missing = made.filter((r) => !ids.has(r.decisionId)).length;
      if (missing > 0) throw new Error(`${missing} of ${made.length} answered decisions not among the ${stored.length} messages read`);
      return true;
    }, 45_000, 250);
    const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(new Set(events.map((m) => m.data.id)).size, 'nothing stored twice').to.equal(events.length);
    const report = checkChains(stored);
    expect(report.broken).to.deep.equal([]);
    expect(report.unexplained).to.deep.equal([]);
    const [seqs] = [...report.seqs.values()];
    expect(seqs!.length, 'each seq once').to.equal(new Set(seqs).size);
    expect(Math.max(...seqs!)).to.equal(seqs!.length);
    expect((await (await reader.jetstreamManager()).streams.info(names.stream)).config.num_replicas).to.equal(3);
  });
});
