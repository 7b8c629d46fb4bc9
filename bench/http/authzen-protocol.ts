/**
 * The "authzen.v1" protocol of the load generator: the benchmark workloads as OpenID AuthZEN 1.0
 * requests over HTTP/1.1 (bench/http/http1-transport.ts), to Verdict's and to Cerbos's AuthZEN
 * endpoints alike, with the same bytes:
 *
 *  - Check      → POST /access/v1/evaluation, one evaluation;
 *  - CheckBatch → POST /access/v1/evaluations: the subject and context as top-level defaults, one
 *    item per (action, resource) pair (10 resources × 3 actions).
 *
 * The subject's properties carry its attributes plus what each server needs to see the same
 * request: `roles` (Verdict's http.rolesProperty default), `cerbos.roles` (Cerbos's AuthZEN
 * mapping), and the request context as `context` (Cerbos's AuthZEN endpoint passes no request
 * context to policies, so its policies read `P.attr.context`, as with CheckResources). Each server
 * ignores the other's keys: no policy reads them.
 */
import type { CheckRequest } from '../../src/engine/index.js';
import type { MethodName, Protocol, ProtocolMethod } from '../grpc/protocols.js';
import { workloadBatches, workloadRequests, type WorkloadName } from '../workloads.js';

export const AUTHZEN_PROTOCOL = 'authzen.v1';

function subjectOf(subject: CheckRequest['subject'], context: CheckRequest['context']): Record<string, unknown> {
  return { type: subject.type, id: subject.id, properties: { ...subject.attributes, roles: [...subject.roles], 'cerbos.roles': [...subject.roles], context } };
}

function resourceOf(resource: CheckRequest['resource']): Record<string, unknown> {
  return { type: resource.type, id: resource.id, properties: resource.attributes };
}

/** The AuthZEN evaluation for one engine request. */
export function authzenEvaluation(r: CheckRequest): Record<string, unknown> {
  return { subject: subjectOf(r.subject, r.context), action: { name: r.action }, resource: resourceOf(r.resource), context: r.context };
}

const PATHS: Record<MethodName, string> = { Check: '/access/v1/evaluation', CheckBatch: '/access/v1/evaluations' };

function method(name: MethodName): ProtocolMethod {
  return {
    path: PATHS[name],
    encode: (message) => Buffer.from(JSON.stringify(message)),
    decode: (bytes) => JSON.parse(bytes.toString('utf8')) as unknown,
  };
}

export const authzenProtocol: Protocol = {
  name: AUTHZEN_PROTOCOL,
  dedicated: true,
  transport: 'http1',
  method,
  messages(workload: WorkloadName, m: MethodName) {
    if (m === 'Check') return workloadRequests(workload).map(authzenEvaluation);
    return workloadBatches(workload).map((b) => ({
      subject: subjectOf(b.subject, b.context),
      context: b.context,
      evaluations: b.items.map((it) => ({ action: { name: it.action }, resource: resourceOf(it.resource) })),
    }));
  },
  checksPerCall(workload, m) {
    return m === 'Check' ? 1 : (workloadBatches(workload)[0]?.items.length ?? 0);
  },
  problemWith(m, response) {
    const r = response as { decision?: unknown; evaluations?: { decision?: unknown }[] } | null;
    if (!r) return 'empty response';
    if (m === 'Check') return typeof r.decision === 'boolean' ? undefined : `no decision in ${JSON.stringify(r).slice(0, 200)}`;
    if (!Array.isArray(r.evaluations) || r.evaluations.length === 0) return `no evaluations in ${JSON.stringify(r).slice(0, 200)}`;
    return r.evaluations.every((e) => typeof e.decision === 'boolean') ? undefined : 'an evaluation has no decision';
  },
};
