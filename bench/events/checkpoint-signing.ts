/**
 * What signing costs: building a checkpoint with and without an Ed25519 signature (the publisher
 * thread does this once per events.checkpointIntervalMs), verifying one (the keeper and `verify`
 * do this per checkpoint), and the verifier's memory at its limits.
 *
 *   node --expose-gc dist/bench/events/checkpoint-signing.js [--reps 7] [--n 5000] [--publisher nats://127.0.0.1:4222]
 *
 * Prints medians of `reps` alternating runs (with / without a signature) of `n` checkpoints each.
 * With --publisher, also the real DecisionPublisher against that NATS, signing on and off
 * alternately (--events per run at --rate decisions/s): process CPU per event, medians.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ChainVerifier, checkpointSignature, VERIFIER_LIMITS } from '../../src/audit/verifier.js';
import { classifyRecord } from '../../src/audit/records.js';
import { HashChain } from '../../src/events/chain.js';
import { buildCheckpoint } from '../../src/events/checkpoint.js';
import { Keyring } from '../../src/keys/keyring.js';
import { generateSigningKey } from '../../src/keys/signing-key.js';
import { stringify } from 'yaml';
import { connect } from 'nats';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { DecisionPublisher } from '../../src/events/publisher.js';
import { createLogger } from '../../src/server/logger.js';
import { newDecisionId } from '../../src/service/ids.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const reps = arg('reps', 7);
const publisherUrl = (() => {
  const i = process.argv.indexOf('--publisher');
  return i === -1 ? undefined : process.argv[i + 1];
})();
const n = arg('n', 5000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-bench-sign-'));
try {
  const key = generateSigningKey();
  const keyFile = path.join(dir, 'k.pem');
  writeFileSync(keyFile, key.privatePem, { mode: 0o600 });
  const signed = { instanceId: 'bench-1', signingKeyFile: keyFile };
  const unsigned = { instanceId: 'bench-1', signingKeyFile: '' };
  const head = (i: number) => ({ chain: 'bench-1/0190a1b2-c3d4-7000-8000-000000000000', seq: i, hash: 'ab'.repeat(32), final: false });
  buildCheckpoint(signed, head(1)); // load the key once, as the publisher does

  const withSig: number[] = [];
  const without: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (const [config, out] of [[signed, withSig], [unsigned, without]] as const) {
      const t0 = performance.now();
      for (let i = 1; i <= n; i++) JSON.stringify(buildCheckpoint(config, head(i)));
      out.push(((performance.now() - t0) * 1000) / n);
    }
  }

  const ring = Keyring.parse(stringify({ keys: [{ id: key.id, instances: ['bench-*'], publicKey: key.publicPem }] }), 'bench');
  const samples = Array.from({ length: n }, (_, i) => classifyRecord(JSON.parse(JSON.stringify(buildCheckpoint(signed, head(i + 1))))));
  const verifyUs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (const c of samples) if (c.type !== 'checkpoint' || checkpointSignature(ring, c.checkpoint, c.record).state !== 'valid') throw new Error('bad sample');
    verifyUs.push(((performance.now() - t0) * 1000) / n);
  }

  console.log(`checkpoint build + JSON, median of ${reps} × ${n}: signed ${median(withSig).toFixed(1)} µs, unsigned ${median(without).toFixed(1)} µs → signing adds ${(median(withSig) - median(without)).toFixed(1)} µs per checkpoint`);
  console.log(`checkpoint signature check (keyring lookup + Ed25519 verify), median: ${median(verifyUs).toFixed(1)} µs`);
  console.log(`at the default 10 checkpoints/s per instance: ${((median(withSig) - median(without)) * 10 / 1000).toFixed(2)} ms of publisher-thread CPU per second`);

  // The verifier at its limits: maxChains chains, each with recentPerChain remembered hashes.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    const before = process.memoryUsage().heapUsed;
    const v = new ChainVerifier({ anchorUnknownChains: true, keepFindings: 0 });
    for (let c = 0; c < VERIFIER_LIMITS.maxChains; c++) {
      const chain = new HashChain(`mem-${c}`, `boot-${c}`);
      for (let i = 0; i < VERIFIER_LIMITS.recentPerChain + 8; i++) {
        const e = chain.append({ action: 'read', caller: { id: '', kind: 'anonymous' }, decision: 'ALLOW', evaluationUs: 1, id: `id-${c}-${i}`, instance: `mem-${c}`, policy: '', reason: 'RULE_ALLOW', requestId: '', resource: { id: 'r', type: 't' }, revision: 'x', rule: '', schema: 'verdict.decision.v1', source: 'check', subject: { id: 's', roles: [], type: 'user' }, time: '2026-01-01T00:00:00.000Z' });
        v.accept(JSON.parse(e.payload), 'x');
      }
    }
    gc();
    const after = process.memoryUsage().heapUsed;
    const size = v.size();
    console.log(`verifier at its limits (${size.chains} chains, ${size.recent} recent hashes): ${((after - before) / 1024 / 1024).toFixed(1)} MB of heap`);
  } else {
    console.log('(run with node --expose-gc to measure the verifier\'s memory at its limits)');
  }
  if (publisherUrl) {
    const events = arg('events', 40_000);
    const rate = arg('rate', 8000);
    const runs: Record<'signed' | 'unsigned', number[]> = { signed: [], unsigned: [] };
    await publisherRun(publisherUrl, '', events, rate); // warm-up, not counted
    for (let r = 0; r < reps; r++) {
      // ABBA order, so neither mode always runs first.
      const order = r % 2 === 0 ? (['signed', 'unsigned'] as const) : (['unsigned', 'signed'] as const);
      for (const mode of order) runs[mode].push(await publisherRun(publisherUrl, mode === 'signed' ? keyFile : '', events, rate));
    }
    console.log(`DecisionPublisher CPU per event (${events} events at ${rate}/s, median of ${runs.signed.length} alternating runs): signed checkpoints ${median(runs.signed).toFixed(2)} µs, unsigned ${median(runs.unsigned).toFixed(2)} µs`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** One run of the real publisher: process CPU (user + system) per event. */
