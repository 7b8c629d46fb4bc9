/**
 * The pieces of observability on their own: histogram buckets and bounded labels, the admin
 * listener's limits (shared scrapes, failures, connection cap), readiness while the policies load,
 * and the admin and OTEL_* settings.
 */
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.js';
import type { DecisionReason } from '../../src/engine/decision.js';
import { ADMIN_LIMITS, AdminServer, type Readiness } from '../../src/observability/admin-server.js';
import { DecisionMetrics } from '../../src/observability/decision-metrics.js';
import { CounterTable, HistogramTable, registerCollector } from '../../src/observability/metric-table.js';
import { Observability } from '../../src/observability/observability.js';
import { VerdictServer } from '../../src/server/app.js';
import { createLogger, type Logger } from '../../src/server/logger.js';
import { PolicyStore } from '../../src/server/policy-store.js';
import { DISCARDING_SINK, type DecisionRecord } from '../../src/service/decision-record.js';
import { DecisionService, type CheckOutcome } from '../../src/service/decision-service.js';
import { REPO_ROOT } from '../support/server-process.js';
import { http, Scrape } from './helpers.js';

function quietLogger(lines: Record<string, unknown>[] = []): Logger {
  return createLogger('info', new Writable({ write: (c: Buffer, _e, done) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), done()) }));
}

async function text(register: (r: Registry) => void): Promise<Scrape> {
  const registry = new Registry();
  register(registry);
  return new Scrape(await registry.metrics());
}

const outcome = (reason: string, effect: 'ALLOW' | 'DENY' = 'DENY') => ({ decisionId: 'x', decision: { effect, reason: reason as DecisionReason, policy: '', rule: '', revision: 'r', errors: [] } }) as CheckOutcome;
const record = (evaluationNs: number) => ({ evaluationNs }) as DecisionRecord;

