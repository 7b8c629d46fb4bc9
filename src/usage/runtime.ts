/** The usage counters of one serving process, with their state file (wired by src/server/app.ts). */
import path from 'node:path';
import type { VerdictConfig } from '../config/schema.js';
import type { UsageIndex } from '../engine/usage.js';
import { BackgroundNats, natsClientOptions } from '../bundles/connection.js';
import { natsServers } from '../events/nats-options.js';
import type { Logger } from '../server/logger.js';
import { ClusterUsageSync } from './cluster-sync.js';
import { InstanceCounters } from './instance-counters.js';
import { UsageStateFile } from './persistence.js';
import type { UsageSync } from './sync.js';
import { WorkerUsageLedger, workerUsageSync, type UsageMergeReply } from './worker-sync.js';

export interface UsageRuntime {
  readonly counters: InstanceCounters;
  /** scope: cluster; its NATS connection is made at the first check a cluster limit applies to. */
  readonly cluster: ClusterUsageSync;
  /** In a cluster worker: scope: instance shared with the other workers through the primary. */
  readonly instance: UsageSync | undefined;
  readonly stateFile: UsageStateFile | undefined;
  start(usage: UsageIndex | undefined): Promise<void>;
  stop(): Promise<void>;
}

/** The state file of an instance: written by the single process, or by the primary of `serve --workers N` (its workers write none). */
export function usageStateFileName(config: VerdictConfig): string {
  return path.join(config.usage.stateDir, 'usage.json');
}

/** In a cluster worker: the instance counters shared through the primary (worker-sync.ts). */
function workerInstanceSync(config: VerdictConfig, log: Logger): { sync: UsageSync; ledger: WorkerUsageLedger } | undefined {
  if (process.env.VERDICT_CLUSTER_WORKER_INDEX === undefined || !process.send) return undefined;
  const c = config.usage.cluster;
  const ledger = new WorkerUsageLedger((m) => process.send?.(m) ?? false, () => process.connected, Math.max(500, c.staleAfterMs / 2));
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'usage-merged') ledger.onReply(m as UsageMergeReply);
  });
  return { ledger, sync: workerUsageSync(ledger, { workers: config.workers, syncIntervalMs: c.syncIntervalMs, staleAfterMs: c.staleAfterMs }, log) };
}

export function createUsage(config: VerdictConfig, log: Logger): UsageRuntime {
  let nats: BackgroundNats | undefined;
  const c = config.usage.cluster;
  const cluster = new ClusterUsageSync(
    () => nats?.connection(),
    () => {
      nats ??= new BackgroundNats(natsServers(config.events.natsUrl), `verdict-usage-${config.events.instanceId}`, () => natsClientOptions(config), 2000, log, 'usage counters');
      nats.start();
    },
    { bucket: c.bucket, syncIntervalMs: c.syncIntervalMs, staleAfterMs: c.staleAfterMs, fallback: c.fallback, localShare: c.localShare, timeoutMs: Math.max(500, c.staleAfterMs / 2) },
    log,
  );
  const worker = workerInstanceSync(config, log);
  const instance = worker?.sync;
  const counters = new InstanceCounters({ maxKeys: config.usage.maxKeys, cluster, instance });
  cluster.attach(counters);
  instance?.attach(counters);
  // A cluster worker's instance counters are saved by the primary, from its ledger.
  const stateFile = config.usage.stateDir === '' || instance ? undefined : new UsageStateFile(usageStateFileName(config), counters, log);
  let started = false;
  return {
    counters,
    cluster,
    instance,
    stateFile,
    async start(usage) {
      if (worker) {
        // The instance's quota counters, as the primary holds them (restored from the state file, or used by the other workers).
        const saved = await worker.ledger.snapshot().catch((err: unknown) => {
          log.warn({ err: (err as Error).message }, 'usage: the instance quota counters could not be read from the cluster primary; this worker starts from zero until its first sync');
          return [];
        });
        const measures = new Map(usage?.limits.filter((l) => l.scope === 'instance').map((l) => [l.name, l.measure]));
        if (saved.length > 0) log.info({ restored: counters.restore(saved, (name) => measures.get(name), Date.now()), saved: saved.length }, 'usage quota counters taken from the cluster primary');
        return;
      }
      if (!stateFile) return;
      await stateFile.load(usage);
      stateFile.start(config.usage.saveIntervalMs);
      started = true;
    },
    async stop() {
      await instance?.stop();
      await cluster.stop();
      await nats?.close();
      if (stateFile && started) await stateFile.stop();
    },
  };
}
