/** The standard gRPC health and reflection services of a real `verdict serve` process. */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { expect } from 'chai';
import { PROTO_ROOT } from '../../src/grpc/proto.js';
import { cleanupServerProcesses, spawnVerdict, startServer } from '../support/server-process.js';
import { closeClients, DOCUMENT_POLICY, expectGrpcError, healthClient, healthStatus, listServicesByReflection, policyDir, reflectFileContainingSymbol, status } from './fixtures.js';

interface Descriptors {
  FileDescriptorProto: { decode(b: Uint8Array): { name: string; dependency: string[]; messageType: { name: string; field: { name: string }[] }[] } };
  FileDescriptorSet: { fromObject(o: unknown): unknown };
}
const protobuf = createRequire(import.meta.url)('protobufjs') as { Root: { fromDescriptor(set: unknown): { resolveAll(): unknown } } };
const descriptors = createRequire(import.meta.url)('protobufjs/ext/descriptor') as Descriptors;

/**
 * What a reflection client such as grpcurl does: link each returned file with only the files it
 * declares as dependencies (transitively). A type it names but cannot see makes resolveAll throw.
 */
function expectLinkable(files: Buffer[]): string[] {
  const byName = new Map(files.map((b) => [descriptors.FileDescriptorProto.decode(b).name, b]));
  for (const [name] of byName) {
    const seen = new Set<string>();
    const visit = (n: string) => {
      if (seen.has(n)) return;
      const bytes = byName.get(n);
      expect(bytes, `${name} depends on ${n}, which reflection did not return`).to.not.equal(undefined);
      seen.add(n);
      for (const d of descriptors.FileDescriptorProto.decode(bytes!).dependency) visit(d);
    };
    visit(name);
    const set = { file: [...seen].map((n) => descriptors.FileDescriptorProto.decode(byName.get(n)!)) };
    expect(() => protobuf.Root.fromDescriptor(set).resolveAll(), `linking ${name} with its declared dependencies [${[...seen].join(', ')}]`).to.not.throw();
  }
  return [...byName.keys()];
}

describe('gRPC health and reflection (real server process)', function () {
  this.timeout(20_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('health: SERVING for "" and verdict.v1.Authorization once the policies are loaded; NOT_FOUND for other services', async () => {
    const server = await startServer({ policies: policyDir() });
    const health = healthClient(server.address);
    expect(await healthStatus(health, '')).to.equal('SERVING');
    expect(await healthStatus(health, 'verdict.v1.Authorization')).to.equal('SERVING');
    await expectGrpcError(healthStatus(health, 'no.such.Service'), status.NOT_FOUND);
  });

  it('health: Watch sees SERVING, then NOT_SERVING as soon as SIGTERM starts the shutdown', async () => {
    const server = await startServer({ policies: policyDir() });
    const health = healthClient(server.address);
    const seen: string[] = [];
    const call = health.Watch!({ service: 'verdict.v1.Authorization' }) as ClientReadableStream<{ status: string }>;
    const notServing = new Promise<void>((resolve, reject) => {
      call.on('data', (msg: { status: string }) => {
        seen.push(msg.status);
        if (msg.status === 'SERVING') server.kill('SIGTERM');
        if (msg.status === 'NOT_SERVING') resolve();
      });
      call.on('error', (err: { code: number }) => (err.code === status.CANCELLED ? undefined : reject(err)));
    });
    await notServing;
    // A health-checking client (a load balancer) stops watching once told NOT_SERVING; the
    // shutdown then completes without waiting for the grace period.
    call.cancel();
    expect(seen).to.deep.equal(['SERVING', 'NOT_SERVING']);
    const exit = await server.exitWithin(8_000);
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(server.findLog('verdict stopped')).to.include({ reason: 'SIGTERM', shutdown: 'graceful' });
  });

  it('refuses to start with an invalid initial policy set: exit code 1, the error names file:line:column', async () => {
    const broken = DOCUMENT_POLICY.replace('effect: allow\n    roles: [employee]', 'effect: permit\n    roles: [employee]');
    expect(broken).to.not.equal(DOCUMENT_POLICY);
    const line = broken.split('\n').findIndex((l) => l.includes('effect: permit')) + 1;
    const dir = policyDir({ 'document.yaml': broken });
    const proc = spawnVerdict(['serve', '--policies', dir, '--listen', '127.0.0.1:0', '--no-events']);
    const exit = await proc.exitWithin(10_000);
    expect(exit.code, proc.tail()).to.equal(1);
    expect(proc.findLog('verdict serving')).to.equal(undefined);
    const rejected = proc.findLog('policy set rejected; not serving');
    expect(rejected, proc.tail()).to.not.equal(undefined);
    expect((rejected!.errors as string[]).join('\n')).to.match(new RegExp(`^document\\.yaml:${line}:\\d+: INVALID_EFFECT`, 'm'));
    const fatal = proc.findLog(/^verdict failed to start: policy set .* rejected: document\.yaml:/);
    expect(fatal, proc.tail()).to.include({ level: 60 });
    expect(String(fatal!.err)).to.match(new RegExp(`document\\.yaml:${line}:\\d+`));
  });

  it('reflection: list_services names verdict.v1.Authorization and grpc.health.v1.Health', async () => {
    const server = await startServer({ policies: policyDir() });
    const services = await listServicesByReflection(server.address);
    expect(services).to.include.members(['verdict.v1.Authorization', 'grpc.health.v1.Health']);
  });

  it('reflection: the files for verdict.v1.Authorization and Envoy ext_authz declare their imports, so clients like grpcurl can link them', async () => {
    const server = await startServer({ policies: policyDir(), args: ['--routes', path.resolve(PROTO_ROOT, '../examples/gateway/routes.yaml')] });
    const served = await reflectFileContainingSymbol(server.address, 'verdict.v1.Authorization');
    const verdictFiles = expectLinkable(served);
    expect(verdictFiles.length).to.be.greaterThan(1); // the service's file and google.protobuf's
    // The proto's own field names, as grpcurl users write them.
    const checkRequest = descriptors.FileDescriptorProto.decode(served[0]!).messageType.find((m) => m.name === 'CheckRequest');
    expect(checkRequest?.field.map((f) => f.name)).to.include('request_id');
    const envoyFiles = expectLinkable(await reflectFileContainingSymbol(server.address, 'envoy.service.auth.v3.Authorization'));
    expect(envoyFiles.length).to.be.greaterThan(2);
  });
});
