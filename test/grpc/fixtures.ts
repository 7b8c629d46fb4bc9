/** Policies, gRPC clients and call helpers shared by the gRPC integration tests. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { credentials, loadPackageDefinition, status, type Client, type ClientDuplexStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { expect } from 'chai';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';
import { makeTempDir, writeFile } from '../support/server-process.js';

export { status };

/**
 * documents: employees read; suspended subjects are denied everything; `inspect` is allowed only
 * when attributes of every Struct kind arrive intact; `count` errors on a non-numeric count.
 */
export const DOCUMENT_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: deny-suspended
    actions: ["*"]
    effect: deny
    when: has(subject.attributes.suspended) && subject.attributes.suspended
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
  - name: every-kind
    actions: [inspect]
    effect: allow
    when: >-
      subject.attributes.s == "text" &&
      subject.attributes.n == 42.5 &&
      subject.attributes.b == true &&
      subject.attributes.z == null &&
      subject.attributes.l == [1.0, "two", false] &&
      resource.attributes.m.inner.k == "v" &&
      resource.attributes.m.inner.list[1] == 2.0 &&
      context.ip == "10.1.2.3"
  - name: count-above-three
    actions: [count]
    effect: allow
    when: resource.attributes.count > 3
`;

/** folders: only admins do anything. */
export const FOLDER_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: folder
rules:
  - name: admins-manage
    actions: ["*"]
    effect: allow
    roles: [admin]
`;

/** employees read documents; with `allowEdit`, they also edit. */
export function documentPolicy(allowEdit: boolean): string {
  return `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read${allowEdit ? ', edit' : ''}]
    effect: allow
    roles: [employee]
`;
}

/** The same policy with an error on line 7 (a misspelled field name, column 5). */
export const BROKEN_FIELD = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read, edit]
    efect: allow
    roles: [employee]
