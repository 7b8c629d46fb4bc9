/**
 * The wire protocols the load generator can speak. A server definition names its protocol; the
 * protocol knows the RPC paths, how to encode the benchmark workloads as request messages, how
 * many checks one call carries, and how to recognise a sane response: verdict.v1 (below) and
 * cerbos.svc.v1 (bench/cerbos/protocol.ts: CheckResources with the same workloads).
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadProtoDefinition } from '../../src/grpc/proto.js';
import { attributesToStruct } from '../../src/grpc/struct.js';
import { workloadBatches, workloadRequests, type WorkloadName } from '../workloads.js';
import { cerbosProtocol } from '../cerbos/protocol.js';
import { envoyProtocol } from './envoy-protocol.js';
import { authzenProtocol } from '../http/authzen-protocol.js';

export type MethodName = 'Check' | 'CheckBatch';

export interface ProtocolMethod {
  /** e.g. "/verdict.v1.Authorization/Check". */
  readonly path: string;
  readonly encode: (message: unknown) => Buffer;
  readonly decode: (bytes: Buffer) => unknown;
}

export interface Protocol {
  readonly name: string;
  /** Runs only the scenarios that name it (Scenario.protocol), not the generic ones (envoy.auth.v3). */
  readonly dedicated?: boolean;
  /** How the generator sends calls: gRPC (default; --client picks h2 or grpc-js) or raw HTTP/1.1 with JSON bodies (AuthZEN). */
  readonly transport?: 'http1';
  method(name: MethodName): ProtocolMethod;
  /** Request messages (proto-loader object form) for a workload, sent round-robin. */
  messages(workload: WorkloadName, method: MethodName): unknown[];
  /** Decisions one call of `method` asks for, for `workload`. */
  checksPerCall(workload: WorkloadName, method: MethodName): number;
  /** Why a decoded response is not a plausible answer, or undefined if it is. */
  problemWith(method: MethodName, response: unknown): string | undefined;
}

let verdictService: ServiceDefinition | undefined;

function verdictMethod(name: MethodName): ProtocolMethod {
  verdictService ??= loadProtoDefinition()['verdict.v1.Authorization'] as ServiceDefinition;
  const def = verdictService[name] as MethodDefinition<unknown, unknown>;
  return { path: def.path, encode: (m) => def.requestSerialize(m), decode: (b) => def.responseDeserialize(b) };
}

const verdictV1: Protocol = {
  name: 'verdict.v1',
  method: verdictMethod,
  messages(workload, method) {
    if (method === 'Check') {
      return workloadRequests(workload).map((r, i) => ({
        subject: { type: r.subject.type, id: r.subject.id, roles: [...r.subject.roles], attributes: attributesToStruct(r.subject.attributes) },
        action: { name: r.action },
        resource: { type: r.resource.type, id: r.resource.id, attributes: attributesToStruct(r.resource.attributes) },
        context: attributesToStruct(r.context),
        requestId: `bench-${workload}-${i}`,
      }));
    }
    return workloadBatches(workload).map((b, i) => ({
      subject: { type: b.subject.type, id: b.subject.id, roles: [...b.subject.roles], attributes: attributesToStruct(b.subject.attributes) },
      items: b.items.map((it) => ({
        action: { name: it.action },
        resource: { type: it.resource.type, id: it.resource.id, attributes: attributesToStruct(it.resource.attributes) },
      })),
      context: attributesToStruct(b.context),
      requestId: `bench-batch-${workload}-${i}`,
    }));
  },
  checksPerCall(workload, method) {
    return method === 'Check' ? 1 : (workloadBatches(workload)[0]?.items.length ?? 0);
  },
  problemWith(method, response) {
    const r = response as { decision?: string; results?: { decision?: string }[] } | null;
    if (!r) return 'empty response';
    if (method === 'Check') return r.decision === 'EFFECT_ALLOW' || r.decision === 'EFFECT_DENY' ? undefined : `no decision in ${JSON.stringify(r).slice(0, 200)}`;
    if (!Array.isArray(r.results) || r.results.length === 0) return `no results in ${JSON.stringify(r).slice(0, 200)}`;
    return r.results.every((x) => x.decision === 'EFFECT_ALLOW' || x.decision === 'EFFECT_DENY') ? undefined : 'a batch result has no decision';
  },
};

const PROTOCOLS: Record<string, Protocol> = { [verdictV1.name]: verdictV1, [cerbosProtocol.name]: cerbosProtocol, [envoyProtocol.name]: envoyProtocol, [authzenProtocol.name]: authzenProtocol };

export function protocol(name: string): Protocol {
  const p = PROTOCOLS[name];
  if (!p) throw new Error(`unknown protocol "${name}" (known: ${Object.keys(PROTOCOLS).join(', ')})`);
  return p;
}
