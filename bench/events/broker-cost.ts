/**
 * nats-server's own CPU per JetStream message, by payload size and with or without the
 * Nats-Msg-Id header: publishes N core messages into a fresh file-storage stream (deny_delete,
 * deny_purge, like the decision stream), in slices like a loaded publisher, and charges the
 * nats-server process's CPU (from /proc, so NATS must run on this machine) over the run.
 *   node dist/bench/events/broker-cost.js [--nats nats://127.0.0.1:4222] [--messages 50000] [--rounds 2]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, headers, type NatsConnection } from 'nats';
import { parseFlags } from '../util.js';

const flags = parseFlags(process.argv.slice(2));
const natsUrl = flags.str('nats', process.env.VERDICT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222');
const total = flags.int('messages', 50_000);
const rounds = flags.int('rounds', 2);
const HZ = 100; // USER_HZ on Linux

function natsServerPid(): number {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-x', 'nats-server'], { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  } catch {
    // pgrep exits 1 when nothing matches.
  }
  if (!out) throw new Error('no nats-server process on this machine: the broker must run locally to be measured');
  return Number(out);
}

function ticks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function run(nc: NatsConnection, pid: number, name: string, size: number, msgId: boolean): Promise<void> {
  const jsm = await nc.jetstreamManager();
  const stream = `VBROKER_${Math.random().toString(36).slice(2, 8)}`;
  await jsm.streams.add({ name: stream, subjects: [`vbroker.${stream}.>`], deny_delete: true, deny_purge: true });
  try {
    const payload = Buffer.alloc(size, 'x');
    const t0 = ticks(pid);
    for (let i = 0; i < total; ) {
      for (let k = 0; k < 50 && i < total; k++, i++) {
        const h = msgId ? headers() : undefined;
        h?.set('Nats-Msg-Id', `${stream}-${i}`);
        nc.publish(`vbroker.${stream}.document.allow`, payload, h ? { headers: h } : undefined);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    // Its ack means every message published before it on this connection is stored.
    await nc.jetstream().publish(`vbroker.${stream}.end`, 'end');
    const t1 = ticks(pid);
    const stored = (await jsm.streams.info(stream)).state.messages;
    console.log(`${name.padEnd(28)} stored ${stored - 1}/${total}  nats-server ${(((t1 - t0) * 1e6) / HZ / total).toFixed(1)} µs CPU per message`);
  } finally {
    await jsm.streams.delete(stream);
  }
}

const pid = natsServerPid();
const nc = await connect({ servers: natsUrl });
for (let r = 0; r < rounds; r++) {
  await run(nc, pid, '700 B + Nats-Msg-Id', 700, true);
  await run(nc, pid, '700 B, no message id', 700, false);
  await run(nc, pid, '200 B + Nats-Msg-Id', 200, true);
  await run(nc, pid, '7,000 B + Nats-Msg-Id', 7000, true);
}
await nc.close();
