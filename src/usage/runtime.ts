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

export interface UsageRuntime {
  readonly counters: InstanceCounters;
  /** scope: cluster; its NATS connection is made at the first check a cluster limit applies to. */
  readonly cluster: ClusterUsageSync;
  readonly stateFile: UsageStateFile | undefined;
  start(usage: UsageIndex | undefined): Promise<void>;
  stop(): Promise<void>;
}

/** The state file of this process: one per cluster worker (each keeps its own counters). */
export function usageStateFileName(config: VerdictConfig, env: NodeJS.ProcessEnv = process.env): string {
  const worker = env.VERDICT_CLUSTER_WORKER_INDEX;
  return path.join(config.usage.stateDir, worker !== undefined ? `usage-w${worker}.json` : 'usage.json');
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
  const counters = new InstanceCounters({ maxKeys: config.usage.maxKeys, cluster });
  cluster.attach(counters);
  const stateFile = config.usage.stateDir === '' ? undefined : new UsageStateFile(usageStateFileName(config), counters, log);
  let started = false;
  return {
    counters,
    cluster,
    stateFile,
    async start(usage) {
      if (!stateFile) return;
      await stateFile.load(usage);
      stateFile.start(config.usage.saveIntervalMs);
      started = true;
    },
    async stop() {
      await cluster.stop();
      await nats?.close();
      if (stateFile && started) await stateFile.stop();
    },
  };
}
