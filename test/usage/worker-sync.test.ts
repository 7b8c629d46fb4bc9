/**
 * scope: instance across workers (src/usage/worker-sync.ts), in process with a fake clock: two
 * workers' counters synced through one primary ledger see each other's use; saved quota counters
 * come back only into the same measure and period; a silent primary makes each worker count alone
 * with 1/N of the limit.
 */
import { expect } from 'chai';
import type { CompiledLimit, UsageDemand } from '../../src/engine/index.js';
import { InstanceCounters } from '../../src/usage/instance-counters.js';
import { PrimaryUsageLedger, WorkerUsageLedger, workerUsageSync, type UsageMergeRequest } from '../../src/usage/worker-sync.js';

const limit: CompiledLimit = {
  name: 'calls',
  policy: { id: 'p.yaml', resource: 'api', createVariables: () => ({}), hasVariables: false },
  actions: ['*'],
  anyRole: true,
  roles: new Set(),
  condition: undefined,
  key: [],
  cost: undefined,
  measure: { kind: 'quota', count: 100, period: { calendar: 'day' }, text: '100/day' },
  mode: 'enforce',
  scope: 'instance',
} as unknown as CompiledLimit;
const demand = (key: string): UsageDemand[] => [{ limit, key, cost: 1 }];
const quiet = { info: () => undefined, warn: () => undefined };

function instance(answer = true, clock: () => number = Date.now) {
  const primary = new PrimaryUsageLedger(1000, clock);
  const worker = () => {
    const ledger = new WorkerUsageLedger(
      (m: UsageMergeRequest) => {
        if (answer) setImmediate(() => ledger.onReply(primary.handle(m)));
        return true;
      },
      () => true,
      200,
    );
    const sync = workerUsageSync(ledger, { workers: 2, syncIntervalMs: 3_600_000, staleAfterMs: 1000 }, quiet, clock);
    const counters = new InstanceCounters({ instance: sync });
    sync.attach(counters);
    return { ledger, sync, counters };
  };
  return { primary, a: worker(), b: worker() };
}

/** Takes until denied; how many passed. */
function drain(counters: InstanceCounters, key: string, now: number): number {
  let n = 0;
  while (counters.take(demand(key), now)[0]!.outcome === 'ok') n++;
  return n;
}

describe('usage: scope instance shared by workers through the primary', () => {
  it('each worker decides locally; after a sync both see the total and deny', async () => {
    const now = Date.now();
    const { a, b } = instance();
    for (let i = 0; i < 60; i++) expect(a.counters.take(demand('k'), now)[0]!.outcome).to.equal('ok');
    await a.sync.sync();
    // b has not synced this key yet: it decides alone (the documented first-sync overshoot).
    for (let i = 0; i < 50; i++) b.counters.take(demand('k'), now);
    await b.sync.sync();
    expect(b.counters.take(demand('k'), now)[0]).to.include({ outcome: 'over' });
    // a learns b's use at its next sync.
    await a.sync.sync();
    a.counters.take(demand('k'), now);
    await a.sync.sync();
    expect(a.counters.take(demand('k'), now)[0]).to.include({ outcome: 'over' });
    expect(a.sync.merges + b.sync.merges).to.be.greaterThan(0);
  });

  it('saved counters: the same measure and period come back (through a worker snapshot); another measure or a past period does not', async () => {
    const now = Date.UTC(2026, 5, 10, 12);
    const day = Date.UTC(2026, 5, 10);
    const { primary, a, b } = instance(true, () => now);
    primary.restore(
      [
        { limit: 'calls', key: 'same', measure: '100/day', a: day, b: 90, c: 0 },
        { limit: 'calls', key: 'other-measure', measure: '50/day', a: day, b: 50, c: 0 },
        { limit: 'calls', key: 'yesterday', measure: '100/day', a: day - 86_400_000, b: 100, c: 0 },
      ],
      () => undefined,
      now,
    );
    // A starting worker takes the instance's counters (restored with its own limits' measures).
    a.counters.restore(await a.ledger.snapshot(), (name) => (name === 'calls' ? limit.measure : undefined), now);
    expect(drain(a.counters, 'same', now)).to.equal(10);
    await a.sync.sync();
    // A worker that did not take the snapshot learns the restored count at its first sync.
    b.counters.take(demand('same'), now);
    await b.sync.sync();
    expect(b.counters.take(demand('same'), now)[0]).to.include({ outcome: 'over' });
    expect(drain(a.counters, 'other-measure', now)).to.equal(100);
    expect(drain(b.counters, 'yesterday', now)).to.equal(100);
  });

  it('a primary that does not answer past staleAfterMs: each of 2 workers allows half of the limit alone', async () => {
    let now = Date.now();
    const { a } = instance(false, () => now);
    a.counters.take(demand('k'), now);
    await a.sync.sync(); // times out after 200 ms; not stale yet
    expect(a.sync.inFallback).to.equal(false);
    now += 1500;
    await a.sync.sync();
    expect(a.sync.inFallback).to.equal(true);
    // Each cost counts 1 / (1/2) = 2 times: 50 of a fresh key's 100 pass.
    expect(drain(a.counters, 'fresh', now)).to.equal(50);
  });
});
