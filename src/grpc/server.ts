import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ServiceLimits } from '../config/schema.js';
import { guardRequestDecoding } from './codec-guard.js';
import { LOADER_OPTIONS, VERDICT_PROTO } from './proto.js';
import { withDeclaredDependencies } from './reflection-descriptors.js';

export const AUTHORIZATION_SERVICE = 'verdict.v1.Authorization';

export interface HostedService {
  /** Fully qualified name, e.g. verdict.v1.Authorization. */
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: Record<string, unknown>;
}

/**
 * A grpc-js server carrying Verdict's services plus the standard health and reflection services.
 * Health starts NOT_SERVING and is flipped by the owner once a policy set is loaded.
 */
export class GrpcHost {
  readonly server: Server;
  readonly health: HealthImplementation;
  private readonly serviceNames: string[] = [];
  /** What setServing last set: the health status of every service (the admin /readyz reads it). */
  serving = false;

  constructor(
    services: readonly HostedService[],
    limits: ServiceLimits,
    extraProtoFiles: readonly string[] = [],
  ) {
    // Our own guard answers oversized requests with INVALID_ARGUMENT; grpc-js's hard cap only stops absurd ones.
    this.server = new Server({
      'grpc.max_receive_message_length': Math.max(4 * 1024 * 1024, limits.maxMessageBytes * 4),
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
    });
    for (const s of services) {
      this.server.addService(guardRequestDecoding(s.definition, limits.maxMessageBytes), s.implementation as never);
      this.serviceNames.push(s.name);
    }
    this.health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(this.serviceNames.map((n) => [n, 'NOT_SERVING'])) });
    this.health.addToServer(this.server);
    // keepCase: reflection clients see the proto's own field names (request_id), not camelCase.
    const reflectionPackage = protoLoader.loadSync([VERDICT_PROTO, healthProtoPath, ...extraProtoFiles], { ...LOADER_OPTIONS, keepCase: true });
    new ReflectionService(withDeclaredDependencies(reflectionPackage)).addToServer(this.server);
  }

  setServing(serving: boolean): void {
    this.serving = serving;
    const state = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', state);
    for (const n of this.serviceNames) this.health.setStatus(n, state);
  }

  /** Binds host:port (port 0 = any free port) and returns the bound port. */
  bind(address: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** Stops accepting, lets in-flight calls finish, and forces the rest after `graceMs`. */
  shutdown(graceMs: number): Promise<'graceful' | 'forced'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve('forced');
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve('graceful');
      });
    });
  }
}
