/**
 * The transport ceiling: a grpc-js server for verdict.v1.Authorization on the same proto and the
 * same proto-loader options as Verdict, whose Check and CheckBatch decode the request and answer
 * a fixed, realistic response without evaluating anything.
 *
 *   node dist/bench/grpc/empty-server.js [--listen 127.0.0.1:0]
 *
 * Prints one JSON line {"msg":"listening","port":N} once bound; stops on SIGTERM/SIGINT.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { loadProtoDefinition } from '../../src/grpc/proto.js';

/** What Verdict answers for an allowed check without explain (same fields, similar sizes). */
export const FIXED_RESPONSE = Object.freeze({
  decision: 'EFFECT_ALLOW',
  allowed: true,
  policy: 'documents/document.yaml',
  rule: 'owners-manage',
  reason: 'RULE_ALLOW',
  revision: 'sha256:bb7c7ef02af3b454',
  decisionId: '019ac8f2-5b3e-7c41-9d2a-6f0e8b1c4a37',
});

interface BatchRequest {
  items?: unknown[];
}

export async function startEmptyServer(address = '127.0.0.1:0'): Promise<{ server: Server; port: number }> {
  const pkg = loadProtoDefinition();
  const server = new Server({ 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(pkg['verdict.v1.Authorization'] as ServiceDefinition, {
    Check(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      callback(null, FIXED_RESPONSE);
    },
    CheckBatch(call: ServerUnaryCall<BatchRequest, unknown>, callback: sendUnaryData<unknown>) {
      const n = call.request.items?.length ?? 0;
      const results = new Array<unknown>(n).fill(FIXED_RESPONSE);
      callback(null, { results, revision: FIXED_RESPONSE.revision });
    },
    GetPolicySet(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      callback(null, { revision: FIXED_RESPONSE.revision, source: 'empty benchmark server' });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, port };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--listen');
  const address = i >= 0 ? process.argv[i + 1]! : '127.0.0.1:0';
  const { server, port } = await startEmptyServer(address);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port, pid: process.pid })}\n`);
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