async function publisherRun(natsUrl: string, signingKeyFile: string, total: number, rate: number): Promise<number> {
  const tag = Math.random().toString(36).slice(2, 8);
  const spool = mkdtempSync(path.join(os.tmpdir(), 'verdict-bench-spool-'));
  const config = { ...DEFAULT_CONFIG.events, natsUrl, stream: `VBENCH_${tag}`, subjectPrefix: `vbench.${tag}`, spoolDir: spool, instanceId: `bench-${tag}`, signingKeyFile, headsBucket: '' };
  const publisher = new DecisionPublisher(config, createLogger('error'));
  await publisher.start();
  while (!publisher.snapshot().connected) await new Promise((r) => setTimeout(r, 20));
  const record = (i: number): DecisionRecord => {
    const now = new Date();
    return {
      decisionId: newDecisionId(now.getTime()), time: now, requestId: '', source: 'check', evaluationNs: 9000,
      request: { subject: { type: 'user', id: `user-${i % 100}`, roles: ['employee'], attributes: {} }, action: 'read', resource: { type: 'document', id: `doc-${i}`, attributes: {} }, context: {} },
      decision: { effect: 'ALLOW', reason: 'RULE_ALLOW', policy: 'documents/document.yaml', rule: 'owners-manage', revision: 'sha256:0123456789abcdef', errors: [] },
    };
  };
  const perMs = Math.max(1, Math.round(rate / 1000));
  const cpu0 = process.cpuUsage();
  let i = 0;
  while (i < total) {
    for (let k = 0; k < perMs && i < total; k++) publisher.record(record(i++));
    await new Promise((r) => setTimeout(r, 1));
  }
  while (publisher.snapshot().published < total) await new Promise((r) => setTimeout(r, 10));
  const cpu = process.cpuUsage(cpu0);
  await publisher.close();
  const nc = await connect({ servers: natsUrl });
  await (await nc.jetstreamManager()).streams.delete(config.stream).catch(() => undefined);
  await nc.close();
  rmSync(spool, { recursive: true, force: true });
  return (cpu.user + cpu.system) / total;
}
