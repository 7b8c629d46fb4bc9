/**
 * An ext_authz client built from Envoy's message definitions (proto/envoy/...), and CheckRequests
 * shaped as Envoy's HTTP ext_authz filter sends them: lower-cased headers with pseudo-headers, the
 * query inside :path and http.path, peers with socket addresses and mTLS principals.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials as grpcCredentials, loadPackageDefinition, type ChannelCredentials, type ChannelOptions, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadProtoDefinition, VERDICT_PROTO } from '../../../src/grpc/proto.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const definition = loadProtoDefinition(['envoy/service/auth/v3/external_auth.proto', VERDICT_PROTO]);
const loaded = loadPackageDefinition(definition) as unknown as {
  envoy: { service: { auth: { v3: { Authorization: ServiceClientConstructor } } } };
  verdict: { v1: { Authorization: ServiceClientConstructor } };
};

export type AnyClient = Client & Record<string, Function>;

export function extAuthzClient(address: string, creds: ChannelCredentials = grpcCredentials.createInsecure(), options: ChannelOptions = {}): AnyClient {
  return new loaded.envoy.service.auth.v3.Authorization(address, creds, options) as AnyClient;
}

export function verdictClient(address: string, creds: ChannelCredentials = grpcCredentials.createInsecure(), options: ChannelOptions = {}): AnyClient {
  return new loaded.verdict.v1.Authorization(address, creds, options) as AnyClient;
}

export function call<T = Record<string, any>>(client: AnyClient, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, { deadline: Date.now() + 8_000 }, (err: ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Calls and resolves with the gRPC error (rejects if the call succeeded). */
export async function callError(client: AnyClient, method: string, request: unknown): Promise<ServiceError> {
  try {
    await call(client, method, request);
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error(`${method} succeeded; an error was expected`);
}

export interface HttpOptions {
  readonly method?: string;
  /** Path with query, as the client sent it. */
  readonly path: string;
  readonly token?: string;
  readonly headers?: Record<string, string>;
  readonly sourceIp?: string;
  /** The downstream's mTLS identity, as Envoy reports it. */
  readonly principal?: string;
}

/** An envoy.service.auth.v3.CheckRequest as Envoy builds it for one HTTP request. */
export function envoyCheck(o: HttpOptions): Record<string, unknown> {
  const method = o.method ?? 'GET';
  const id = randomUUID();
  const headers: Record<string, string> = {
    ':authority': 'docs.example.test',
    ':method': method,
    ':path': o.path,
    ':scheme': 'https',
    'user-agent': 'curl/8.5.0',
    accept: '*/*',
    'x-forwarded-proto': 'https',
    'x-request-id': id,
    'x-envoy-expected-rq-timeout-ms': '15000',
    ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}),
    ...o.headers,
  };
  const now = Date.now();
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: o.sourceIp ?? '10.1.2.3', portValue: 53412 } },
        ...(o.principal ? { principal: o.principal } : {}),
      },
      destination: {
        address: { socketAddress: { address: '10.0.0.5', portValue: 8443 } },
        principal: 'spiffe://example.org/ns/docs/sa/api',
      },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        http: { id, method, headers, path: o.path, host: 'docs.example.test', scheme: 'https', size: '-1', protocol: 'HTTP/2' },
      },
      contextExtensions: { virtual_host: 'docs' },
    },
  };
}

/** The headers of an ok_response or denied_response as a plain map. */
export function headersOf(options: { header?: { key?: string; value?: string } }[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of options ?? []) if (o.header?.key) out[o.header.key] = o.header.value ?? '';
  return out;
}
