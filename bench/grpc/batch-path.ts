/**
 * The server's Check/CheckBatch path in process, without the transport: wire bytes → decoder →
 * translation and validation → DecisionService.checkMany → response encoding, on the load
 * generator's own requests (bench/grpc/protocols.ts), with decisions discarded as with --no-events.
 * Prints CPU µs per check (median of rounds) and, with --alloc, bytes allocated per check (it
 * re-runs itself under --trace-gc-nvp and sums what the scavenges report). --root DIR runs another
 * built checkout's modules (e.g. BENCH_BASELINE_DIR) on the same requests, for A/B runs.
 *
 *   node dist/bench/grpc/batch-path.js [--root DIR] [--policies DIR] [--method CheckBatch|Check] [--seconds 3] [--alloc]
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocol } from './protocols.js';
import { parseFlags, ROOT } from '../util.js';

const flags = parseFlags(process.argv.slice(2), ['alloc', 'markers']);
const root = path.resolve(flags.str('root', ROOT));
const policies = path.resolve(flags.str('policies', path.join(ROOT, 'policies')));
const method = flags.str('method', 'CheckBatch') as 'Check' | 'CheckBatch';
const seconds = flags.num('seconds', 3);

if (flags.bool('alloc')) {
  const args = process.argv.slice(2).filter((a) => a !== '--alloc');
  const child = spawnSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), ...args, '--markers'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  let on = false;
  let bytes = 0;
  let checks = 0;
  for (const line of child.stdout.split('\n')) {
    if (line.startsWith('MEASURE START')) on = true;
    else if (line.startsWith('MEASURE END')) {
      on = false;
      checks = Number(line.split(' ')[2]);
    } else if (on) bytes += Number(/allocated=(\d+)/.exec(line)?.[1] ?? 0);
    else if (!line.includes('pause=') && line.trim() !== '') process.stdout.write(`${line}\n`);
  }
  process.stdout.write(`${root} ${method}: ${checks > 0 ? Math.round(bytes / checks) : '?'} bytes allocated per check (scavenges in the measured window)\n`);
  process.exit(child.status ?? 1);
}

type Module = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (p: string): Promise<Module> => import(path.join(root, 'dist', p)) as Promise<Module>;
const { loadPolicyDirectory } = await load('src/policy/index.js');
const { DecisionService } = await load('src/service/decision-service.js');
const { DISCARDING_SINK } = await load('src/service/decision-record.js');
const { DEFAULT_CONFIG } = await load('src/config/load.js');
const translate = await load('src/grpc/translate.js');
const requests = await load('src/grpc/wire/verdict-requests.js');
const responses = await load('src/grpc/wire/verdict-responses.js');

const set = await loadPolicyDirectory(policies);
const live = { set, loadedAt: new Date(), files: [] };
const store = { sourceName: policies, current: () => live, lastFailure: () => undefined };
const limits = DEFAULT_CONFIG.limits;
// The base's DecisionService takes (store, sink); later ones also (costs, hooks, counters).
const service = new DecisionService(store, DISCARDING_SINK, limits, {}, undefined);
const verdict = protocol('verdict.v1');
const encoded = verdict.messages('example', method).map((m) => verdict.method(method).encode(m));
const perCall = verdict.checksPerCall('example', method);
const options = (requestId: string, source: string) => ({ explain: false, requestId, source, abandoned: () => false, receivedAt: 0, trace: undefined });

let next = 0;
async function call(): Promise<Buffer> {
  const bytes = encoded[next++ % encoded.length]!;
  if (method === 'CheckBatch') {
    const msg = requests.decodeCheckBatchRequest(bytes);
    const outcomes = await service.checkMany(translate.toBatchRequests(msg, limits), options(msg.requestId ?? '', 'check_batch'));
    return responses.encodeCheckBatchResponse({ results: outcomes.map((o: Module) => translate.toCheckResponse(o.decisionId, o.decision)), revision: outcomes[0]?.decision.revision ?? '' });
  }
  const msg = requests.decodeCheckRequest(bytes);
  const o = await service.check(translate.toCheckRequest(msg, limits), options(msg.requestId ?? '', 'check'));
  return responses.encodeCheckResponse(translate.toCheckResponse(o.decisionId, o.decision));
}

for (let i = 0; i < 3000; i++) await call();
const markers = flags.bool('markers');
if (markers) process.stdout.write('MEASURE START\n');
const rounds: number[] = [];
let checks = 0;
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  const before = process.cpuUsage();
  for (let i = 0; i < 500; i++) await call();
  const used = process.cpuUsage(before);
  rounds.push((used.user + used.system) / (500 * perCall));
  checks += 500 * perCall;
}
if (markers) process.stdout.write(`MEASURE END ${checks}\n`);
rounds.sort((a, b) => a - b);
process.stdout.write(`${root} ${method}: ${rounds[rounds.length >> 1]!.toFixed(2)} µs CPU per check (median of ${rounds.length} rounds of 500 calls; fastest ${rounds[0]!.toFixed(2)})\n`);
