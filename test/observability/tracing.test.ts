/**
 * Tracing of an in-process VerdictServer whose tracer exports to OpenTelemetry's in-memory exporter,
 * called over real gRPC: the span continues the caller's traceparent (gRPC metadata; for ext_authz
 * Envoy's metadata, else the HTTP request's headers), carries the decision, and its trace id is on
 * the decision record and in the decision log line.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { Metadata, type Client } from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { toProtoCheckRequest, createAuthorizationClient } from '../../src/grpc/client.js';
import { Observability } from '../../src/observability/observability.js';
import { OtelDecisionTracer } from '../../src/observability/otel-tracer.js';
import { VerdictServer } from '../../src/server/app.js';
import type { ClosableSink } from '../../src/service/decision-trail.js';
import { createLogger } from '../../src/server/logger.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { envoyCheck, extAuthzClient, REPO_ROOT } from '../gateway/helpers/envoy.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const HEX32 = /^[0-9a-f]{32}$/;

interface Harness {
  server: VerdictServer;
  address: string;
  exporter: InMemorySpanExporter;
  records: DecisionRecord[];
  logs: Record<string, unknown>[];
  clients: Client[];
}

async function startTraced(): Promise<Harness> {
  const base = loadConfig({ policies: path.join(REPO_ROOT, 'policies'), listen: '127.0.0.1:0', noEvents: true, routes: path.join(REPO_ROOT, 'examples/gateway/routes.yaml'), http: '127.0.0.1:0' }, {});
  const config = { ...base, logDecisions: true, reload: { ...base.reload, watch: false } };
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const observability = await Observability.start(config, logger, { kind: 'single' }, { tracer: new OtelDecisionTracer(provider.getTracer('test'), () => provider.shutdown()) });
  const records: DecisionRecord[] = [];
  const sink: ClosableSink = { requiresDurability: false, record: (r) => void records.push(r), recordDurably: async (r) => (records.push(r), true), close: async () => undefined };
  const server = new VerdictServer({ config, logger, sink, observability });
  const port = await server.start();
  return { server, address: `127.0.0.1:${port}`, exporter, records, logs, clients: [] };
}

function call<T>(client: Client, method: string, request: unknown, metadata = new Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>)[method]!(request, metadata, { deadline: Date.now() + 8000 }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

function traceparent(sampled = true): Metadata {
  const m = new Metadata();
  m.set('traceparent', `00-${TRACE}-${CALLER_SPAN}-${sampled ? '01' : '00'}`);
  return m;
}

const READ = { subject: { id: 'alice', roles: ['employee'], attributes: { department: 'engineering', clearance: 2 } }, action: 'read', resource: { type: 'document', id: 'd1', attributes: { owner: 'alice', classification: 1, department: 'engineering' } } };

describe('observability: traces of decisions (in-memory exporter, real gRPC)', function () {
  this.timeout(20_000);
  let h: Harness;

  beforeEach(async () => {
    h = await startTraced();
  });
  afterEach(async () => {
    for (const c of h.clients) c.close();
    await h.server.stop('test');
  });

  const verdict = () => {
    const c = createAuthorizationClient(h.address);
    h.clients.push(c);
    return c;
  };
  const spans = (): ReadableSpan[] => h.exporter.getFinishedSpans();

  it("continues the caller's traceparent from gRPC metadata, with the decision on the span, the record and the log line", async () => {
    const res = await call<{ decisionId: string; reason: string; rule: string; policy: string; revision: string }>(verdict(), 'Check', toProtoCheckRequest(READ), traceparent());
    expect(res.reason).to.equal('RULE_ALLOW');
    const [span, ...more] = spans();
    expect(more).to.have.length(0);
    expect(span!.name).to.equal('verdict.v1.Authorization/Check');
    expect(span!.kind).to.equal(SpanKind.SERVER);
    expect(span!.spanContext().traceId).to.equal(TRACE);
    expect(span!.parentSpanContext?.spanId).to.equal(CALLER_SPAN);
    expect(span!.parentSpanContext?.isRemote).to.equal(true);
    expect(span!.attributes).to.include({
      'verdict.source': 'check',
      'verdict.decision.id': res.decisionId,
      'verdict.decision.effect': 'ALLOW',
      'verdict.decision.reason': 'RULE_ALLOW',
      'verdict.decision.policy': res.policy,
      'verdict.decision.rule': res.rule,
      'verdict.policy.revision': res.revision,
      'verdict.resource.type': 'document',
      'verdict.action': 'read',
      'rpc.system': 'grpc',
      'rpc.method': 'Check',
    });
    // No subject or resource ids, no attributes, on the span.
    expect(Object.values(span!.attributes)).to.not.include('alice');
    expect(Object.values(span!.attributes)).to.not.include('d1');
    expect(h.records.map((r) => r.traceId)).to.deep.equal([TRACE]);
    const line = h.logs.find((l) => l.msg === 'decision');
    expect(line).to.include({ decisionId: res.decisionId, traceId: TRACE });
  });

  it('starts a new trace when the caller sends none, or a malformed traceparent', async () => {
    const bad = new Metadata();
    bad.set('traceparent', `00-${'0'.repeat(32)}-${CALLER_SPAN}-01`);
    await call(verdict(), 'Check', toProtoCheckRequest(READ));
    await call(verdict(), 'Check', toProtoCheckRequest(READ), bad);
    const [a, b] = spans();
    for (const s of [a!, b!]) {
      expect(s.parentSpanContext).to.equal(undefined);
      expect(s.spanContext().traceId).to.match(HEX32).and.not.equal('0'.repeat(32));
    }
    expect(a!.spanContext().traceId).to.not.equal(b!.spanContext().traceId);
    expect(h.records.map((r) => r.traceId)).to.deep.equal([a!.spanContext().traceId, b!.spanContext().traceId]);
  });

  it('keeps the trace id of a caller that did not sample, without recording a span', async () => {
    await call(verdict(), 'Check', toProtoCheckRequest(READ), traceparent(false));
    expect(spans()).to.have.length(0);
    expect(h.records.map((r) => r.traceId)).to.deep.equal([TRACE]);
  });

  it('gives a CheckBatch one span for the call and a child span per decision', async () => {
    const base = toProtoCheckRequest(READ);
    const items = ['read', 'edit', 'delete'].map((a) => ({ action: { name: a }, resource: base.resource }));
    const res = await call<{ results: { decisionId: string; reason: string }[] }>(verdict(), 'CheckBatch', { subject: base.subject, items }, traceparent());
    const all = spans();
    const parent = all.find((s) => s.name === 'verdict.v1.Authorization/CheckBatch')!;
    expect(parent.parentSpanContext?.spanId).to.equal(CALLER_SPAN);
    expect(parent.attributes['verdict.decisions']).to.equal(3);
    const children = all.filter((s) => s.name === 'verdict decision');
    expect(children).to.have.length(3);
    for (const c of children) {
      expect(c.spanContext().traceId).to.equal(TRACE);
      expect(c.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
    }
    expect(children.map((c) => [c.attributes['verdict.decision.id'], c.attributes['verdict.decision.reason']])).to.deep.equal(res.results.map((r) => [r.decisionId, r.reason]));
    expect(h.records.map((r) => r.traceId)).to.deep.equal([TRACE, TRACE, TRACE]);
  });

  it('continues an ext_authz check from the HTTP request headers, or from Envoy’s own metadata when it sends one', async () => {
    const envoy = extAuthzClient(h.address);
    h.clients.push(envoy);
    const principal = 'spiffe://example.org/ns/web/sa/frontend';
    const headerTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const headerSpan = 'bbbbbbbbbbbbbbbb';
    const fromHeaders = envoyCheck({ path: '/documents/d1', principal, headers: { traceparent: `00-${headerTrace}-${headerSpan}-01` } });
    await call(envoy, 'Check', fromHeaders);
    await call(envoy, 'Check', fromHeaders, traceparent());
    const [byHeaders, byMetadata] = spans();
    expect(byHeaders!.name).to.equal('envoy.service.auth.v3.Authorization/Check');
    expect(byHeaders!.spanContext().traceId).to.equal(headerTrace);
    expect(byHeaders!.parentSpanContext?.spanId).to.equal(headerSpan);
    expect(byHeaders!.attributes['verdict.source']).to.equal('ext_authz');
    expect(byHeaders!.attributes['verdict.decision.reason']).to.be.a('string');
    expect(byMetadata!.spanContext().traceId).to.equal(TRACE);
    expect(byMetadata!.parentSpanContext?.spanId).to.equal(CALLER_SPAN);
    expect(h.records.map((r) => r.traceId)).to.deep.equal([headerTrace, TRACE]);
  });

  it('continues an AuthZEN HTTP evaluation from its traceparent header', async () => {
    const res = await fetch(`http://127.0.0.1:${h.server.httpPort}/access/v1/evaluation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${TRACE}-${CALLER_SPAN}-01` },
      body: JSON.stringify({ subject: { type: 'user', id: 'alice', properties: { roles: ['employee'], department: 'engineering', clearance: 2 } }, action: { name: 'read' }, resource: READ.resource }),
    });
    expect(res.status).to.equal(200);
    const [span] = spans();
    expect(span!.name).to.equal('POST /access/v1/evaluation');
    expect(span!.spanContext().traceId).to.equal(TRACE);
    expect(span!.parentSpanContext?.spanId).to.equal(CALLER_SPAN);
    expect(span!.attributes['verdict.source']).to.equal('authzen_evaluation');
    expect(h.records.map((r) => r.traceId)).to.deep.equal([TRACE]);
  });

  it('traces a refused subject token like any decision (reason UNAUTHENTICATED)', async () => {
    const envoy = extAuthzClient(h.address);
    h.clients.push(envoy);
    await call(envoy, 'Check', envoyCheck({ path: '/documents/d1', token: 'not-a-jwt' }), traceparent());
    const [span] = spans();
    expect(span!.attributes).to.include({ 'verdict.decision.reason': 'UNAUTHENTICATED', 'verdict.decision.effect': 'DENY' });
    expect(span!.spanContext().traceId).to.equal(TRACE);
  });
});
