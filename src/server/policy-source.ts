import type { VerdictConfig } from '../config/schema.js';
import { DirectorySource } from '../policy/directory-source.js';
import type { PolicySource } from '../service/policy-source.js';

/**
 * The policy source a server reads from, chosen from the configuration: the policy directory today.
 * Another source (a NATS bundle) plugs in here; the store and the cluster primary take any source.
 */
export function createPolicySource(config: VerdictConfig): PolicySource {
  const { watch, debounceMs, settleMs, pollIntervalMs } = config.reload;
  return new DirectorySource(config.policies, { watch, debounceMs, settleMs, pollIntervalMs });
}
