/**
 * What issue 11's attack costs now: the worst policy that loads under the default limits and the
 * largest request they allow (bench/attack/worst-case.ts), against a real `verdict serve` (one
 * process, events off), next to a cheap Check on the same server.
 *
 *  - in process: CPU of one decision (engine only), attack vs cheap;
 *  - over gRPC: server CPU per attack decision and per cheap Check (from /proc), the server's peak
 *    RSS growth, and the latency of cheap Checks while attacks arrive at --rate per second.
 *
 *   node dist/bench/attack/run.js [--attacks 30] [--rate 10] [--seconds 10] [--json]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decideMetered } from '../../src/engine/index.js';
import { parseCheckRequest } from '../../src/engine/input.js';
import { createAuthorizationClient, toProtoCheckRequest, type JsonCheckRequest } from '../../src/grpc/client.js';
import { loadProtoDefinition } from '../../src/grpc/proto.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { cpuMicros, peakRssBytes, resetPeakRss, rssBytes } from '../grpc/proc.js';
import { freePort } from '../servers.js';
import { fmtMs, fmtNum, median, parseFlags, ROOT } from '../util.js';
import { attackRequest, cheapRequest, CHEAP_POLICY, WORST_POLICY } from './worst-case.js';

type Client = ReturnType<typeof createAuthorizationClient>;
type Method = { requestSerialize(v: unknown): Buffer; responseDeserialize(b: Buffer): unknown };

const CHECK = (loadProtoDefinition()['verdict.v1.Authorization'] as Record<string, Method>).Check!;

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

function rawCheck(client: Client, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest('/verdict.v1.Authorization/Check', (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 30_000 }, (err, res) =>
      err ? reject(err) : resolve(res!),
    );
  });
}

/** Engine CPU per decision, in process (medians over `n` decisions each). */
function inProcess(n: number) {
  const set = compilePolicySet([
    { path: 'doc.yaml', text: WORST_POLICY },
    { path: 'note.yaml', text: CHEAP_POLICY },
  ]);
  const attack = parseCheckRequest(attackRequest());
  const cheap = parseCheckRequest(cheapRequest());
  const cpuOf = (req: typeof attack, reps: number) => {
    const samples: number[] = [];
    let cost = 0;
    for (let i = 0; i < reps; i++) {
      const before = process.cpuUsage();
      for (let j = 0; j < (req === cheap ? 1000 : 1); j++) cost = decideMetered(set, req, { now: new Date() }).cost;
      const used = process.cpuUsage(before);
      samples.push((used.user + used.system) / 1000 / (req === cheap ? 1000 : 1));
    }
    return { first: samples[0]!, median: median(samples.slice(1)), cost };
  };
  return { attack: cpuOf(attack, n), cheap: cpuOf(cheap, 20) };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const attacks = flags.int('attacks', 30);
  const rate = flags.num('rate', 10);
  const seconds = flags.num('seconds', 10);

  const engine = inProcess(attacks);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-attack-'));
  writeFileSync(path.join(dir, 'doc.yaml'), WORST_POLICY);
  writeFileSync(path.join(dir, 'note.yaml'), CHEAP_POLICY);
  const port = await freePort();
  const server = spawn(process.execPath, [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', dir, '--listen', `127.0.0.1:${port}`, '--no-events', '--workers', '1', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pid = server.pid!;
  const address = `127.0.0.1:${port}`;
  const attacker = createAuthorizationClient(address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
  const bystander = createAuthorizationClient(address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
  const attackBytes = CHECK.requestSerialize(toProtoCheckRequest(attackRequest() as JsonCheckRequest));
  const cheapBytes = CHECK.requestSerialize(toProtoCheckRequest(cheapRequest() as JsonCheckRequest));
  try {
    for (let i = 0; ; i++) {
      try {
        await rawCheck(bystander, cheapBytes);
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Cheap Checks: server CPU per call.
    for (let i = 0; i < 200; i++) await rawCheck(bystander, cheapBytes);
    let cpu = cpuMicros(pid);
    for (let i = 0; i < 2000; i++) await rawCheck(bystander, cheapBytes);
    const cheapCpuMs = (cpuMicros(pid) - cpu) / 1000 / 2000;

    // Attacks one at a time: server CPU per decision, peak RSS growth.
    const rssBefore = rssBytes(pid);
    resetPeakRss(pid);
    const perAttack: number[] = [];
    let firstAttackMs = 0;
    for (let i = 0; i < attacks; i++) {
      cpu = cpuMicros(pid);
      const res = CHECK.responseDeserialize(await rawCheck(attacker, attackBytes)) as { decision?: string; errors?: { message?: string }[] };
      const ms = (cpuMicros(pid) - cpu) / 1000;
      if (i === 0) firstAttackMs = ms;
      perAttack.push(ms);
      if (res.decision !== 'EFFECT_DENY' || !/^cost limit exceeded/.test(res.errors?.[0]?.message ?? '')) throw new Error(`unexpected answer to the attack: ${JSON.stringify(res).slice(0, 300)}`);
    }
    const rssGrowthMb = (Math.max(peakRssBytes(pid), rssBytes(pid)) - rssBefore) / 2 ** 20;

    // Sustained: attacks at `rate`/s, cheap Checks back to back (20 ms apart) on another connection.
    const cheapLatency: number[] = [];
    const inFlight: Promise<unknown>[] = [];
    const timer = setInterval(() => inFlight.push(rawCheck(attacker, attackBytes)), 1000 / rate);
    const end = Date.now() + seconds * 1000;
    cpu = cpuMicros(pid);
    while (Date.now() < end) {
      const start = performance.now();
      await rawCheck(bystander, cheapBytes);
      cheapLatency.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 20));
    }
    clearInterval(timer);
    await Promise.all(inFlight);
    const sustainedCpuShare = (cpuMicros(pid) - cpu) / 1e6 / seconds;

    const result = {
      engine: {
        attackMs: engine.attack.median,
        attackFirstMs: engine.attack.first,
        attackCostUnits: engine.attack.cost,
        cheapMicros: engine.cheap.median * 1000,
      },
      server: {
        cheapCheckCpuMs: cheapCpuMs,
        attackCpuMs: { mean: perAttack.reduce((a, b) => a + b, 0) / perAttack.length, median: median(perAttack), max: Math.max(...perAttack), first: firstAttackMs },
        rssGrowthMb,
        sustained: { attacks: inFlight.length, seconds, cheapChecks: cheapLatency.length, p50: percentile(cheapLatency, 50), p99: percentile(cheapLatency, 99), max: Math.max(...cheapLatency), serverCpuShare: sustainedCpuShare },
      },
    };
    if (flags.bool('json')) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    const s = result.server;
    console.log('Attack (worst policy that loads, largest request) vs a cheap Check, default limits; one server process, events off.\n');
    console.log('| | attack | cheap Check |');
    console.log('|---|---:|---:|');
    console.log(`| engine CPU per decision, in process (median) | ${fmtNum(result.engine.attackMs, 1)} ms (first: ${fmtNum(result.engine.attackFirstMs, 1)} ms) | ${fmtNum(result.engine.cheapMicros, 1)} µs |`);
    console.log(`| cost units per decision | ${result.engine.attackCostUnits.toLocaleString('en-US')} (the budget) | |`);
    console.log(`| server CPU per call over gRPC (10 ms ticks) | mean ${fmtNum(s.attackCpuMs.mean, 1)} ms, median ${fmtNum(s.attackCpuMs.median, 0)}, max ${fmtNum(s.attackCpuMs.max, 0)} (first ${fmtNum(s.attackCpuMs.first, 0)}) | ${fmtNum(s.cheapCheckCpuMs * 1000, 0)} µs |`);
    console.log(`| server peak RSS growth over ${attacks} attacks | ${fmtNum(s.rssGrowthMb, 1)} MB | |`);
    console.log(
      `| ${rate} attacks/s for ${seconds} s: cheap Check latency | | p50 ${fmtMs(s.sustained.p50)} ms, p99 ${fmtMs(s.sustained.p99)} ms, max ${fmtMs(s.sustained.max)} ms (${s.sustained.cheapChecks} calls; server at ${fmtNum(s.sustained.serverCpuShare * 100, 0)}% of a core) |`,
    );
  } finally {
    attacker.close();
    bystander.close();
    server.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
