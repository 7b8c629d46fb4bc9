/**
 * envoy.auth.v3: Envoy's ext_authz (envoy.service.auth.v3.Authorization/Check) as Envoy sends it,
 * against `verdict serve --routes examples/gateway/routes.yaml`. The example workload's requests
 * become HTTP requests on the routes that map to the same action and resource (the routes file
 * carries no resource attributes except a department in the path), shaped like the CheckRequests
 * in test/gateway (request.http with lower-cased headers, source and destination peers). No
 * bearer token: the subject is the calling service's SPIFFE ID (routes file: subjects.peer).
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { EXT_AUTHZ_PROTO, EXT_AUTHZ_SERVICE } from '../../src/gateway/ext-authz-service.js';
import { loadProtoDefinition } from '../../src/grpc/proto.js';
import { workloadRequests } from '../workloads.js';
import type { CheckRequest } from '../../src/engine/index.js';
import type { Protocol, ProtocolMethod } from './protocols.js';

let service: ServiceDefinition | undefined;

/** The HTTP method and path the routes file maps to this request's action and resource. */
export function httpFor(r: CheckRequest): { method: string; path: string } {
  const id = encodeURIComponent(r.resource.id);
  const department = (r.resource.attributes as Record<string, unknown> | undefined)?.department;
  if (r.resource.type === 'document') {
    switch (r.action) {
      case 'read':
        return typeof department === 'string' ? { method: 'GET', path: `/departments/${department}/documents/${id}` } : { method: 'GET', path: `/documents/${id}` };
      case 'edit':
        return { method: 'PUT', path: `/documents/${id}` };
      case 'delete':
        return { method: 'DELETE', path: `/documents/${id}` };
      case 'history':
        return { method: 'GET', path: `/documents/${id}/history` };
      default:
        return { method: 'POST', path: `/documents/${id}/${r.action}` };
    }
  }
  if (r.resource.type === 'folder') {
    const byAction: Record<string, { method: string; path: string }> = {
      read: { method: 'GET', path: `/folders/${id}` },
      list: { method: 'GET', path: `/folders/${id}/documents` },
      create: { method: 'POST', path: `/folders/${id}/documents` },
      rename: { method: 'PATCH', path: `/folders/${id}` },
      delete: { method: 'DELETE', path: `/folders/${id}` },
    };
    return byAction[r.action] ?? { method: 'GET', path: `/folders/${id}` };
  }
  if (r.resource.type === 'report') {
    if (r.action === 'read') return { method: 'GET', path: `/reports/${id}` };
    if (r.action === 'delete') return { method: 'DELETE', path: `/reports/${id}` };
    return { method: 'POST', path: `/reports/${id}/${r.action.replace(/^report:/, '')}` };
  }
  return { method: 'GET', path: `/${r.resource.type}s/${id}` };
}

const START = Date.UTC(2026, 10, 29, 3, 0, 0);

/** An Envoy CheckRequest (proto-loader object form) for one workload request. */
export function envoyCheckRequest(r: CheckRequest, i: number): Record<string, unknown> {
  const { method, path } = httpFor(r);
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const context = r.context as Record<string, unknown> | undefined;
  const ip = typeof context?.ip === 'string' ? context.ip : '10.1.2.3';
  const headers: Record<string, string> = {
    ':authority': 'docs.example.test',
    ':method': method,
    ':path': path,
    ':scheme': 'https',
    'user-agent': typeof context?.userAgent === 'string' ? context.userAgent : 'svc-gateway/2.3 (+grpc)',
    accept: 'application/json',
    'x-forwarded-for': `${ip}, 10.0.0.1`,
    'x-forwarded-proto': 'https',
    'x-request-id': id,
    'x-envoy-expected-rq-timeout-ms': '15000',
  };
  const now = START + i;
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: ip, portValue: 53412 + (i % 1000) } },
        principal: `spiffe://example.org/ns/docs/sa/${r.subject.id}`,
      },
      destination: {
        address: { socketAddress: { address: '10.0.0.5', portValue: 8443 } },
        principal: 'spiffe://example.org/ns/docs/sa/api',
      },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        http: { id, method, headers, path, host: 'docs.example.test', scheme: 'https', size: '-1', protocol: 'HTTP/2' },
      },
      contextExtensions: { virtual_host: 'docs' },
    },
  };
}

function envoyMethod(): ProtocolMethod {
  service ??= loadProtoDefinition([EXT_AUTHZ_PROTO])[EXT_AUTHZ_SERVICE] as ServiceDefinition;
  const def = service.Check as MethodDefinition<unknown, unknown>;
  return { path: def.path, encode: (m) => def.requestSerialize(m), decode: (b) => def.responseDeserialize(b) };
}

export const envoyProtocol: Protocol = {
  name: 'envoy.auth.v3',
  dedicated: true,
  method(name) {
    if (name !== 'Check') throw new Error(`envoy.auth.v3 has no ${name} (ext_authz has Check only)`);
    return envoyMethod();
  },
  messages(workload, method) {
    if (method !== 'Check' || workload !== 'example') throw new Error(`envoy.auth.v3 runs Check on the example workload only (not ${method} on ${workload})`);
    return workloadRequests(workload).map(envoyCheckRequest);
  },
  checksPerCall: () => 1,
  problemWith(_method, response) {
    const r = response as { status?: { code?: number } } | null;
    if (!r) return 'empty response';
    if (!r.status) return `no google.rpc.Status in ${JSON.stringify(r).slice(0, 200)}`;
    const code = r.status.code ?? 0;
    return code === 0 || code === 7 ? undefined : `status code ${code} (${JSON.stringify(r.status).slice(0, 200)})`;
  },
};
