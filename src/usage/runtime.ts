/** The usage counters of one serving process, with their state file (wired by src/server/app.ts). */
import path from 'node:path';
import type { VerdictConfig } from '../config/schema.js';
import type { UsageIndex } from '../engine/usage.js';
import { InstanceCounters } from './instance-counters.js';
import { UsageStateFile, type UsageLog } from './persistence.js';

export interface UsageRuntime {
  readonly counters: InstanceCounters;
  readonly stateFile: UsageStateFile | undefined;
  start(usage: UsageIndex | undefined): Promise<void>;
  stop(): Promise<void>;
}

/** The state file of this process: one per cluster worker (each keeps its own counters). */
export function usageStateFileName(config: VerdictConfig, env: NodeJS.ProcessEnv = process.env): string {
  const worker = env.VERDICT_CLUSTER_WORKER_INDEX;
  return path.join(config.usage.stateDir, worker !== undefined ? `usage-w${worker}.json` : 'usage.json');
}

export function createUsage(config: VerdictConfig, log: UsageLog): UsageRuntime {
  const counters = new InstanceCounters({ maxKeys: config.usage.maxKeys });
  const stateFile = config.usage.stateDir === '' ? undefined : new UsageStateFile(usageStateFileName(config), counters, log);
  let started = false;
  return {
    counters,
    stateFile,
    async start(usage) {
      if (!stateFile) return;
      await stateFile.load(usage);
      stateFile.start(config.usage.saveIntervalMs);
      started = true;
    },
    async stop() {
      if (stateFile && started) await stateFile.stop();
    },
  };
}
