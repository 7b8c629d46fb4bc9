/**
 * The decision publisher's state on /metrics, with events on to a real NATS JetStream (a stream
 * and subject prefix of the test's own): events recorded, spooled and confirmed as decisions are
 * made; when NATS goes away (a private nats-server, killed) the backlog shows as unconfirmed bytes
 * and the connection gauge drops, and both recover when it is back.
 */
import { expect } from 'chai';
import { check, NATS_URL, PrivateNats, Resources, startVerdict, uniqueNames, waitFor, writePolicies } from '../support/events-harness.js';
import { scrape } from './helpers.js';

const ADMIN_CONFIG = 'admin:\n  listen: 127.0.0.1:0\n';
const read = (i: number) => ({ subject: { id: `u${i}`, roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } });

describe('observability: decision publisher metrics (real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  async function serve(natsUrl: string) {
    const names = uniqueNames();
    res.stream(natsUrl, names.stream);
    const server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl, ...names, spoolDir: res.tmpDir('spool'), configYaml: ADMIN_CONFIG });
    const admin = String((await server.waitForLog(/^admin listener serving/)).admin);
    return { server, admin, client: res.client(server.address) };
  }

  it('reports events recorded, spooled and published as decisions are made', async () => {
    const { server, admin, client } = await serve(NATS_URL);
    await server.waitForLog(/^NATS available/);
    for (let i = 0; i < 5; i++) await check(client, read(i));
    const s = (await waitFor('5 events confirmed', async () => {
      const x = await scrape(admin);
      return x.value('verdict_events_published_total') >= 5 && x.value('verdict_events_unconfirmed_bytes') === 0 ? x : undefined;
    }))!;
    expect(s.value('verdict_events_stats_up')).to.equal(1);
    expect(s.value('verdict_events_recorded_total')).to.equal(5);
    expect(s.value('verdict_events_spooled_total')).to.be.at.least(5);
    expect(s.value('verdict_events_sent_total')).to.be.at.least(5);
    expect(s.value('verdict_events_failed_total')).to.equal(0);
    expect(s.value('verdict_events_lost_handoff_total')).to.equal(0);
    expect(s.value('verdict_events_refused_total')).to.equal(0);
    expect(s.value('verdict_events_publisher_restarts_total')).to.equal(0);
    expect(s.value('verdict_events_nats_connected')).to.equal(1);
    expect(s.value('verdict_events_checkpoints_total')).to.be.at.least(1);
    expect(s.family('verdict_events_published_total')?.type).to.equal('COUNTER');
    expect(s.family('verdict_events_unconfirmed_bytes')?.type).to.equal('GAUGE');
    expect(s.value('verdict_decisions_total')).to.equal(5);
  });

  it('shows the backlog while NATS is down, and its drain when NATS is back', async () => {
    const nats = await PrivateNats.start(res);
    const { server, admin, client } = await serve(nats.url);
    await server.waitForLog(/^NATS available/);
    await check(client, read(0));
    await waitFor('the first event confirmed', async () => (await scrape(admin)).value('verdict_events_published_total') >= 1);

    await nats.kill('SIGKILL');
    await waitFor('the publisher to notice', async () => (await scrape(admin)).value('verdict_events_nats_connected') === 0, 15_000);
    for (let i = 1; i <= 10; i++) await check(client, read(i));
    const down = (await waitFor('10 events spooled', async () => {
      const x = await scrape(admin);
      return x.value('verdict_events_spooled_total') >= 11 ? x : undefined;
    }))!;
    expect(down.value('verdict_events_unconfirmed_bytes')).to.be.greaterThan(0);
    expect(down.value('verdict_events_published_total')).to.be.lessThan(11);
    expect(down.value('verdict_events_stats_up')).to.equal(1);

    await nats.restart();
    const up = (await waitFor(
      'the backlog to drain',
      async () => {
        const x = await scrape(admin);
        return x.value('verdict_events_unconfirmed_bytes') === 0 && x.value('verdict_events_published_total') >= 11 ? x : undefined;
      },
      30_000,
      200,
    ))!;
    expect(up.value('verdict_events_nats_connected')).to.equal(1);
    expect(up.value('verdict_events_failed_total')).to.equal(0);
  });
});
