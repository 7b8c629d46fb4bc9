import { expect } from 'chai';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { CompiledLimit, UsageDemand } from '../../src/engine/index.js';
import { DEFAULT_MAX_USAGE_KEYS, InstanceCounters } from '../../src/usage/instance-counters.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Documented in docs/operations.md (usage.maxKeys): heap per tracked key, measured by this test. */
const DOCUMENTED_BYTES_PER_KEY = 250;

function limit(name: string, measure: CompiledLimit['measure']): CompiledLimit {
  return { name, policy: { id: 'p.yaml', resource: 'report', createVariables: () => ({}), hasVariables: false }, actions: ['*'], anyRole: true, roles: new Set(), condition: undefined, key: [], cost: undefined, measure, mode: 'enforce', scope: 'instance' };
}

describe('usage counters: bounded memory', function () {
  this.timeout(120_000);

  it(`a million distinct keys (the default usage.maxKeys) stay under ${DOCUMENTED_BYTES_PER_KEY} bytes of heap per key`, () => {
    const rate = limit('per-subject', { kind: 'rate', count: 100, periodMs: 60_000, burst: 10, text: '100/1m' });
    const counters = new InstanceCounters();
    expect(counters.maxKeys).to.equal(DEFAULT_MAX_USAGE_KEYS);
    const now = Date.UTC(2026, 0, 1);
    gc();
    const before = process.memoryUsage().heapUsed;
    const demand: UsageDemand[] = [{ limit: rate, key: '', cost: 1 }];
    for (let i = 0; i < DEFAULT_MAX_USAGE_KEYS; i++) {
      (demand as { key: string }[])[0]!.key = `user-${i.toString().padStart(8, '0')}`;
      counters.take(demand, now);
    }
    gc();
    const perKey = (process.memoryUsage().heapUsed - before) / DEFAULT_MAX_USAGE_KEYS;
    console.log(`      ${counters.size} keys, ${perKey.toFixed(0)} bytes of heap per key (keys of 13 characters)`);
    expect(counters.size).to.equal(DEFAULT_MAX_USAGE_KEYS);
    expect(perKey).to.be.below(DOCUMENTED_BYTES_PER_KEY);
    // One more key: the least recently used is forgotten (counted), the size stays at the bound.
    counters.take([{ limit: rate, key: 'one-more', cost: 1 }], now);
    expect(counters.size).to.equal(DEFAULT_MAX_USAGE_KEYS);
    expect(counters.evictions).to.equal(1);
  });

  it('idle buckets are forgotten as new keys come: a flood of one-off keys does not fill the table', () => {
    const rate = limit('per-ip', { kind: 'rate', count: 10, periodMs: 1000, burst: 1, text: '10/1s' });
    const counters = new InstanceCounters({ maxKeys: 1000 });
    const start = Date.UTC(2026, 0, 1);
    // One new key every 10 ms; each bucket is full again 100 ms after its request.
    for (let i = 0; i < 10_000; i++) counters.take([{ limit: rate, key: `ip-${i}`, cost: 1 }], start + i * 10);
    expect(counters.size).to.be.at.most(20);
    expect(counters.evictions).to.equal(0);
  });

  it('past maxKeys the least recently used key is forgotten, and a recently used one is kept', () => {
    const quota = limit('per-tenant', { kind: 'quota', count: 2, period: { calendar: 'month' }, text: '2/month' });
    const counters = new InstanceCounters({ maxKeys: 1000 });
    const now = Date.UTC(2026, 0, 1);
    counters.take([{ limit: quota, key: 'busy', cost: 2 }], now);
    for (let i = 0; i < 2000; i++) {
      counters.take([{ limit: quota, key: `t-${i}`, cost: 1 }], now);
      if (i % 100 === 0) expect(counters.take([{ limit: quota, key: 'busy', cost: 1 }], now)[0]!.outcome).to.equal('over');
    }
    expect(counters.size).to.equal(1000);
    expect(counters.evictions).to.equal(1001);
  });
});