describe('observability: metric tables', () => {
  it('puts a value on a bucket bound into that bucket (le), and exposes cumulative buckets, _sum and _count', async () => {
    const h = new HistogramTable('t_seconds', [0.001, 0.01], [{ api: 'a' }, { api: 'b' }]);
    h.observe(0, 0.001);
    h.observe(0, 0.0010001);
    h.observe(0, 5);
    const s = await text((r) => registerCollector(r, 't_seconds', 'test', 'histogram', () => h.samples()));
    expect(s.family('t_seconds')?.type).to.equal('HISTOGRAM');
    expect(s.samples('t_seconds_bucket', { api: 'a' }).map((m) => [m.labels!.le, Number(m.value)])).to.deep.equal([
      ['0.001', 1],
      ['0.01', 2],
      ['+Inf', 3],
    ]);
    expect(s.value('t_seconds_count', { api: 'a' })).to.equal(3);
    expect(s.value('t_seconds_sum', { api: 'a' })).to.be.closeTo(5.0020001, 1e-9);
    // A child never observed has no series.
    expect(s.samples('t_seconds_count', { api: 'b' })).to.have.length(0);
  });

  it('counts unknown APIs and reasons as "other", and bounds limit names', async () => {
    const m = new DecisionMetrics();
    m.answered('check', [record(2000)], [outcome('RULE_ALLOW', 'ALLOW')], true, performance.now() - 1);
    m.answered('grpc-web', [record(1000), record(1000)], [outcome('RULE_DENY'), outcome('SOMETHING_NEW')], true, 0);
    m.answered('ext_authz', [record(0)], [outcome('UNAUTHENTICATED')], false, performance.now());
    for (let i = 0; i < 40; i++) m.refused(`rate.limit_${i}`, 'check');
    m.refused('Bad Name!', 'nope');
    const s = await text((r) => m.register(r));
    expect(s.value('verdict_decisions_total', { source: 'check', effect: 'allow', reason: 'RULE_ALLOW' })).to.equal(1);
    expect(s.value('verdict_decisions_total', { source: 'other', effect: 'deny', reason: 'RULE_DENY' })).to.equal(1);
    expect(s.value('verdict_decisions_total', { source: 'other', effect: 'deny', reason: 'other' })).to.equal(1);
    expect(s.value('verdict_decisions_total', { source: 'ext_authz', reason: 'UNAUTHENTICATED' })).to.equal(1);
    // Evaluations only where the engine ran; latency only where the adapter gave the time it received the call.
    expect(s.count('verdict_evaluation_duration_seconds')).to.equal(3);
    expect(s.count('verdict_decision_duration_seconds', { source: 'check' })).to.equal(1);
    expect(s.count('verdict_decision_duration_seconds', { source: 'other' })).to.equal(0);
    const limits = new Set(s.samples('verdict_requests_refused_total').map((x) => x.labels!.limit));
    expect(limits.size).to.equal(33);
    expect(s.value('verdict_requests_refused_total', { limit: 'other' })).to.equal(9);
    expect(s.value('verdict_requests_refused_total', { limit: 'other', source: 'other' })).to.equal(1);
  });

  it('counts what a limit refuses through the decision service hook (DecisionService.refusedByLimit)', async () => {
    const m = new DecisionMetrics();
    const service = new DecisionService(PolicyStore.forDirectory(REPO_ROOT), DISCARDING_SINK, undefined, { observer: m });
    expect(service.timed).to.equal(true);
    service.refusedByLimit('rate.per_caller', 'check');
    service.refusedByLimit('rate.per_caller', 'check');
    const s = await text((r) => m.register(r));
    expect(s.samples('verdict_requests_refused_total').map((x) => [x.labels, Number(x.value)])).to.deep.equal([[{ limit: 'rate.per_caller', source: 'check' }, 2]]);
    expect(new DecisionService(PolicyStore.forDirectory(REPO_ROOT), DISCARDING_SINK).timed).to.equal(false);
  });

  it('lists only the counters that moved', () => {
    const c = new CounterTable([{ a: '1' }, { a: '2' }]);
    c.inc(1, 2);
    expect(c.samples()).to.deep.equal([{ value: 2, labels: { a: '2' } }]);
  });
});

