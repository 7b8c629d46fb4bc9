import type { VerdictConfig } from '../config/schema.js';
import { natsClientOptions } from '../bundles/connection.js';
import { DEFAULT_BUNDLE_LIMITS } from '../bundles/format.js';
import { NatsBundleSource } from '../bundles/nats-source.js';
import { parseBundleSourceUrl } from '../bundles/source-url.js';
import { DirectorySource } from '../policy/directory-source.js';
import type { PolicySource } from '../service/policy-source.js';
import type { Logger } from './logger.js';

/**
 * The policy source a server reads from, chosen from the configuration: a bundle label in NATS
 * when `policySource.url` is set, else the policy directory. The store and the cluster primary take
 * any source.
 */
export function createPolicySource(config: VerdictConfig, logger: Logger): PolicySource {
  const ps = config.policySource;
  if (ps.url !== '') {
    return new NatsBundleSource(
      {
        url: parseBundleSourceUrl(ps.url),
        buckets: { objects: ps.bucket, labels: ps.labelsBucket },
        cacheDir: ps.cacheDir,
        timeoutMs: ps.timeoutMs,
        pollIntervalMs: ps.pollIntervalMs,
        limits: { ...DEFAULT_BUNDLE_LIMITS, maxBundleBytes: ps.maxBundleBytes },
        clientOptions: () => natsClientOptions(config),
        clientName: `verdict ${config.events.instanceId} policies`,
      },
      logger,
    );
  }
  const { watch, debounceMs, settleMs, pollIntervalMs } = config.reload;
  return new DirectorySource(config.policies, { watch, debounceMs, settleMs, pollIntervalMs });
}

/** What GetPolicySet and the logs name as the policy source. */
export function policySourceName(config: VerdictConfig): string {
  return config.policySource.url !== '' ? parseBundleSourceUrl(config.policySource.url).display : config.policies;
}
