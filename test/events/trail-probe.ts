/** What an operator sees of the decision trail: the health service and GetPolicySet's `trail`. */
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { unary } from '../../src/grpc/client.js';
import type { AuthzClient } from '../support/events-harness.js';

export const TRAIL_HEALTH = 'verdict.v1.DecisionTrail';

/** Health status of `service` ('' = the whole server) at `address`. */
export async function healthStatus(address: string, service: string): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
  const Ctor = ((loadPackageDefinition(def).grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
  const client = new (Ctor.Health as ServiceClientConstructor)(address, credentials.createInsecure()) as unknown as AuthzClient;
  try {
    return (await unary<{ status: string }>(client, 'Check', { service }, 5_000)).status;
  } finally {
    client.close();
  }
}

export interface TrailStatus {
  enabled: boolean;
  healthy?: boolean;
  problems?: string[];
  connected?: boolean;
  publisherRunning?: boolean;
  stream?: string;
  streamDrift?: string[];
  lastStreamIncident?: { problems?: string[]; repaired?: boolean; at?: { seconds: string } };
  spoolError?: string;
  counters?: Record<string, string>;
}

export async function trailStatus(client: AuthzClient): Promise<TrailStatus> {
  const res = await unary<{ trail?: TrailStatus }>(client, 'GetPolicySet', {});
  return res.trail!;
}
