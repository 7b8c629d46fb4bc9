import { expect } from 'chai';
import { ConfigError, DEFAULT_CONFIG, validateConfig } from '../../src/config/load.js';
import type { CompiledLimit, UsageDemand } from '../../src/engine/index.js';
import { ClusterUsageSync } from '../../src/usage/cluster-sync.js';
import { InstanceCounters } from '../../src/usage/instance-counters.js';

function problems(usage: unknown): string[] {
  try {
    validateConfig({ ...(JSON.parse(JSON.stringify(DEFAULT_CONFIG)) as Record<string, unknown>), usage });
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').slice(1).map((l) => l.replace(/^\s*- /, ''));
  }
  return [];
}

const limit = (mode: 'enforce' | 'shadow'): CompiledLimit => ({
  name: `calls-${mode}`,
  policy: { id: 'p.yaml', resource: 'api', createVariables: () => ({}), hasVariables: false },
  actions: ['*'],
  anyRole: true,
  roles: new Set(),
  condition: undefined,
  key: [],
  cost: undefined,
  measure: { kind: 'quota', count: 100, period: { calendar: 'day' }, text: '100/day' },
  mode,
  scope: 'cluster',
});

describe('usage: configuration and the cluster fallback', () => {
  it('takes the defaults, and refuses bad settings saying how to fix them', () => {
    expect(validateConfig(JSON.parse(JSON.stringify(DEFAULT_CONFIG)) as Record<string, unknown>).usage).to.deep.include({ maxKeys: 1_000_000, stateDir: 'var/usage', headersOnAllow: true });
    expect(problems({ maxKeys: 10 })).to.deep.equal(['usage.maxKeys: must be an integer from 1000 to 100000000 (got 10)']);
    expect(problems({ cluster: { fallback: 'allow' } })).to.deep.equal(['usage.cluster.fallback: must be "local" (each replica counts alone with localShare of each limit) or "deny"']);
    expect(problems({ cluster: { localShare: 0 } })[0]).to.match(/^usage\.cluster\.localShare: must be a number above 0 and at most 1/);
    expect(problems({ speed: 1 })[0]).to.match(/^usage\.speed: unknown setting/);
  });

  for (const fallback of ['local', 'deny'] as const) {
    it(`NATS away past staleAfterMs: fallback ${fallback}`, async () => {
      let now = Date.UTC(2026, 0, 1);
      const warnings: string[] = [];
      const sync = new ClusterUsageSync(() => undefined, () => undefined, { bucket: 'B', syncIntervalMs: 3_600_000, staleAfterMs: 1000, fallback, localShare: 0.25, timeoutMs: 100 }, { info: () => undefined, warn: (_o, m) => warnings.push(m) }, () => now);
      const counters = new InstanceCounters({ cluster: sync });
      sync.attach(counters);
      const demand = (mode: 'enforce' | 'shadow', key: string): UsageDemand[] => [{ limit: limit(mode), key, cost: 1 }];
      expect(counters.take(demand('enforce', 'a'), now)[0]).to.include({ outcome: 'ok', remaining: 99 });
      await sync.sync(); // fails: no connection; not stale yet
      expect(sync.inFallback).to.equal(false);
      now += 1500;
      await sync.sync();
      expect(sync.inFallback).to.equal(true);
      expect(warnings).to.have.length(1);
      const state = counters.take(demand('enforce', 'b'), now)[0]!;
      if (fallback === 'local') {
        // Each cost counts 1 / 0.25 = 4 times: a quarter of the limit.
        expect(state).to.include({ outcome: 'ok', remaining: 96 });
        let allowed = 1;
        while (counters.take(demand('enforce', 'b'), now)[0]!.outcome === 'ok') allowed++;
        expect(allowed).to.equal(25);
      } else {
        expect(state).to.include({ outcome: 'error' });
        expect(state.message).to.match(/unreachable/);
        // A shadow limit is recorded as an error too, but never denies (the service decides that).
        expect(counters.take(demand('shadow', 'c'), now)[0]).to.include({ outcome: 'error' });
      }
    });
  }
});
