import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from 'nats';
import { ChainVerifier } from '../../src/audit/verifier.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import {
  check, checkBatch, freePort, PrivateNats, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type CheckResponse, type ServerProc,
} from '../support/events-harness.js';

/** Workers sending checks until stopped; keeps every response a caller received. */
function load(client: AuthzClient, workers: number) {
  const received: CheckResponse[] = [];
  let errors = 0;
  let stopped = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      try {
        received.push(await check(client, { subject: { id: `w${w}`, roles: ['employee'], attributes: { suspended: i % 4 === 3 } }, action: 'read', resource: { type: 'document', id: `w${w}-${i}` } }, `w${w}-${i}`, 3000));
      } catch {
        errors++;
        await sleep(20);
      }
    }
  });
  return {
    received,
    get errors() {
      return errors;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function storedEventIds(nc: NatsConnection, stream: string): Promise<Set<string>> {
  try {
    return new Set((await readStream(nc, stream)).filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => String(m.data.id)));
  } catch {
    return new Set();
  }
}

/** Spooled event ids: the payload (6th tab-separated field) of every spool line. */
function spooledIds(spoolDir: string): Set<string> {
  const ids = new Set<string>();
  for (const f of readdirSync(spoolDir).filter((n) => n.endsWith('.wal'))) {
    for (const line of readFileSync(path.join(spoolDir, f), 'utf8').split('\n')) {
      const parts = line.split('\t');
      if (parts.length >= 6) ids.add(String((JSON.parse(parts.slice(5).join('\t')) as { id: string }).id));
    }
  }
  return ids;
}

describe('events: audit.required (real processes, private nats-server)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup()); // also when a beforeEach hook failed

  async function serve(nats: string, names: { stream: string; prefix: string }, spoolDir: string, instanceId: string, configYaml?: string): Promise<ServerProc> {
    return startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: nats, ...names, spoolDir, instanceId, required: true, ...(configYaml ? { configYaml } : {}) });
  }

  async function expectAllStored(nc: NatsConnection, stream: string, received: CheckResponse[]): Promise<void> {
    const wanted = received.map((r) => r.decisionId);
    let missing: string[] = [];
    await waitFor('every decision a caller received to be in the stream', async () => {
      const ids = await storedEventIds(nc, stream);
      missing = wanted.filter((id) => !ids.has(id));
      return missing.length === 0;
    }, 20_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; ${missing.length} of ${wanted.length} missing, e.g. ${missing.slice(0, 3).join(', ')}`);
    });
    // Every chain in the stream verifies (the killed instance's chain ends where its spool ended).
    const verifier = new ChainVerifier();
    (await readStream(nc, stream)).forEach((m) => verifier.accept(m.data, `stream seq ${m.seq}`));
    expect(verifier.findings).to.deep.equal([]);
  }

  it('a server killed mid-stream and restarted on the same spool delivers every decision it answered', async () => {
    const nats = await PrivateNats.start(res);
    const names = uniqueNames();
    const spool = res.tmpDir('spool');
    const instance = `vt-${randomToken(3)}`;
    const first = await serve(nats.url, names, spool, instance);
    await first.waitForLog(/^NATS available/);
    const traffic = load(res.client(first.address), 8);
    await waitFor('some answered checks', () => traffic.received.length >= 150, 15_000, 10);
    await first.stop('SIGKILL');
    await traffic.stop();
    expect(traffic.received.length).to.be.at.least(150);
    expect(traffic.received.every((r) => r.reason !== 'AUDIT_UNAVAILABLE')).to.equal(true);

    const second = await serve(nats.url, names, spool, instance);
    await second.waitForLog(/^NATS available/);
    await expectAllStored(await res.nats(nats.url), names.stream, traffic.received);
  });

  it('decisions answered while NATS was down survive a SIGKILL: the restarted server replays its spool', async () => {
    const nats = await PrivateNats.start(res);
    const names = uniqueNames();
    const spool = res.tmpDir('spool');
    const instance = `vt-${randomToken(3)}`;
    const first = await serve(nats.url, names, spool, instance);
    await first.waitForLog(/^NATS available/);
    const traffic = load(res.client(first.address), 8);
    await waitFor('answered checks with NATS up', () => traffic.received.length >= 50, 15_000, 10);
    await nats.kill('SIGKILL');
    const before = traffic.received.length;
    await waitFor('answered checks with NATS down', () => traffic.received.length >= before + 100, 15_000, 10);
    await first.stop('SIGKILL');
    await traffic.stop();
    // Required mode answers while NATS is down because the spool took every event.
    expect(traffic.received.every((r) => r.reason !== 'AUDIT_UNAVAILABLE')).to.equal(true);
    const spooled = spooledIds(spool);
    expect(traffic.received.filter((r) => !spooled.has(r.decisionId)), 'every answered decision is in the spool').to.deep.equal([]);

    await nats.restart();
    const nc = await res.nats(nats.url);
    const storedBefore = await storedEventIds(nc, names.stream);
    expect(traffic.received.filter((r) => !storedBefore.has(r.decisionId)).length, 'NATS lacks the decisions made during its outage').to.be.greaterThan(0);

    const second = await serve(nats.url, names, spool, instance);
    await second.waitForLog(/^NATS available/);
    expect(second.log(/previous run; they will be replayed/)).to.not.equal(undefined);
    await expectAllStored(nc, names.stream, traffic.received);
    const ids = [...(await readStream(nc, names.stream))].filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id);
    expect(new Set(ids).size, 'replay stored nothing twice').to.equal(ids.length);
  });

  it('denies with AUDIT_UNAVAILABLE when neither NATS nor the spool can take the event', async () => {
    const closedPort = await freePort();
    const names = uniqueNames();
    const spool = res.tmpDir('spool');
    const server = await serve(`nats://127.0.0.1:${closedPort}`, names, spool, `vt-${randomToken(3)}`, 'events:\n  spoolMaxBytes: 1\n');
    const client = res.client(server.address);
    const ask = (i: number) => check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } }, `q${i}`);

    // The first record fits (nothing unconfirmed yet): it is the policy set that went live at start
    // (verdict.policy.v1). From then on the spool is full and NATS unreachable: every check is
    // denied, allows included.
    const later: CheckResponse[] = [];
    for (let i = 0; i <= 5; i++) later.push(await ask(i));
    const batch = await checkBatch(client, { id: 'alice', roles: ['employee'] }, [
      { action: 'read', resource: { type: 'document', id: 'b1' } },
      { action: 'read', resource: { type: 'document', id: 'b2' } },
    ]);
    later.push(...batch.results);
    for (const r of later) {
      expect(r).to.include({ allowed: false, decision: 'EFFECT_DENY', reason: 'AUDIT_UNAVAILABLE', policy: '', rule: '' });
      expect(r.decisionId).to.match(/^[0-9a-f-]{36}$/);
    }
    expect(await server.stop('SIGTERM')).to.equal(0);
    // No allowed decision was returned unrecorded: the spool holds the policy record, no decision.
    const spooled = [...spooledIds(spool)];
    expect(spooled).to.have.length(1);
    expect(later.map((r) => r.decisionId)).to.not.include(spooled[0]);
    const closed = server.log('decision publisher closed')?.events as Record<string, number>;
    expect(closed).to.include({ recorded: later.length, spooled: 1, failed: later.length, published: 0 });
    expect(server.log(/could not be spooled/)).to.not.equal(undefined);
  });
});
