/**
 * In-process microbenchmark of the server's Check/CheckBatch codec: proto-loader (protobufjs
 * decode + toObject, then structToAttributes and translation) against the hand-written wire codec
 * (src/grpc/wire), on the load generator's own request messages (bench/grpc/protocols.ts), and the
 * response encoding. Prints µs per call, medians of several rounds, and the ratio.
 *
 *   node dist/bench/grpc/codec.js [--workload example|large] [--rounds 9]
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { loadProtoDefinition } from '../../src/grpc/proto.js';
import { toBatchRequests, toCheckRequest, type ProtoCheckBatchRequest, type ProtoCheckRequest, type ProtoCheckResponse } from '../../src/grpc/translate.js';
import { decodeCheckBatchRequest, decodeCheckRequest } from '../../src/grpc/wire/verdict-requests.js';
import { encodeCheckBatchResponse, encodeCheckResponse } from '../../src/grpc/wire/verdict-responses.js';
import type { WorkloadName } from '../workloads.js';
import { protocol } from './protocols.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const workload = flag('workload', 'example') as WorkloadName;
const rounds = Number(flag('rounds', '9'));
const limits = DEFAULT_CONFIG.limits;

type Method = MethodDefinition<unknown, unknown>;
const service = loadProtoDefinition()['verdict.v1.Authorization'] as ServiceDefinition;
const check = service.Check as Method;
const batch = service.CheckBatch as Method;
const verdict = protocol('verdict.v1');

/** Median µs per call of `fn` over `inputs`, each round long enough to be timed reliably. */
function measure<T>(inputs: readonly T[], fn: (input: T) => unknown): number {
  let sink = 0;
  const perRound: number[] = [];
  let calls = inputs.length;
  // Warm up, and size a round to at least ~200 ms.
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) if (fn(inputs[i % inputs.length]!)) sink++;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > 200) break;
    calls *= 2;
  }
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) if (fn(inputs[i % inputs.length]!)) sink++;
    perRound.push(Number(process.hrtime.bigint() - t0) / 1e3 / calls);
  }
  if (sink < 0) console.log(sink);
  perRound.sort((a, b) => a - b);
  return perRound[Math.floor(perRound.length / 2)]!;
}

function row(label: string, protoLoaderUs: number, wireUs: number, perItem = 0): void {
  const items = perItem ? `   per item: ${(protoLoaderUs / perItem).toFixed(2)} → ${(wireUs / perItem).toFixed(2)} µs` : '';
  console.log(`${label.padEnd(34)} proto-loader ${protoLoaderUs.toFixed(2).padStart(7)} µs   wire codec ${wireUs.toFixed(2).padStart(7)} µs   ×${(protoLoaderUs / wireUs).toFixed(2)}${items}`);
}

const checkBytes = verdict.messages(workload, 'Check').map((m) => check.requestSerialize(m));
const batchBytes = verdict.messages(workload, 'CheckBatch').map((m) => batch.requestSerialize(m));
const itemsPerBatch = verdict.checksPerCall(workload, 'CheckBatch');

// Responses like the handlers build: a decided Check, and a batch of as many results as items.
const response = (i: number): ProtoCheckResponse => ({
  decision: i % 3 ? 'EFFECT_ALLOW' : 'EFFECT_DENY',
  allowed: i % 3 !== 0,
  policy: i % 3 ? 'documents/document.yaml' : '',
  rule: i % 3 ? 'department-reads-published' : '',
  reason: i % 3 ? 'RULE_ALLOW' : 'NO_MATCHING_RULE',
  revision: 'sha256:6f1c0d2e9a7b4c3d',
  decisionId: `0190f4c2-7b7e-7c1a-9d3e-${String(100000000000 + i)}`,
});
const checkResponses = Array.from({ length: 12 }, (_, i) => response(i));
const batchResponses = Array.from({ length: 4 }, (_, b) => ({ results: Array.from({ length: itemsPerBatch }, (_, i) => response(b * 100 + i)), revision: 'sha256:6f1c0d2e9a7b4c3d' }));

console.log(`workload ${workload}: Check ${checkBytes.length} messages (~${Math.round(checkBytes.reduce((s, b) => s + b.length, 0) / checkBytes.length)} bytes), CheckBatch ${batchBytes.length} × ${itemsPerBatch} items (~${Math.round(batchBytes.reduce((s, b) => s + b.length, 0) / batchBytes.length)} bytes); median of ${rounds} rounds`);
row(
  'Check decode + translate',
  measure(checkBytes, (b) => toCheckRequest(check.requestDeserialize(b) as ProtoCheckRequest, limits)),
  measure(checkBytes, (b) => toCheckRequest(decodeCheckRequest(b), limits)),
);
row(
  'CheckBatch decode + translate',
  measure(batchBytes, (b) => toBatchRequests(batch.requestDeserialize(b) as ProtoCheckBatchRequest, limits)),
  measure(batchBytes, (b) => toBatchRequests(decodeCheckBatchRequest(b), limits)),
  itemsPerBatch,
);
row(
  'CheckResponse encode',
  measure(checkResponses, (r) => check.responseSerialize(r)),
  measure(checkResponses, (r) => encodeCheckResponse(r)),
);
row(
  `CheckBatchResponse encode (${itemsPerBatch})`,
  measure(batchResponses, (r) => batch.responseSerialize(r)),
  measure(batchResponses, (r) => encodeCheckBatchResponse(r)),
  itemsPerBatch,
);
