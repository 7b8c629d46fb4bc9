import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EVENT_SCHEMA, PUBLISH_REFUSED_SCHEMA } from '../../src/events/event.js';
import {
  check, countEvents, NATS_URL, randomToken, readStream, Resources, startVerdict, uniqueNames, waitFor, writePolicies,
  type CheckResponse, type ServerProc,
} from '../support/events-harness.js';
import { checkChains } from './chain-check.js';
import { ConfiguredNats } from './nats-servers.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const alice = { id: 'alice', roles: ['employee'] };

/** Attacks on the decision stream from the caller's side: every decision still ends up in the stream, or its absence is explained. */
describe('events: every event is publishable (real server, real NATS)', function () {
  this.timeout(40_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(natsUrl: string, names: { stream: string; prefix: string }, configYaml: string, required = false, spoolDir = res.tmpDir('spool')): Promise<ServerProc> {
    return startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl, ...names, spoolDir, instanceId: `vt-${randomToken(3)}`, configYaml, required });
  }

  it('a 200 KB request_id of control characters is stored cut to its byte budget (was: a 1.2 MB event NATS refused, a GAP)', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(NATS_URL, names, 'events:\n  checkpointIntervalMs: 20\n');
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const requestId = '\u0001'.repeat(200 * 1024);
    const made: CheckResponse[] = [];
    made.push(await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd0' } }, 'before'));
    made.push(await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd1' } }, requestId));
    made.push(await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd2' } }, 'after'));
    const nc = await res.nats(NATS_URL);
    await waitFor('3 events', async () => (await countEvents(nc, names.stream, names.prefix)) >= 3);
    const stored = await readStream(nc, names.stream);
    const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(events.map((m) => m.data.id)).to.deep.equal(made.map((r) => r.decisionId));
    const cut = events[1]!;
    expect(cut.subject).to.equal(`${names.prefix}.document.allow`);
    expect(bytes(cut.raw)).to.be.lessThan(16 * 1024);
    expect(bytes(String(cut.data.requestId))).to.be.at.most(1024);
    expect(cut.data.cut).to.deep.equal({ requestId: { bytes: 200 * 1024, sha256: sha256(requestId) } });
    const report = checkChains(stored);
    expect(report.unexplained).to.deep.equal([]);
    expect(report.broken).to.deep.equal([]);
    expect(await server.stop('SIGTERM')).to.equal(0);
    expect(server.log('decision publisher closed')?.events).to.include({ recorded: 3, failed: 0, refused: 0, cut: 1 });
  });

  it('a resource type longer than NATS\'s control line goes on a hashed subject, in full in the event; required mode keeps allowing (was: connection dropped, resent forever)', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(NATS_URL, names, 'limits:\n  maxIdentifierLength: 8192\nevents:\n  maxFieldBytes: 8192\n  checkpointIntervalMs: 20\n', true);
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const type = 'T'.repeat(6000);
    const long = await check(client, { subject: alice, action: 'read', resource: { type, id: 'x' } }, 'long');
    expect(long).to.include({ allowed: false, reason: 'NO_POLICY' });
    const later: CheckResponse[] = [];
    for (let i = 0; i < 10; i++) later.push(await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: `d${i}` } }, `r${i}`));
    for (const r of later) expect(r).to.include({ allowed: true, reason: 'RULE_ALLOW' });
    const nc = await res.nats(NATS_URL);
    await waitFor('11 events', async () => (await countEvents(nc, names.stream, names.prefix)) >= 11);
    const stored = await readStream(nc, names.stream);
    const longEvent = stored.find((m) => m.data.id === long.decisionId)!;
    expect(longEvent.subject).to.equal(`${names.prefix}.~${sha256(type).slice(0, 32)}.deny`);
    expect((longEvent.data.resource as { type: string }).type).to.equal(type);
    expect(checkChains(stored).unexplained).to.deep.equal([]);
    expect(server.log(/^NATS unavailable/), 'the connection never dropped').to.equal(undefined);
    expect(server.log(/^NATS available/)).to.not.equal(undefined);
  });

  it('an event NATS refuses is named by a verdict.publish-refused.v1 record in the chain: no unexplained gap', async () => {
    // NATS is down while a 100 KB event is spooled; the server that then comes up takes at most 64 KiB.
    const nats = await ConfiguredNats.prepare(res, () => 'max_payload: 65536');
    const names = uniqueNames();
    const spool = res.tmpDir('spool');
    const server = await serve(nats.url, names, 'events:\n  includeAttributes: all\n  checkpointIntervalMs: 20\n', false, spool);
    await server.waitForLog(/^cannot connect to NATS/);
    const client = res.client(server.address);
    // Over 100 KB of attributes, each string within limits.maxStringBytes.
    const blob = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`b${i}`, 'b'.repeat(4000)]));
    const first = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd1' } }, 'first');
    const big = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd2', attributes: blob } }, 'big');
    const third = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd3' } }, 'third');
    // Built and spooled while NATS is down, under the 900 KiB budget.
    await waitFor('3 events in the spool', () => readFileSync(path.join(spool, 'decisions-00000001.wal'), 'utf8').split('\n').filter(Boolean).length >= 3, 10_000, 20);
    await nats.restart();
    await server.waitForLog(/^NATS available/);
    // Built now, the same event fits NATS's limit without its attributes.
    const after = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd4', attributes: blob } }, 'after');
    const nc = await res.nats(nats.url);
    await waitFor('the refusal record and 3 events', async () => {
      const m = await readStream(nc, names.stream).catch(() => []);
      return m.some((x) => x.data.schema === PUBLISH_REFUSED_SCHEMA) && m.filter((x) => x.data.schema === EVENT_SCHEMA).length >= 3;
    }, 15_000, 100);
    const stored = await readStream(nc, names.stream);
    const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA);
    expect(events.map((m) => m.data.id)).to.deep.equal([first.decisionId, third.decisionId, after.decisionId]);
    expect(events[2]!.data.truncated).to.equal('attributes');
    const report = checkChains(stored);
    expect(report.unexplained).to.deep.equal([]);
    expect(report.broken).to.deep.equal([]);
    expect(report.refused).to.have.length(1);
    const refused = report.refused[0]!;
    const chain = (events[0]!.data.chain as { id: string }).id;
    expect(refused.refused).to.include({ chain, seq: 3, id: big.decisionId, subject: `${names.prefix}.document.allow` });
    expect(refused.refused.bytes).to.be.greaterThan(100 * 1024);
    expect(refused.refused.hash).to.match(/^[0-9a-f]{64}$/);
    expect(refused.refused.reason).to.match(/larger than NATS accepts \(65536 bytes/);
    expect(refused.chain).to.include({ id: chain, seq: 5 }); // seq 1: the policy record
    expect(stored.find((m) => m.data.schema === PUBLISH_REFUSED_SCHEMA)!.subject).to.match(new RegExp(`^${names.prefix.replace('.', '\\.')}\\._chain\\.vt-[0-9a-f]+\\.refused$`));
    expect(server.log(/refused by NATS/)).to.include({ seq: 3, eventId: big.decisionId });
    expect(await server.stop('SIGTERM')).to.equal(0);
    expect(server.log('decision publisher closed')?.events).to.include({ refused: 1, failed: 0 });
  });
});
