/**
 * The reload benchmark's latency probes, in a process of their own: cheap Checks every ~5 ms on a
 * few connections, each answer sent to the parent as a sample. Kept out of the benchmark's process
 * because that one writes the changes, hashes the set and keeps every sample, and its own pauses
 * (GC, hashing right after a rename) showed up as "slow Checks" that the server never caused.
 *
 * Protocol (IPC): parent → { address, connections, types }; child → { kind: 'opened', index,
 * decisionId } per connection, then { kind: 'sample', index, at, ms, revision } per answer (`at`:
 * monotonicNow(), the same clock in both processes); parent → 'stop' ends it.
 */
import { credentials } from '@grpc/grpc-js';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';

export interface ProbeSetup {
  readonly address: string;
  readonly connections: number;
  readonly types: readonly { readonly name: string; readonly department: string }[];
}

export type ProbeMessage = { kind: 'opened'; index: number; decisionId: string } | { kind: 'sample'; index: number; at: number; ms: number; revision: string };

/**
 * ms on the machine's monotonic clock (CLOCK_MONOTONIC, as process.hrtime), comparable across
 * processes. Not the wall clock: on this VM it was slewed by up to ~4 ms a second and once stepped
 * by 5 s between the start of the bench and of the probe process, which made every change look
 * 5 s late (performance.timeOrigin + performance.now() takes the wall clock at each process's start).
 */
export const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

export function probeRequest(types: ProbeSetup['types'], i: number): JsonCheckRequest {
  const type = types[i % types.length]!;
  return { subject: { id: 'u1', roles: ['employee'], attributes: { department: type.department } }, action: 'read', resource: { type: type.name, id: `r${i}`, attributes: { owner: 'u2' } }, context: { network: 'corp' } } as JsonCheckRequest;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(setup: ProbeSetup): Promise<void> {
  let stopped = false;
  process.on('message', (m) => {
    if (m === 'stop') stopped = true;
  });
  const send = (m: ProbeMessage) => process.send!(m);
  const clients = [];
  for (let index = 0; index < setup.connections; index++) {
    const client = createAuthorizationClient(setup.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const answer = await unary<{ decisionId: string }>(client, 'Check', toProtoCheckRequest(probeRequest(setup.types, index)), 5_000);
    send({ kind: 'opened', index, decisionId: answer.decisionId });
    clients.push(client);
  }
  await Promise.all(
    clients.map(async (client, index) => {
      let n = index;
      while (!stopped) {
        const at = monotonicNow();
        const started = performance.now();
        let revision = 'error';
        try {
          revision = (await unary<{ revision: string }>(client, 'Check', toProtoCheckRequest(probeRequest(setup.types, n++)), 5_000)).revision;
        } catch {
          // recorded as an error sample
        }
        send({ kind: 'sample', index, at, ms: performance.now() - started, revision });
        await sleep(5);
      }
    }),
  );
  for (const c of clients) c.close();
  process.disconnect();
}

if (process.send) process.once('message', (setup) => void run(setup as ProbeSetup));
