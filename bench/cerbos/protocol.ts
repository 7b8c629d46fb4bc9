/**
 * The "cerbos.svc.v1" wire protocol for the load generator: the benchmark workloads encoded as
 * Cerbos `CheckResources` calls (/cerbos.svc.v1.CerbosService/CheckResources), so Cerbos answers
 * the same questions Verdict does.
 *
 *  - Check      → CheckResources with 1 resource × 1 action;
 *  - CheckBatch → CheckResources with the batch's 10 resources × 3 actions, one principal.
 *
 * Subject → principal (id, roles, attributes as `attr`). Verdict's request context has no Cerbos
 * counterpart, so it travels as the principal attribute `context` (a map): the Cerbos policies in
 * bench/cerbos/policies read `P.attr.context.ip` where Verdict's read `context.ip`.
 *
 * The protos are a field-number-exact subset of Cerbos's public API under bench/cerbos/proto/
 * (they are not in the npm binary package).
 */
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { LOADER_OPTIONS } from '../../src/grpc/proto.js';
import { attributesToStruct, type ProtoValue } from '../../src/grpc/struct.js';
import type { CheckRequest } from '../../src/engine/index.js';
import type { MethodName, Protocol, ProtocolMethod } from '../grpc/protocols.js';
import { ROOT } from '../util.js';
import { workloadBatches, workloadRequests, type BatchRequest, type WorkloadName } from '../workloads.js';

export const CERBOS_PROTOCOL = 'cerbos.svc.v1';
export const CERBOS_PROTO_ROOT = path.join(ROOT, 'bench/cerbos/proto');

/** CheckResourcesRequest in proto-loader's object form. */
export interface CerbosCheckResourcesRequest {
  requestId: string;
  principal: { id: string; roles: string[]; attr: Record<string, ProtoValue> };
  resources: { actions: string[]; resource: { kind: string; id: string; attr: Record<string, ProtoValue> } }[];
}

/** CheckResourcesResponse as proto-loader decodes it (enums as strings, defaults off). */
export interface CerbosCheckResourcesResponse {
  requestId?: string;
  results?: { resource?: { id?: string; kind?: string }; actions?: Record<string, string>; meta?: { effectiveDerivedRoles?: string[] } }[];
  cerbosCallId?: string;
}

function principalOf(subject: CheckRequest['subject'], context: CheckRequest['context']): CerbosCheckResourcesRequest['principal'] {
  const attr = attributesToStruct((subject.attributes ?? {}) as Record<string, unknown>).fields!;
  // Verdict's `context` rides along as a principal attribute (see the header comment).
  attr.context = { structValue: attributesToStruct((context ?? {}) as Record<string, unknown>) };
  return { id: subject.id, roles: [...subject.roles], attr };
}

function resourceOf(resource: CheckRequest['resource']): CerbosCheckResourcesRequest['resources'][number]['resource'] {
  return { kind: resource.type, id: resource.id, attr: attributesToStruct((resource.attributes ?? {}) as Record<string, unknown>).fields! };
}

/**
 * One CheckResources request for a subject and (action, resource) pairs: pairs on the same
 * resource (type and id) share one entry, keeping the order of first appearance, as a Cerbos
 * client would send them.
 */
export function checkResourcesRequest(
  subject: CheckRequest['subject'],
  items: readonly { readonly action: string; readonly resource: CheckRequest['resource'] }[],
  context: CheckRequest['context'],
  requestId: string,
): CerbosCheckResourcesRequest {
  const entries = new Map<string, CerbosCheckResourcesRequest['resources'][number]>();
  for (const it of items) {
    const key = `${it.resource.type}\u0000${it.resource.id}`;
    let entry = entries.get(key);
    if (!entry) {
      entry = { actions: [], resource: resourceOf(it.resource) };
      entries.set(key, entry);
    }
    if (!entry.actions.includes(it.action)) entry.actions.push(it.action);
  }
  return { requestId, principal: principalOf(subject, context), resources: [...entries.values()] };
}

export function checkRequestToCerbos(r: CheckRequest, requestId: string): CerbosCheckResourcesRequest {
  return checkResourcesRequest(r.subject, [{ action: r.action, resource: r.resource }], r.context, requestId);
}

export function batchToCerbos(b: BatchRequest, requestId: string): CerbosCheckResourcesRequest {
  return checkResourcesRequest(b.subject, b.items, b.context, requestId);
}

let service: ServiceDefinition | undefined;

/** The CheckResources method definition (proto-loader, the same options as Verdict's own proto). */
export function checkResourcesMethod(): MethodDefinition<unknown, unknown> {
  service ??= protoLoader.loadSync(['cerbos/svc/v1/svc.proto'], { ...LOADER_OPTIONS, includeDirs: [CERBOS_PROTO_ROOT] })['cerbos.svc.v1.CerbosService'] as ServiceDefinition;
  return service.CheckResources as MethodDefinition<unknown, unknown>;
}

function method(): ProtocolMethod {
  const def = checkResourcesMethod();
  return { path: def.path, encode: (m) => def.requestSerialize(m), decode: (b) => def.responseDeserialize(b) };
}

const messageCache = new Map<string, CerbosCheckResourcesRequest[]>();

function messagesFor(workload: WorkloadName, name: MethodName): CerbosCheckResourcesRequest[] {
  const key = `${workload}/${name}`;
  let out = messageCache.get(key);
  if (!out) {
    out =
      name === 'Check'
        ? workloadRequests(workload).map((r, i) => checkRequestToCerbos(r, `bench-${workload}-${i}`))
        : workloadBatches(workload).map((b, i) => batchToCerbos(b, `bench-batch-${workload}-${i}`));
    messageCache.set(key, out);
  }
  return out;
}

const EFFECTS = new Set(['EFFECT_ALLOW', 'EFFECT_DENY']);

export const cerbosProtocol: Protocol = {
  name: CERBOS_PROTOCOL,
  // Both benchmark methods are the same RPC; only the number of resources and actions differs.
  method: () => method(),
  messages: (workload, name) => messagesFor(workload, name),
  checksPerCall(workload, name) {
    const first = messagesFor(workload, name)[0];
    return first ? first.resources.reduce((n, e) => n + e.actions.length, 0) : 0;
  },
  problemWith(name, response) {
    const r = response as CerbosCheckResourcesResponse | null;
    if (!r) return 'empty response';
    if (!Array.isArray(r.results) || r.results.length === 0) return `no results in ${JSON.stringify(r).slice(0, 200)}`;
    if (name === 'Check' && r.results.length !== 1) return `${r.results.length} results for a single check`;
    for (const result of r.results) {
      const effects = Object.values(result.actions ?? {});
      if (effects.length === 0) return `a result has no actions: ${JSON.stringify(result).slice(0, 200)}`;
      if (!effects.every((e) => EFFECTS.has(e))) return `a result has no decision: ${JSON.stringify(result).slice(0, 200)}`;
    }
    return undefined;
  },
};
