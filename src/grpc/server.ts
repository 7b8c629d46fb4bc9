import type { Http2Server } from 'node:http2';
import { Server, ServerCredentials, type ChannelOptions, type ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ServiceLimits, TransportConfig } from '../config/schema.js';
import { guardRequestDecoding, guardService } from './codec-guard.js';
import { withStrictHealthDecoding } from './health-codec.js';
import { LOADER_OPTIONS, VERDICT_PROTO } from './proto.js';
import { withDeclaredDependencies } from './reflection-descriptors.js';
import { TransportGuard, type TransportLimit } from './transport-guard.js';

export const AUTHORIZATION_SERVICE = 'verdict.v1.Authorization';

export interface HostedService {
  /** Fully qualified name, e.g. verdict.v1.Authorization. */
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: Record<string, unknown>;
}

export interface TransportOptions {
  readonly transport: TransportConfig;
  /** A client was turned away by a transport limit (called for each; the caller rate-limits logging). */
  readonly onLimit: (limit: TransportLimit, detail: Record<string, unknown>) => void;
}

/** grpc-js server options for the transport settings; a 0 ("off") is left out, as grpc-js reads 0 as "at once". */
export function grpcTransportOptions(t: TransportConfig): ChannelOptions {
  const options: ChannelOptions = {
    'grpc.max_concurrent_streams': t.maxConcurrentStreams,
    'grpc.keepalive_time_ms': t.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': t.keepaliveTimeoutMs,
    // grpc-js turns Node's per-connection cap off by default; without it a client that never
    // reads its answers makes the server buffer every answer of every call it sends
    'grpc-node.max_session_memory': t.maxSessionMemoryMb,
  };
  if (t.idleTimeoutMs > 0) options['grpc.max_connection_idle_ms'] = t.idleTimeoutMs;
  if (t.maxConnectionAgeMs > 0) options['grpc.max_connection_age_ms'] = t.maxConnectionAgeMs;
  if (t.maxConnectionAgeGraceMs > 0) options['grpc.max_connection_age_grace_ms'] = t.maxConnectionAgeGraceMs;
  return options;
}

/**
 * The HTTP/2 servers grpc-js made for its bound ports. grpc-js keeps them in a private field and
 * offers no hook for connection counts or per-stream byte accounting; @grpc/grpc-js is pinned to an
 * exact version, and a start fails loudly if this field ever moves (never a server without limits).
 */
function http2ServersOf(server: Server): Http2Server[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new Error('cannot apply the transport limits: this @grpc/grpc-js version keeps no http2Servers map (Verdict expects 1.14.7)');
  return [...servers.keys()] as Http2Server[];
}

/**
 * A grpc-js server carrying Verdict's services plus the standard health and reflection services.
 * Health starts NOT_SERVING and is flipped by the owner once a policy set is loaded.
 */
export class GrpcHost {
  readonly server: Server;
  readonly health: HealthImplementation;
  readonly guard: TransportGuard;
  private readonly serviceNames: string[] = [];
  /** Paths of request-streaming methods (reflection): their clock restarts with each message. */
  private readonly streamingPaths = new Set<string>();
  /** What setServing last set: the health status of every service (the admin /readyz reads it). */
  serving = false;

  constructor(
    services: readonly HostedService[],
    limits: ServiceLimits,
    extraProtoFiles: readonly string[] = [],
    transport: TransportOptions,
  ) {
    this.guard = new TransportGuard(transport.transport, limits.maxMessageBytes, (path) => this.streamingPaths.has(path), transport.onLimit);
    // The transport guard refuses oversized messages from their prefix and the codec guard any
    // that decompress beyond the limit, both with INVALID_ARGUMENT; grpc-js's hard cap only stops absurd ones.
    this.server = new Server({
      'grpc.max_receive_message_length': Math.max(4 * 1024 * 1024, limits.maxMessageBytes * 4),
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
      ...grpcTransportOptions(transport.transport),
      interceptors: [this.guard.interceptor],
    });
    for (const s of services) {
      this.add(guardRequestDecoding(s.definition, limits.maxMessageBytes), s.implementation);
      this.serviceNames.push(s.name);
    }
    this.health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(this.serviceNames.map((n) => [n, 'NOT_SERVING'])) });
    // A malformed health request is INVALID_ARGUMENT, like any other (grpc-js would answer INTERNAL).
    this.health.addToServer({
      addService: (definition, implementation) => {
        const guarded = guardService(withStrictHealthDecoding(definition as ServiceDefinition), implementation, limits.maxMessageBytes);
        this.add(guarded.definition, guarded.implementation);
      },
    });
    // keepCase: reflection clients see the proto's own field names (request_id), not camelCase.
    const reflectionPackage = protoLoader.loadSync([VERDICT_PROTO, healthProtoPath, ...extraProtoFiles], { ...LOADER_OPTIONS, keepCase: true });
    new ReflectionService(withDeclaredDependencies(reflectionPackage)).addToServer({ addService: (d, i) => this.add(d, i as Record<string, unknown>) });
  }

  private add(definition: ServiceDefinition, implementation: Record<string, unknown>): void {
    for (const method of Object.values(definition)) if (method.requestStream) this.streamingPaths.add(method.path);
    this.server.addService(definition, implementation as never);
  }

  setServing(serving: boolean): void {
    this.serving = serving;
    const state = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', state);
    for (const n of this.serviceNames) this.health.setStatus(n, state);
  }

  /** Binds host:port (port 0 = any free port), applies the transport limits, and returns the bound port. */
  async bind(address: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    try {
      for (const h2 of http2ServersOf(this.server)) this.guard.attach(h2);
    } catch (err) {
      this.server.forceShutdown();
      throw err;
    }
    return port;
  }

  /** Stops accepting, lets in-flight calls finish, and forces the rest after `graceMs`. */
  shutdown(graceMs: number): Promise<'graceful' | 'forced'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        this.guard.close();
        resolve('forced');
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        this.guard.close();
        resolve('graceful');
      });
    });
  }
}
