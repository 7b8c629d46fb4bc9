import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EVENT_SCHEMA, EVENTS_LOST_SCHEMA } from '../../src/events/event.js';
import {
  check, NATS_URL, randomToken, readStream, Resources, startVerdict, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type CheckResponse, type ServerProc,
} from '../support/events-harness.js';
import { checkChains } from './chain-check.js';
import { healthStatus, TRAIL_HEALTH, trailStatus } from './trail-probe.js';

const ask = (client: AuthzClient, tag: string, i: number) => check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `${tag}${i}` } }, `${tag}${i}`);

/** Fills the file system at `dir` to the last byte (ENOSPC), as a runaway log file would. */
function fill(file: string): void {
  for (const chunk of [65536, 4096, 512, 1]) {
    try {
      for (;;) appendFileSync(file, Buffer.alloc(chunk, 120));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
}

/**
 * The spool on a real, small file system (a 2 MiB tmpfs, mounted by the test; skipped where
 * mounting is not allowed — the spool's unit tests reproduce the same failure with a file-size
 * limit) that fills up under a running server.
 */
describe('events: the spool\'s disk fills up under a running server (real tmpfs, ENOSPC)', function () {
  this.timeout(40_000);
  const res = new Resources();
  let mnt: string | undefined;
  afterEach(async () => {
    await res.cleanup();
    if (mnt) {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
      rmSync(path.dirname(mnt), { recursive: true, force: true });
    }
    mnt = undefined;
  });
  after(() => res.cleanup());

  function mountSmall(this: Mocha.Context): string {
    // Not under Resources: its directories are removed before this is unmounted.
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'verdict-tmpfs-')), 'mnt');
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      this.skip();
    }
    mnt = dir;
    return dir;
  }

  async function serve(names: { stream: string; prefix: string }, spoolDir: string, required: boolean): Promise<ServerProc> {
    const server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir, instanceId: `vt-${randomToken(3)}`, required, configYaml: 'events:\n  checkpointIntervalMs: 20\n' });
    await server.waitForLog(/^NATS available/);
    return server;
  }

  it('default mode: decisions are answered, lost events are counted, logged and reported, and explained in the chain once there is room again', async function () {
    const dir = mountSmall.call(this);
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names, path.join(dir, 'spool'), false);
    const client = res.client(server.address);
    const before: CheckResponse[] = [];
    for (let i = 0; i < 5; i++) before.push(await ask(client, 'before', i));
    const nc = await res.nats(NATS_URL);
    await waitFor('the first decisions in the stream', async () => {
      const ids = new Set((await readStream(nc, names.stream)).map((m) => m.data.id));
      return before.every((r) => ids.has(r.decisionId));
    }, 10_000, 50);
    const filler = path.join(dir, 'filler');
    fill(filler);
    const during: CheckResponse[] = [];
    for (let i = 0; i < 20; i++) during.push(await ask(client, 'during', i));
    for (const r of during) expect(r.reason, 'default mode answers as decided').to.equal('RULE_ALLOW');
    const logged = await server.waitForLog(/^decision events could not be spooled/);
    expect(logged).to.include({ level: 50, reason: 'ENOSPC' });
    const unhealthy = await server.waitForLog(/^decision trail unhealthy/);
    expect(unhealthy.problems).to.satisfy((p: string[]) => p.some((x) => /^the spool refuses writes: ENOSPC: /.test(x)));
    // A small write can still fit the segment's last page, so the trail may be healthy for a moment
    // between two failures: keep deciding until the health service shows the failure.
    let seen: Awaited<ReturnType<typeof trailStatus>> | undefined;
    for (let i = 0; i < 50 && !seen; i++) {
      during.push(await ask(client, 'during-more', i));
      if ((await healthStatus(server.address, TRAIL_HEALTH)) === 'NOT_SERVING') seen = await trailStatus(client);
    }
    expect(seen, 'DecisionTrail health went NOT_SERVING').to.not.equal(undefined);
    expect(Number(seen!.counters?.lostSpoolError)).to.be.greaterThan(0);

    rmSync(filler);
    const after: CheckResponse[] = [];
    for (let i = 0; i < 5; i++) after.push(await ask(client, 'after', i));
    await server.waitForLog('decision spool takes writes again');
    let stored: Awaited<ReturnType<typeof readStream>> = [];
    await waitFor('the later decisions and the loss record', async () => {
      stored = await readStream(nc, names.stream);
      const ids = new Set(stored.map((m) => m.data.id));
      return after.every((r) => ids.has(r.decisionId)) && stored.some((m) => m.data.schema === EVENTS_LOST_SCHEMA);
    }, 10_000, 100);
    const ids = new Set(stored.filter((m) => m.data.schema === EVENT_SCHEMA).map((m) => m.data.id));
    expect([...before, ...after].every((r) => ids.has(r.decisionId)), 'every decision outside the outage is stored').to.equal(true);
    const lostCount = during.filter((r) => !ids.has(r.decisionId)).length;
    expect(lostCount, 'some decisions were lost while the disk was full').to.be.greaterThan(0);
    const report = checkChains(stored);
    expect(report.broken).to.deep.equal([]);
    expect(report.unexplained, 'every missing seq is explained by an events-lost record').to.deep.equal([]);
    const lost = report.lost.map((l) => l.lost);
    expect(lost.every((l) => l.stage === 'spool' && /ENOSPC/.test(l.reason))).to.equal(true);
    // One record per run of lost seqs (the disk can take a small write between two failures).
    expect(lost.reduce((a, l) => a + Number(l.count), 0)).to.equal(lostCount);
    await waitFor('trail healthy again', async () => (await trailStatus(client)).healthy === true, 5000, 100);
    expect((await trailStatus(client)).counters).to.include({ lostSpoolError: String(lostCount), failed: String(lostCount) });
  });

  it('required mode: every check is denied with AUDIT_UNAVAILABLE while the disk is full, and allowed again once there is room', async function () {
    const dir = mountSmall.call(this);
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names, path.join(dir, 'spool'), true);
    const client = res.client(server.address);
    expect(await ask(client, 'before', 0)).to.include({ reason: 'RULE_ALLOW' });
    const filler = path.join(dir, 'filler');
    fill(filler);
    const during: CheckResponse[] = [];
    for (let i = 0; i < 20; i++) during.push(await ask(client, 'during', i));
    // The segment's last page may take a check or two; after that the disk refuses every write.
    expect(during.slice(-10).every((r) => r.reason === 'AUDIT_UNAVAILABLE' && !r.allowed)).to.equal(true);
    rmSync(filler);
    const after = await ask(client, 'after', 0);
    expect(after).to.include({ allowed: true, reason: 'RULE_ALLOW' });
    const nc = await res.nats(NATS_URL);
    await waitFor('the allowed decision in the stream', async () => (await readStream(nc, names.stream)).some((m) => m.data.id === after.decisionId), 10_000, 100);
    const stored = await readStream(nc, names.stream);
    const ids = new Set(stored.map((m) => m.data.id));
    for (const r of during) if (r.allowed) expect(ids.has(r.decisionId), 'every allow that was answered is recorded').to.equal(true);
    expect(checkChains(stored).unexplained).to.deep.equal([]);
  });
});
