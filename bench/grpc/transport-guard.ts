/**
 * In-process microbenchmark of the transport guard's cost per call (src/grpc/transport-guard.ts):
 * the same stream lifecycle (open, one 300-byte message, end, close) on an EventEmitter standing in
 * for an HTTP/2 stream, with grpc-js's own listeners, without and with the guard. Alternates the two
 * and prints the median ns per call of each and the difference.
 *
 *   node dist/bench/grpc/transport-guard.js [--rounds 9] [--calls 200000]
 */
import { EventEmitter } from 'node:events';
import type { Http2Server } from 'node:http2';
import type { ServerInterceptingCall } from '@grpc/grpc-js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { TransportGuard } from '../../src/grpc/transport-guard.js';
import { parseFlags } from '../util.js';

const flags = parseFlags(process.argv.slice(2));
const rounds = flags.int('rounds', 9);
const calls = flags.int('calls', 200_000);

const guard = new TransportGuard(DEFAULT_CONFIG.transport, DEFAULT_CONFIG.limits.maxMessageBytes, () => false, () => undefined);
const server = new EventEmitter();
guard.attach(server as unknown as Http2Server);
const message = Buffer.alloc(305, 1);
message[0] = 0;
message.writeUInt32BE(300, 1);
const headers = { ':path': '/verdict.v1.Authorization/Check' };
const noop = () => undefined;

function call(withGuard: boolean): void {
  const stream = Object.assign(new EventEmitter(), { closed: false, destroyed: false });
  // what grpc-js attaches to every stream
  stream.on('data', noop);
  stream.once('end', noop);
  stream.once('close', noop);
  if (withGuard) {
    server.emit('stream', stream, headers);
    guard.interceptor({} as never, {} as never) as ServerInterceptingCall;
  }
  stream.emit('data', message);
  stream.emit('end');
  stream.emit('close');
}

function nsPerCall(withGuard: boolean): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) call(withGuard);
  return Number(process.hrtime.bigint() - t0) / calls;
}

for (let i = 0; i < calls / 4; i++) call(i % 2 === 0);
const without: number[] = [];
const withIt: number[] = [];
for (let r = 0; r < rounds; r++) {
  without.push(nsPerCall(false));
  withIt.push(nsPerCall(true));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const a = median(without);
const b = median(withIt);
console.log(`stream lifecycle without guard ${a.toFixed(0)} ns, with guard ${b.toFixed(0)} ns: +${(b - a).toFixed(0)} ns per call (medians of ${rounds} rounds × ${calls} calls)`);
guard.close();