`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls `probe` until `done(result)` holds; fails after `timeoutMs` with the last result. */
export async function pollUntil<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (done(last)) return last;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/** A fresh temp policy directory with document.yaml and folders/folder.yaml. */
export function policyDir(files: Record<string, string> = { 'document.yaml': DOCUMENT_POLICY, 'folders/folder.yaml': FOLDER_POLICY }): string {
  const dir = makeTempDir('policies');
  for (const [rel, text] of Object.entries(files)) writeFile(dir, rel, text);
  return dir;
}

export type AuthzClient = Client & Record<string, Function>;

/** Clients made by the helpers below; closeClients() in the cleanup hook closes them. */
const openClients: Client[] = [];

export function closeClients(): void {
  for (const c of openClients.splice(0)) c.close();
}

export function authzClient(address: string): AuthzClient {
  const c = createAuthorizationClient(address);
  openClients.push(c);
  return c;
}

/**
 * `n` clients with a connection each (grpc-js shares connections between clients of one target
 * unless told otherwise), so a cluster's workers each get some of them.
 */
export function separateClients(address: string, n: number): AuthzClient[] {
  return Array.from({ length: n }, () => {
    const c = createAuthorizationClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    openClients.push(c);
    return c;
  });
}

/** The decoded CheckResponse (defaults: false, so false/""/[] fields are absent). */
export interface CheckResponse {
  decision?: string;
  allowed?: boolean;
  policy?: string;
  rule?: string;
  reason?: string;
  revision?: string;
  decisionId?: string;
  explanation?: { policy?: string; rule?: string; effect?: string; outcome?: string; detail?: string; derivedRoles?: string[] }[];
  errors?: { policy?: string; rule?: string; message?: string }[];
  schemaProblems?: string[];
}

export interface Timestamp {
  seconds?: string;
  nanos?: number;
}

export interface GetPolicySetResponse {
  revision?: string;
  loadedAt?: Timestamp;
  source?: string;
  policies?: { id?: string; resource?: string; rules?: number; derivedRoles?: number; variables?: number }[];
  resourceTypes?: string[];
  ruleCount?: number;
  lastFailure?: { at?: Timestamp; message?: string; issues?: { file?: string; line?: number; column?: number; code?: string; message?: string }[] };
}

export function check(client: AuthzClient, req: JsonCheckRequest, extra: { explain?: boolean; requestId?: string } = {}): Promise<CheckResponse> {
  return unary<CheckResponse>(client, 'Check', toProtoCheckRequest(req, extra));
}

export function getPolicySet(client: AuthzClient): Promise<GetPolicySetResponse> {
  return unary<GetPolicySetResponse>(client, 'GetPolicySet', {});
}

/** A request for `action` on a document by an employee (or by `subject`). */
export function docRequest(action = 'read', subject: Partial<JsonCheckRequest['subject']> = {}, resource: Partial<JsonCheckRequest['resource']> = {}): JsonCheckRequest {
  return { subject: { id: 'alice', roles: ['employee'], ...subject }, action, resource: { type: 'document', id: 'd1', ...resource } };
}

/** Awaits a call that must fail; returns the error after checking its code (and details). */
export async function expectGrpcError(call: Promise<unknown>, code: status, details?: RegExp | string): Promise<ServiceError> {
  let result: unknown;
  try {
    result = await call;
  } catch (err) {
    const e = err as ServiceError;
    expect(e.code, `expected ${status[code]}, got ${status[e.code]}: ${e.details}`).to.equal(code);
    if (details !== undefined) {
      if (typeof details === 'string') expect(e.details).to.contain(details);
      else expect(e.details).to.match(details);
    }
    return e;
  }
  throw new Error(`expected the call to fail with ${status[code]}, but it returned ${JSON.stringify(result)}`);
}

/** UUID text form (any version; Verdict issues v7). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function clientConstructor(def: protoLoader.PackageDefinition, dotted: string): ServiceClientConstructor {
  let node: unknown = loadPackageDefinition(def);
  for (const part of dotted.split('.')) node = (node as GrpcObject)[part];
  return node as ServiceClientConstructor;
}

const LOADER: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };

/** grpc.health.v1.Health from the proto bundled with grpc-health-check. */
export function healthClient(address: string): AuthzClient {
  const Ctor = clientConstructor(protoLoader.loadSync(healthProtoPath, LOADER), 'grpc.health.v1.Health');
  const c = new Ctor(address, credentials.createInsecure()) as AuthzClient;
  openClients.push(c);
  return c;
}

export async function healthStatus(client: AuthzClient, service: string): Promise<string> {
  const res = await unary<{ status: string }>(client, 'Check', { service }, 5_000);
  return res.status;
}

/** The v1 reflection proto shipped inside @grpc/reflection (build/proto next to build/src). */
export const REFLECTION_PROTO = path.resolve(
  path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
  '../proto/grpc/reflection/v1/reflection.proto',
);

/** One request on grpc.reflection.v1.ServerReflection/ServerReflectionInfo; `pick` reads the answer. */
function reflect<T>(address: string, request: Record<string, unknown>, pick: (msg: Record<string, unknown>) => T | undefined): Promise<T> {
  const Ctor = clientConstructor(protoLoader.loadSync(REFLECTION_PROTO, LOADER), 'grpc.reflection.v1.ServerReflection');
  const c = new Ctor(address, credentials.createInsecure()) as AuthzClient;
  openClients.push(c);
  return new Promise((resolve, reject) => {
    const stream = c.ServerReflectionInfo!({ deadline: Date.now() + 5_000 }) as ClientDuplexStream<unknown, Record<string, unknown>>;
    stream.on('data', (msg: Record<string, unknown>) => {
      const answer = pick(msg);
      if (answer !== undefined) resolve(answer);
      else reject(new Error(`unexpected reflection response ${JSON.stringify(msg)}`));
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ host: '', ...request });
  });
}

/** Reflection list_services: the service names. */
export function listServicesByReflection(address: string): Promise<string[]> {
  return reflect(address, { listServices: '*' }, (msg) => {
    const list = msg.listServicesResponse as { service?: { name: string }[] } | undefined;
    return list ? (list.service ?? []).map((s) => s.name) : undefined;
  });
}

/** Reflection file_containing_symbol: the serialized FileDescriptorProtos the server returns. */
export function reflectFileContainingSymbol(address: string, symbol: string): Promise<Buffer[]> {
  return reflect(address, { fileContainingSymbol: symbol }, (msg) => {
    const files = msg.fileDescriptorResponse as { fileDescriptorProto?: Buffer[] } | undefined;
    return files ? (files.fileDescriptorProto ?? []) : undefined;
  });
}
