/**
 * CPU cost of the decision stream per event, in process: N decisions are recorded through the
 * real DecisionPublisher against a real NATS JetStream, and the process CPU time (user + system)
 * is divided by N. Compare with the server CPU per gRPC call (bench/run.ts) to see the share of
 * the decision stream. Usage: node dist/bench/events/publisher-cost.js [--nats URL] [--events N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { DecisionPublisher } from '../../src/events/publisher.js';
import { createLogger } from '../../src/server/logger.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { newDecisionId } from '../../src/service/ids.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const natsUrl = arg('nats', process.env.VERDICT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222');
const total = Number(arg('events', '200000'));
const rate = Number(arg('rate', '8000')); // decisions per second offered, like a loaded server

async function main(): Promise<void> {
  const tag = Math.random().toString(36).slice(2, 8);
  const spool = mkdtempSync(path.join(os.tmpdir(), 'verdict-bench-spool-'));
  const config = { ...DEFAULT_CONFIG.events, natsUrl, stream: `VBENCH_${tag}`, subjectPrefix: `vbench.${tag}`, spoolDir: spool, instanceId: `bench-${tag}` };
  const publisher = new DecisionPublisher(config, createLogger('warn'));
  await publisher.start();
  while (!publisher.snapshot().connected) await new Promise((r) => setTimeout(r, 20));
  const record = (i: number): DecisionRecord => {
    const now = new Date();
    return {
      decisionId: newDecisionId(now.getTime()),
      time: now,
      requestId: '',
      source: 'check',
      evaluationNs: 9000,
      request: {
        subject: { type: 'user', id: `user-${i % 100}`, roles: ['employee'], attributes: { department: 'engineering', clearance: 2 } },
        action: 'read',
        resource: { type: 'document', id: `doc-${i}`, attributes: { owner: 'alice', classification: 1 } },
        context: { ip: '10.0.0.1' },
      },
      decision: { effect: i % 5 === 0 ? 'DENY' : 'ALLOW', reason: 'RULE_ALLOW', policy: 'documents/document.yaml', rule: 'owners-manage', revision: 'sha256:0123456789abcdef', errors: [] },
    };
  };
  // Offer decisions in slices of 1 ms worth, like a server answering calls, so flushes group as they would.
  const perMs = Math.max(1, Math.round(rate / 1000));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    for (let k = 0; k < perMs && i < total; k++) publisher.record(record(i++));
    await new Promise((r) => setTimeout(r, 1));
  }
  while (publisher.snapshot().published < total) await new Promise((r) => setTimeout(r, 10));
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const stats = publisher.snapshot();
  await publisher.close();
  const nc = await connect({ servers: natsUrl });
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(config.stream);
  await jsm.streams.delete(config.stream);
  await nc.close();
  rmSync(spool, { recursive: true, force: true });
  const us = (cpu.user + cpu.system) / total;
  console.log(`events: ${total} in ${seconds.toFixed(1)} s; stored in stream: ${info.state.messages} messages (incl. checkpoints); checkpoints: ${stats.checkpoints}`);
  console.log(`publisher CPU per event: ${us.toFixed(2)} µs (user ${(cpu.user / total).toFixed(2)}, system ${(cpu.system / total).toFixed(2)})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
