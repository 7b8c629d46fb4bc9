/**
 * Tracing of a real `verdict serve`, configured only by OTEL_* environment variables: spans reach an
 * OTLP/HTTP receiver (OTEL_EXPORTER_OTLP_ENDPOINT) with the caller's trace id, and that trace id is
 * in the decision event on NATS (inside the hash chain) and in the decision log line; the console
 * exporter writes one JSON log line per span. With tracing off no OpenTelemetry SDK module is loaded.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ChainVerifier } from '../../src/audit/verifier.js';
import { createAuthorizationClient, toProtoCheckRequest } from '../../src/grpc/client.js';
import { NATS_URL, readStream, Resources, uniqueNames, waitFor, writePolicies } from '../support/events-harness.js';
import { cleanupServerProcesses, REPO_ROOT, startServer } from '../support/server-process.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const READ = { subject: { id: 'u1', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: 'd1' } };

function checkWithTrace(address: string): Promise<{ decisionId: string; reason: string }> {
  const client = createAuthorizationClient(address);
  const md = new Metadata();
  md.set('traceparent', `00-${TRACE}-${CALLER_SPAN}-01`);
  return new Promise((resolve, reject) =>
    client.Check!(toProtoCheckRequest(READ), md, { deadline: Date.now() + 8000 }, (err: Error | null, res: { decisionId: string; reason: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

/** An OTLP/HTTP receiver on 127.0.0.1 keeping every request to /v1/traces. */
class OtlpReceiver {
  readonly requests: { contentType: string; body: Buffer }[] = [];
  private readonly server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') this.requests.push({ contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': String(req.headers['content-type'] ?? 'application/json') }).end();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('observability: tracing of a real server (OTEL_* environment)', function () {
  this.timeout(40_000);
  const res = new Resources();
  afterEach(async () => {
    await cleanupServerProcesses();
    await res.cleanup();
  });

  it('exports spans over OTLP/HTTP (protobuf) and puts the trace id into the chained decision event', async () => {
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    try {
      const names = uniqueNames();
      res.stream(NATS_URL, names.stream);
      const server = await startServer({
        policies: writePolicies(res.tmpDir('policies')),
        noEvents: false,
        args: ['--nats', NATS_URL, '--spool-dir', res.tmpDir('spool')],
        env: {
          VERDICT_EVENTS_STREAM: names.stream,
          VERDICT_EVENTS_SUBJECT_PREFIX: names.prefix,
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_SERVICE_NAME: 'verdict-under-test',
          OTEL_BSP_SCHEDULE_DELAY: '50',
        },
      });
      expect(server.findLog('tracing on (OpenTelemetry)')).to.include({ service: 'verdict-under-test' });
      const answer = await checkWithTrace(server.address);
      expect(answer.reason).to.equal('RULE_ALLOW');

      const sent = await waitFor('spans at the OTLP receiver', () => receiver.requests.find((r) => r.body.includes(Buffer.from(TRACE, 'hex'))), 15_000);
      expect(sent!.contentType).to.equal('application/x-protobuf');
      expect(sent!.body.includes(Buffer.from(CALLER_SPAN, 'hex'))).to.equal(true);
      expect(sent!.body.includes(Buffer.from('verdict-under-test'))).to.equal(true);
      expect(sent!.body.includes(Buffer.from(answer.decisionId))).to.equal(true);

      const nc = await res.nats(NATS_URL);
      const events = await waitFor('the event in the stream', async () => {
        const all = await readStream(nc, names.stream);
        return all.filter((m) => m.data.schema === 'verdict.decision.v1').length === 1 ? all : undefined;
      });
      const event = events!.find((m) => m.data.schema === 'verdict.decision.v1')!;
      expect(event.data).to.include({ id: answer.decisionId, traceId: TRACE });
      // The trace id is covered by the chain hash like every other field.
      const verifier = new ChainVerifier({ partial: true });
      for (const m of events!) verifier.accept(m.data, `seq ${m.seq}`);
      expect(verifier.findings).to.deep.equal([]);
      const altered = { ...event.data, traceId: 'f'.repeat(32) };
      expect(new ChainVerifier({ partial: true }).accept(altered, 'altered').map((f) => f.kind)).to.deep.equal(['altered']);
    } finally {
      await receiver.close();
    }
  });

  it('OTEL_TRACES_EXPORTER=console writes each span as a JSON log line; the decision log line has the trace id', async () => {
    const server = await startServer({
      policies: writePolicies(res.tmpDir('policies')),
      env: { OTEL_TRACES_EXPORTER: 'console', OTEL_BSP_SCHEDULE_DELAY: '50', VERDICT_LOG_DECISIONS: 'true' },
    });
    const answer = await checkWithTrace(server.address);
    const span = await server.waitForLog((l) => l.msg === 'span' && l.traceId === TRACE);
    expect(span).to.include({ component: 'opentelemetry', parentSpanId: CALLER_SPAN, name: 'verdict.v1.Authorization/Check', kind: 'server', status: 'ok' });
    expect(span.attributes).to.include({ 'verdict.decision.id': answer.decisionId, 'verdict.decision.reason': 'RULE_ALLOW' });
    expect(await server.waitForLog('decision')).to.include({ decisionId: answer.decisionId, traceId: TRACE });
    // Every line on stdout is JSON.
    for (const line of server.stdout.trim().split('\n')) expect(() => JSON.parse(line)).to.not.throw();
  });

  it('loads no OpenTelemetry SDK module with tracing off, and loads it when OTEL_TRACES_EXPORTER asks', async () => {
    const run = promisify(execFile);
    const script = path.join(REPO_ROOT, 'dist/test/observability/fixtures/loaded-modules.js');
    const policies = writePolicies(res.tmpDir('policies'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_') && !k.startsWith('VERDICT_')));
    const off = JSON.parse((await run(process.execPath, [script, policies], { env })).stdout) as { reason: string; packages: string[] };
    expect(off.reason).to.equal('RULE_ALLOW');
    // @opentelemetry/api may come with prom-client; no SDK, exporter or resource package.
    expect(off.packages.filter((p) => p !== 'api')).to.deep.equal([]);
    const on = JSON.parse((await run(process.execPath, [script, policies], { env: { ...env, OTEL_TRACES_EXPORTER: 'console' } })).stdout) as { packages: string[] };
    expect(on.packages).to.include.members(['sdk-trace-base', 'resources', 'core']);
  });
});
