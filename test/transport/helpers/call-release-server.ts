/**
 * A GrpcHost serving a trivial Authorization.Check in a process of its own (run with --expose-gc),
 * for test/transport/call-release.test.ts: the client's own calls must not share its heap.
 * IPC: sends {port} once bound; answers {op:'major'|'minor'} with {oldSpaceUsed} after the collection(s).
 */
import { getHeapSpaceStatistics } from 'node:v8';
import type { sendUnaryData, ServiceDefinition } from '@grpc/grpc-js';
import { DEFAULT_CONFIG } from '../../../src/config/load.js';
import { loadProtoDefinition } from '../../../src/grpc/proto.js';
import { AUTHORIZATION_SERVICE, GrpcHost } from '../../../src/grpc/server.js';

const gc = (globalThis as { gc?: (o: { type: 'minor' | 'major' }) => void }).gc!;
const definition = loadProtoDefinition()[AUTHORIZATION_SERVICE] as ServiceDefinition;
const implementation = {
  Check(_call: unknown, callback: sendUnaryData<unknown>) {
    callback(null, { decision: 'EFFECT_ALLOW', allowed: true });
  },
};
const host = new GrpcHost([{ name: AUTHORIZATION_SERVICE, definition, implementation }], DEFAULT_CONFIG.limits, [], { transport: DEFAULT_CONFIG.transport, onLimit: () => undefined });
const port = await host.bind('127.0.0.1:0');
const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
process.on('message', (m: { op: 'major' | 'minor' }) => {
  // after the close events of the streams just answered (they come a moment after the answers)
  setTimeout(() => {
    if (m.op === 'major') gc({ type: 'major' });
    else {
      gc({ type: 'minor' });
      gc({ type: 'minor' });
    }
    process.send!({ oldSpaceUsed: oldSpaceUsed() });
  }, 20);
});
process.on('disconnect', () => void host.shutdown(100).then(() => process.exit(0)));
process.send!({ port });
