import { credentials as grpcCredentials, loadPackageDefinition, type ChannelCredentials, type Client, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProtoDefinition } from './proto.js';
import { attributesToStruct } from './struct.js';

/** A JSON request as users write it (same shape as `verdict check --request`). */
export interface JsonCheckRequest {
  subject: { type?: string; id: string; roles?: string[]; attributes?: Record<string, unknown> };
  action: string;
  resource: { type: string; id?: string; attributes?: Record<string, unknown> };
  context?: Record<string, unknown>;
}

/** JSON request → verdict.v1.CheckRequest object form. */
export function toProtoCheckRequest(req: JsonCheckRequest, extra: { explain?: boolean; requestId?: string } = {}): Record<string, unknown> {
  return {
    subject: { type: req.subject.type ?? 'user', id: req.subject.id, roles: req.subject.roles ?? [], attributes: attributesToStruct(req.subject.attributes ?? {}) },
    action: { name: req.action },
    resource: { type: req.resource.type, id: req.resource.id ?? '', attributes: attributesToStruct(req.resource.attributes ?? {}) },
    context: attributesToStruct(req.context ?? {}),
    explain: extra.explain ?? false,
    requestId: extra.requestId ?? '',
  };
}

/** A grpc-js client for verdict.v1.Authorization (used by the CLI, tests and benchmarks). */
export function createAuthorizationClient(address: string, creds: ChannelCredentials = grpcCredentials.createInsecure(), options: Record<string, unknown> = {}): Client & Record<string, Function> {
  const pkg = loadPackageDefinition(loadProtoDefinition()) as GrpcObject;
  const Ctor = ((pkg.verdict as GrpcObject).v1 as GrpcObject).Authorization as ServiceClientConstructor;
  return new Ctor(address, creds, options) as Client & Record<string, Function>;
}

export function unary<T>(client: Client & Record<string, Function>, method: string, request: unknown, deadlineMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, { deadline: Date.now() + deadlineMs }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}
