/**
 * What metrics and tracing add to a decision, in process (no gRPC, no other process competing for
 * the measurement): DecisionService.check on the example policies and requests, as the gRPC
 * adapter calls it, with
 *   - no hooks (as before observability existed, and as `verdict serve` runs without --admin and OTEL_*),
 *   - the metrics observer (--admin),
 *   - a tracer on OpenTelemetry's SDK sampling every call into a BatchSpanProcessor whose exporter discards.
 * The variants alternate in rounds of `--ms` each, `--rounds` times; medians are printed.
 *
 *   node dist/bench/observability/hot-path.js [--rounds 9] [--ms 400]
 */
import path from 'node:path';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { DecisionMetrics } from '../../src/observability/decision-metrics.js';
import { OtelDecisionTracer } from '../../src/observability/otel-tracer.js';
import { PolicyStore } from '../../src/server/policy-store.js';
import type { DecisionHooks } from '../../src/service/decision-hooks.js';
import { DISCARDING_SINK } from '../../src/service/decision-record.js';
import { DecisionService } from '../../src/service/decision-service.js';
import { ROOT, fmtNum, median, parseFlags } from '../util.js';
import { exampleRequests } from '../workloads.js';

class DiscardingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const rounds = flags.int('rounds', 9);
  const ms = flags.num('ms', 400);
  const store = PolicyStore.forDirectory(path.join(ROOT, 'policies'));
  const loaded = await store.start();
  if (loaded.result.status !== 'applied') throw new Error('policies/ did not load');
  const requests = exampleRequests();
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new DiscardingExporter(), { maxQueueSize: 1 << 16 })] });
  const variants: { name: string; hooks: DecisionHooks }[] = [
    { name: 'no hooks (metrics and tracing off)', hooks: {} },
    { name: 'metrics (--admin)', hooks: { observer: new DecisionMetrics() } },
    { name: 'tracing (every call sampled)', hooks: { tracer: new OtelDecisionTracer(provider.getTracer('bench')) } },
  ];
  const services = variants.map((v) => new DecisionService(store, DISCARDING_SINK, undefined, v.hooks));
  const results: number[][] = variants.map(() => []);

  // What the gRPC adapter does per Check: take the time it received the call, decide, answer.
  async function run(service: DecisionService, untilMs: number): Promise<number> {
    let n = 0;
    const end = performance.now() + untilMs;
    while (performance.now() < end) {
      for (let i = 0; i < 64; i++) {
        const receivedAt = service.timed ? performance.now() : 0;
        await service.check(requests[(n + i) % requests.length]!, { explain: false, requestId: '', source: 'check', receivedAt, trace: undefined });
      }
      n += 64;
    }
    return n;
  }

  for (const s of services) await run(s, 300); // warm-up
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? services.map((_, i) => i) : services.map((_, i) => services.length - 1 - i);
    for (const i of order) {
      const t = performance.now();
      const n = await run(services[i]!, ms);
      results[i]!.push(((performance.now() - t) * 1e6) / n);
    }
  }
  const base = median(results[0]!);
  process.stdout.write(`DecisionService.check, example policies, ${rounds} alternating rounds of ${ms} ms, medians (ns per check):\n\n| variant | ns/check | vs no hooks |\n|---|---|---|\n`);
  variants.forEach((v, i) => {
    const m = median(results[i]!);
    process.stdout.write(`| ${v.name} | ${fmtNum(m, 0)} | ${i === 0 ? '' : `${m >= base ? '+' : '−'}${fmtNum(Math.abs(m - base), 0)} ns (${m >= base ? '+' : '−'}${fmtNum((Math.abs(m - base) / base) * 100, 1)} %)`} |\n`);
  });

  // The metrics observer alone, per Check-sized call: one decision, one latency observation.
  const observer = new DecisionMetrics();
  const records = [{ evaluationNs: 4000 }] as unknown as Parameters<DecisionMetrics['answered']>[1];
  const outcomes = [{ decisionId: '', decision: { effect: 'ALLOW', reason: 'RULE_ALLOW', policy: '', rule: '', revision: '', errors: [] } }] as unknown as Parameters<DecisionMetrics['answered']>[2];
  const perCall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const n = 1_000_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) observer.answered('check', records, outcomes, true, t);
    perCall.push(((performance.now() - t) * 1e6) / n);
  }
  process.stdout.write(`\nDecisionMetrics.answered alone (one decision, one latency observation): ${fmtNum(median(perCall), 0)} ns per call (median of ${rounds} × 1,000,000)\n`);
  await provider.shutdown();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