describe('observability: the admin listener', () => {
  let admin: AdminServer | undefined;
  afterEach(async () => {
    await admin?.close();
    admin = undefined;
  });

  it('shares one collection between concurrent scrapes, and answers 500 when collecting fails', async () => {
    let collections = 0;
    let fail = false;
    const lines: Record<string, unknown>[] = [];
    admin = new AdminServer(
      '127.0.0.1:0',
      {
        metrics: async () => {
          collections++;
          await new Promise((r) => setTimeout(r, 200));
          if (fail) throw new Error('publisher gone');
          return 'x_total 1\n';
        },
        readiness: async () => ({ ready: false, reason: 'testing' }),
      },
      quietLogger(lines),
    );
    const port = await admin.start();
    const answers = await Promise.all(Array.from({ length: 8 }, () => http(`127.0.0.1:${port}`, '/metrics')));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(8).fill(200));
    expect(collections).to.equal(1);
    fail = true;
    const failed = await http(`127.0.0.1:${port}`, '/metrics');
    expect(failed.status).to.equal(500);
    expect(lines.find((l) => l.msg === 'metrics could not be collected')).to.include({ err: 'publisher gone' });
    const notReady = await http(`127.0.0.1:${port}`, '/readyz');
    expect(notReady.status).to.equal(503);
    expect(JSON.parse(notReady.body)).to.deep.equal({ status: 'NOT_SERVING', ready: false, reason: 'testing' });
  });

  it(`holds at most ${ADMIN_LIMITS.maxConnections} connections open`, async () => {
    admin = new AdminServer('127.0.0.1:0', { metrics: async () => '', readiness: async (): Promise<Readiness> => ({ ready: true }) }, quietLogger());
    const port = await admin.start();
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < ADMIN_LIMITS.maxConnections; i++) {
        const s = connect(port, '127.0.0.1');
        sockets.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      await new Promise((r) => setTimeout(r, 100));
      const refused = await http(`127.0.0.1:${port}`, '/healthz').then(
        () => 'answered',
        () => 'closed',
      );
      expect(refused).to.equal('closed');
    } finally {
      for (const s of sockets) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect((await http(`127.0.0.1:${port}`, '/healthz')).status).to.equal(200);
  });

  it('says not ready until a policy set is loaded, ready while serving, and closes with the server', async () => {
    const base = loadConfig({ policies: path.join(REPO_ROOT, 'policies'), listen: '127.0.0.1:0', noEvents: true, admin: '127.0.0.1:0' }, {});
    const config = { ...base, reload: { ...base.reload, watch: false } };
    const logger = quietLogger();
    const observability = await Observability.start(config, logger, { kind: 'worker', index: 0 });
    // A worker has no admin port of its own: use the single-process role to serve it here.
    expect(observability.adminPort).to.equal(0);
    const single = await Observability.start(config, logger, { kind: 'single' });
    const server = new VerdictServer({ config, logger, observability: single });
    // The admin port opens before the policies load (start() would open it first too).
    await single.startAdmin();
    const at = `127.0.0.1:${single.adminPort}`;
    const before = await http(at, '/readyz');
    expect(before.status).to.equal(503);
    expect(JSON.parse(before.body)).to.include({ ready: false, reason: 'no policy set is loaded yet' });
    expect((await http(at, '/healthz')).status).to.equal(200);

    await server.start();
    expect(JSON.parse((await http(at, '/readyz')).body)).to.deep.equal({ status: 'SERVING', ready: true, revision: server.store.current()!.set.revision });
    await server.stop('test');
    const after = await http(at, '/healthz').then(
      (r) => r.status,
      () => 'closed',
    );
    expect(after).to.equal('closed');
  });
});

describe('observability: settings', () => {
  it('takes admin.listen from --admin, VERDICT_ADMIN_LISTEN or the file, and is off by default', () => {
    expect(loadConfig({}, {}).admin).to.equal(undefined);
    expect(loadConfig({}, { VERDICT_ADMIN_LISTEN: '0.0.0.0:9464' }).admin).to.deep.equal({ listen: '0.0.0.0:9464' });
    expect(loadConfig({ admin: '[::1]:9000' }, { VERDICT_ADMIN_LISTEN: '0.0.0.0:9464' }).admin).to.deep.equal({ listen: '[::1]:9000' });
    expect(() => loadConfig({ admin: '127.0.0.1:99999' }, {})).to.throw(/admin\.listen: "127\.0\.0\.1:99999" must be HOST:PORT/);
  });

  it('turns tracing on only when OTEL_TRACES_EXPORTER names an exporter', () => {
    expect(loadConfig({}, {}).tracing).to.equal(undefined);
    expect(loadConfig({}, { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).tracing).to.equal(undefined);
    expect(loadConfig({}, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).tracing).to.equal(undefined);
    expect(loadConfig({}, { OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).tracing).to.deep.equal({
      exporters: ['otlp', 'console'],
      protocol: 'http/json',
      sampler: 'parentbased_always_on',
    });
    expect(() => loadConfig({}, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).to.throw(/OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" must be an http/);
    expect(() => loadConfig({}, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'sometimes' })).to.throw(/OTEL_TRACES_SAMPLER: "sometimes" must be one of/);
  });

  it('adds no hooks to the decision service when neither metrics nor tracing is on', async () => {
    const o = await Observability.start(loadConfig({}, {}), quietLogger(), { kind: 'single' });
    expect(o.hooks).to.deep.equal({ observer: undefined, tracer: undefined });
    expect(o.metrics).to.equal(undefined);
  });
});
