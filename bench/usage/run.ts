/**
 * In-process cost of a usage limit per check (`node dist/bench/usage/run.js`): the example requests
 * decided by the engine alone, then with a never-reached limit on every allowed request counted by
 * the in-process counters (scope: instance) and with the cluster bookkeeping (scope: cluster: the
 * local counter plus what the next sync adds; the sync itself runs off the check path every
 * usage.cluster.syncIntervalMs), and scope: instance in a worker of `serve --workers N` (the same
 * bookkeeping for the sync with the primary). Interleaved rounds in one process, medians of CPU µs per check.
 *
 *   node dist/bench/usage/run.js [--rounds 7] [--seconds 1] [--keys 1000]
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decideMetered, type CheckRequest, type CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet, readPolicySources } from '../../src/policy/index.js';
import { applyUsage } from '../../src/service/usage.js';
import { ClusterUsageSync } from '../../src/usage/cluster-sync.js';
import { InstanceCounters } from '../../src/usage/instance-counters.js';
import { WorkerUsageLedger, workerUsageSync } from '../../src/usage/worker-sync.js';
import { ROOT, fmtNum, median, parseFlags } from '../util.js';
import { exampleRequests } from '../workloads.js';

const LIMIT = (scope: string) => ({
  path: 'zz-bench-limit.yaml',
  text: `apiVersion: verdict/v1
kind: ResourcePolicy
resource: "*"
rules: []
limits:
  - name: bench-per-subject
    actions: ["*"]
    key: subject.id
    rate: 1000000000/1s
    burst: 1000000000
    scope: ${scope}
`,
});

type Mode = 'none' | 'instance' | 'workers' | 'cluster';

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const rounds = flags.int('rounds', 7);
  const seconds = flags.num('seconds', 1);
  const keys = flags.int('keys', 1000);
  const sources = (await readPolicySources(path.join(ROOT, 'policies'))).filter((f) => !f.path.endsWith('_test.yaml'));
  void readFile;
  const sets: Record<Mode, CompiledPolicySet> = {
    none: compilePolicySet(sources),
    instance: compilePolicySet([...sources, LIMIT('instance')]),
    workers: compilePolicySet([...sources, LIMIT('instance')]),
    cluster: compilePolicySet([...sources, LIMIT('cluster')]),
  };
  const instance = new InstanceCounters();
  const sync = new ClusterUsageSync(() => undefined, () => undefined, { bucket: 'X', syncIntervalMs: 3_600_000, staleAfterMs: 3_600_000, fallback: 'local', localShare: 1, timeoutMs: 1000 }, { info: () => undefined, warn: () => undefined });
  const cluster = new InstanceCounters({ cluster: sync });
  sync.attach(cluster);
  // scope: instance in a worker of `serve --workers N`: the local counter plus the bookkeeping of the sync with the primary.
  const workerSync = workerUsageSync(new WorkerUsageLedger(() => false, () => false, 1000), { workers: 2, syncIntervalMs: 3_600_000, staleAfterMs: 3_600_000 }, { info: () => undefined, warn: () => undefined });
  const workers = new InstanceCounters({ instance: workerSync });
  workerSync.attach(workers);
  // `keys` subjects: each request goes out under one of them in turn (a realistic spread of counters).
  const base = exampleRequests();
  const requests: CheckRequest[] = [];
  for (let k = 0; k < keys; k++) for (const r of base) requests.push({ ...r, subject: { ...r.subject, id: `${r.subject.id}-${k}` } });
  const run = (mode: Mode): number => {
    const set = sets[mode];
    const counters = mode === 'cluster' ? cluster : mode === 'workers' ? workers : instance;
    const end = performance.now() + seconds * 1000;
    const cpu0 = process.cpuUsage();
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        const request = requests[n++ % requests.length]!;
        const now = new Date();
        const { decision } = decideMetered(set, request, { now });
        if (mode !== 'none' && decision.effect === 'ALLOW') applyUsage(decision, set.usage, request, now, counters, 2_000_000);
      }
    }
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / n;
  };
  for (const m of ['none', 'instance', 'workers', 'cluster'] as Mode[]) run(m); // warm-up
  const results: Record<Mode, number[]> = { none: [], instance: [], workers: [], cluster: [] };
  for (let r = 0; r < rounds; r++) for (const m of ['none', 'instance', 'workers', 'cluster'] as Mode[]) results[m].push(run(m));
  const med = (m: Mode) => median(results[m]);
  const allowed = base.filter((r) => decideMetered(sets.none, r, { now: new Date() }).decision.effect === 'ALLOW').length;
  console.log(`usage limits in process: ${rounds} rounds × ${seconds} s per mode, interleaved; ${base.length} example requests (${allowed} allowed, so limited) × ${keys} subjects; medians`);
  console.log('| mode | CPU µs per check | added per check | added per limited check | checks/s ratio |');
  console.log('|---|---:|---:|---:|---:|');
  for (const m of ['none', 'instance', 'workers', 'cluster'] as Mode[]) {
    const added = med(m) - med('none');
    console.log(`| ${m === 'none' ? 'no limit' : m === 'workers' ? 'scope: instance, in a worker (--workers N)' : `scope: ${m}`} | ${fmtNum(med(m), 2)} | ${m === 'none' ? '' : `+${fmtNum(added, 2)}`} | ${m === 'none' ? '' : `+${fmtNum((added * base.length) / allowed, 2)}`} | ${fmtNum(med('none') / med(m), 2)} |`);
  }
}

await main();
