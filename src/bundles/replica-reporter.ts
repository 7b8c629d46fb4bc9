import type { VerdictConfig } from '../config/schema.js';
import { packageVersion } from '../cli/version.js';
import type { Logger } from '../server/logger.js';
import type { PolicySource } from '../service/policy-source.js';
import { BackgroundNats, natsClientOptions } from './connection.js';
import { FleetReporter, type ReplicaSource, type ReplicaState } from './fleet.js';
import { NatsBundleSource } from './nats-source.js';

/**
 * The fleet reporter of a serving replica, or undefined when it reports nowhere: it reports when
 * `fleet.bucket` is set and there is a NATS to report to, the policy source's (a bundle label:
 * the same connection) or `fleet.natsUrl` (a replica serving a directory).
 */
export function createFleetReporter(
  config: VerdictConfig,
  logger: Logger,
  source: PolicySource | undefined,
  state: () => Omit<ReplicaState, 'source'>,
  listen: string,
): FleetReporter | undefined {
  const { bucket, heartbeatMs, natsUrl } = config.fleet;
  if (bucket === '') return undefined;
  let link: BackgroundNats;
  let owns = false;
  if (source instanceof NatsBundleSource) link = source.nats;
  else if (natsUrl !== '') {
    const servers = natsUrl.split(',').map((s) => (/^[a-z]+:\/\//.test(s.trim()) ? s.trim() : `nats://${s.trim()}`));
    link = new BackgroundNats(servers, `verdict ${config.events.instanceId} fleet`, () => natsClientOptions(config), config.policySource.timeoutMs, logger, 'fleet heartbeats');
    owns = true;
  } else return undefined;
  const sourceInfo = (): ReplicaSource => {
    if (source instanceof NatsBundleSource) {
      const s = source.status();
      return { kind: 'nats', name: source.name, label: s.label, labelsBucket: config.policySource.labelsBucket, wanted: s.wanted ?? null, connected: s.connected };
    }
    return { kind: 'directory', name: config.policies };
  };
  return new FleetReporter(
    link,
    owns,
    { bucket, heartbeatMs, timeoutMs: config.policySource.timeoutMs },
    { instance: config.events.instanceId, workers: config.workers, version: packageVersion(), listen },
    () => ({ ...state(), source: sourceInfo() }),
    logger,
  );
}
