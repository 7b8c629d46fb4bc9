/**
 * /metrics of a real `verdict serve --admin` (one process), scraped over HTTP and parsed with a real
 * Prometheus text-format parser: decisions over gRPC move the counters by API, effect and reason;
 * reloads are counted by result; no subject or resource id becomes a label; health and readiness
 * answer on the admin port; a busy admin port and bad settings stop the start with a clear message.
 */
import { createServer, type Server } from 'node:net';
import { expect } from 'chai';
import { checkBatch } from '../support/events-harness.js';
import { cleanupServerProcesses, replaceFile, runVerdict, spawnVerdict, serveArgs } from '../support/server-process.js';
import { authzClient, BROKEN_FIELD, check, closeClients, docRequest, documentPolicy, getPolicySet, policyDir, pollUntil } from '../grpc/fixtures.js';
import { http, scrape, startWithAdmin } from './helpers.js';

describe('observability: /metrics of a real server', function () {
  this.timeout(40_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('counts decisions over gRPC by API, effect and reason, times calls and evaluations, and labels no ids', async () => {
    const { proc, admin } = await startWithAdmin({ policies: policyDir() });
    const client = authzClient(proc.address);

    const before = await scrape(admin);
    expect(before.value('verdict_decisions_total')).to.equal(0);
    const revision = (await getPolicySet(client)).revision!;
    expect(before.samples('verdict_policy_info').map((m) => m.labels)).to.deep.equal([{ revision }]);
    expect(before.value('verdict_policy_reloads_total', { result: 'loaded' })).to.equal(1);
    expect(before.value('process_cpu_seconds_total')).to.be.greaterThan(0);
    expect(before.family('nodejs_heap_size_used_bytes')?.type).to.equal('GAUGE');

    // Identifiers no label may carry.
    const subjectId = 'subject-7c1e9a', resourceId = 'resource-52bd4f';
    for (let i = 0; i < 3; i++) expect(await check(client, docRequest('read', { id: subjectId }, { id: resourceId }))).to.include({ reason: 'RULE_ALLOW' });
    for (let i = 0; i < 2; i++) expect(await check(client, docRequest('read', { id: subjectId, attributes: { suspended: true } }, { id: resourceId }))).to.include({ reason: 'RULE_DENY' });
    expect(await check(client, { subject: { id: subjectId, roles: ['employee'] }, action: 'read', resource: { type: 'spreadsheet', id: resourceId } })).to.include({ reason: 'NO_POLICY' });
    const batch = await checkBatch(client, { id: subjectId, roles: ['employee'] }, [
      { action: 'read', resource: { type: 'document', id: resourceId } },
      { action: 'read', resource: { type: 'document', id: 'other' } },
      { action: 'delete', resource: { type: 'document', id: resourceId } },
    ]);
    expect(batch.results.map((r) => r.reason ?? '')).to.deep.equal(['RULE_ALLOW', 'RULE_ALLOW', 'NO_MATCHING_RULE']);

    const res = await http(admin, '/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
    const after = await scrape(admin);
    expect(after.family('verdict_decisions_total')?.type).to.equal('COUNTER');
    expect(after.value('verdict_decisions_total', { source: 'check', effect: 'allow', reason: 'RULE_ALLOW' })).to.equal(3);
    expect(after.value('verdict_decisions_total', { source: 'check', effect: 'deny', reason: 'RULE_DENY' })).to.equal(2);
    expect(after.value('verdict_decisions_total', { source: 'check', effect: 'deny', reason: 'NO_POLICY' })).to.equal(1);
    expect(after.value('verdict_decisions_total', { source: 'check_batch', effect: 'allow' })).to.equal(2);
    expect(after.value('verdict_decisions_total', { source: 'check_batch', effect: 'deny', reason: 'NO_MATCHING_RULE' })).to.equal(1);
    expect(after.value('verdict_decisions_total')).to.equal(9);
    // One latency observation per call, one evaluation per decision.
    expect(after.family('verdict_decision_duration_seconds')?.type).to.equal('HISTOGRAM');
    expect(after.count('verdict_decision_duration_seconds', { source: 'check' })).to.equal(6);
    expect(after.count('verdict_decision_duration_seconds', { source: 'check_batch' })).to.equal(1);
    expect(after.count('verdict_evaluation_duration_seconds')).to.equal(9);
    expect(after.value('verdict_decision_duration_seconds_sum', { source: 'check' })).to.be.greaterThan(0).and.lessThan(60);
    expect(after.value('verdict_decision_duration_seconds_bucket', { source: 'check', le: '+Inf' })).to.equal(6);
    // Buckets are cumulative and end at the count.
    const buckets = after.samples('verdict_decision_duration_seconds_bucket', { source: 'check_batch' }).map((m) => Number(m.value));
    expect(buckets).to.have.length(16);
    expect([...buckets].sort((a, b) => a - b)).to.deep.equal(buckets);
    expect(buckets[buckets.length - 1]).to.equal(1);

    expect(after.text).to.not.include(subjectId);
    expect(after.text).to.not.include(resourceId);
    expect(after.text).to.not.include('spreadsheet');
    // Scrapes do not count as decisions.
    expect((await scrape(admin)).value('verdict_decisions_total')).to.equal(9);
  });

  it('counts AuthZEN evaluations over HTTP under their own API, with their call latency', async () => {
    const { proc, admin } = await startWithAdmin({ policies: policyDir(), args: ['--http', '127.0.0.1:0'] });
    const http = String(proc.findLog((l) => l.msg === 'verdict serving')!.http);
    const evaluate = (path: string, body: unknown) => fetch(`http://${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const tuple = { subject: { type: 'user', id: 'alice', properties: { roles: ['employee'] } }, action: { name: 'read' }, resource: { type: 'document', id: 'd1' } };
    expect((await evaluate('/access/v1/evaluation', tuple)).status).to.equal(200);
    expect((await evaluate('/access/v1/evaluations', { ...tuple, evaluations: [{}, { action: { name: 'delete' } }] })).status).to.equal(200);
    const s = await scrape(admin);
    expect(s.value('verdict_decisions_total', { source: 'authzen_evaluation', effect: 'allow' })).to.equal(1);
    expect(s.value('verdict_decisions_total', { source: 'authzen_evaluations' })).to.equal(2);
    expect(s.value('verdict_decisions_total', { source: 'authzen_evaluations', effect: 'deny', reason: 'NO_MATCHING_RULE' })).to.equal(1);
    expect(s.count('verdict_decision_duration_seconds', { source: 'authzen_evaluation' })).to.equal(1);
    expect(s.count('verdict_decision_duration_seconds', { source: 'authzen_evaluations' })).to.equal(1);
  });

  it('counts policy reloads by result and reports the revision being served', async () => {
    const dir = policyDir({ 'document.yaml': documentPolicy(false) });
    const { proc, admin } = await startWithAdmin({ policies: dir });
    const client = authzClient(proc.address);
    const first = (await getPolicySet(client)).revision!;

    replaceFile(dir, 'document.yaml', documentPolicy(true));
    const changed = await proc.waitForLog('policy set reloaded');
    const second = String(changed.revision);
    let s = await scrape(admin);
    expect(s.value('verdict_policy_reloads_total', { result: 'loaded' })).to.equal(2);
    expect(s.samples('verdict_policy_info').map((m) => m.labels)).to.deep.equal([{ revision: second }]);
    expect(second).to.not.equal(first);
    expect(s.value('verdict_policy_change_rejected')).to.equal(0);
    expect(s.value('verdict_policy_loaded_timestamp_seconds')).to.be.closeTo(Date.now() / 1000, 30);
    expect(s.value('verdict_policy_rules')).to.equal(1);

    proc.kill('SIGHUP');
    await pollUntil('an unchanged reload', async () => (await scrape(admin)).value('verdict_policy_reloads_total', { result: 'unchanged' }), (n) => n === 1);

    replaceFile(dir, 'document.yaml', BROKEN_FIELD);
    await proc.waitForLog('policy change rejected; the last good policy set keeps serving');
    s = await scrape(admin);
    expect(s.value('verdict_policy_reloads_total', { result: 'rejected' })).to.be.at.least(1);
    expect(s.value('verdict_policy_change_rejected')).to.equal(1);
    expect(s.samples('verdict_policy_info').map((m) => m.labels)).to.deep.equal([{ revision: second }]);
  });

  it('answers /healthz and /readyz, and refuses other paths and methods', async () => {
    const { proc, admin } = await startWithAdmin({ policies: policyDir() });
    const revision = (await getPolicySet(authzClient(proc.address))).revision;

    const health = await http(admin, '/healthz');
    expect(health.status).to.equal(200);
    expect(JSON.parse(health.body)).to.deep.equal({ status: 'ok' });
    const ready = await http(admin, '/readyz');
    expect(ready.status).to.equal(200);
    expect(JSON.parse(ready.body)).to.deep.equal({ status: 'SERVING', ready: true, revision });

    expect((await http(admin, '/')).status).to.equal(404);
    expect((await http(admin, '/metrics/../admin')).status).to.equal(404);
    const post = await http(admin, '/metrics', { method: 'POST', body: 'x'.repeat(100_000) });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
    const head = await http(admin, '/metrics', { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.body).to.equal('');
    // The query string is ignored, as Prometheus' own exporters do.
    expect((await http(admin, '/metrics?name[]=x')).status).to.equal(200);
  });

  it('has no admin listener unless asked for', async () => {
    const proc = spawnVerdict(serveArgs({ policies: policyDir() }));
    await proc.waitForLog('verdict serving', 15_000);
    expect(proc.findLog((l) => String(l.msg).startsWith('admin listener'))).to.equal(undefined);
  });

  it('stops the start when the admin port is in use, naming admin.listen (exit 1)', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const result = await runVerdict(serveArgs({ policies: policyDir(), args: ['--admin', `127.0.0.1:${port}`] }));
      expect(result.code).to.equal(1);
      const last = result.logs[result.logs.length - 1]!;
      expect(last).to.include({ level: 60, code: 'ADDRESS_IN_USE' });
      expect(last.msg).to.equal(`verdict failed to start: admin.listen 127.0.0.1:${port} is already in use (another process is listening on it); choose another --admin address or stop that process`);
    } finally {
      busy.close();
    }
  });

  it('refuses a bad admin.listen and unsupported OTEL_* settings as configuration errors (exit 2)', async () => {
    const policies = policyDir();
    const bad = await runVerdict(['serve', '--policies', policies, '--admin', 'localhost']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('admin.listen: "localhost" must be HOST:PORT, e.g. 127.0.0.1:9464');

    const zipkin = await runVerdict(['serve', '--policies', policies, '--no-events'], { env: { OTEL_TRACES_EXPORTER: 'zipkin' } });
    expect(zipkin.code).to.equal(2);
    expect(zipkin.stderr).to.include('OTEL_TRACES_EXPORTER: "zipkin" is not supported; use otlp (OTLP over HTTP), console (spans as log lines) or none');
    const grpc = await runVerdict(['serve', '--policies', policies, '--no-events'], { env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' } });
    expect(grpc.code).to.equal(2);
    expect(grpc.stderr).to.include('OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported');
    expect(grpc.stderr).to.include('OTEL_TRACES_SAMPLER_ARG: "2" must be a number from 0 to 1');
  });
});
