/**
 * Usage limits through `verdict serve` over real sockets: the gRPC LimitState fields, the ext_authz
 * 429 with Retry-After and the RateLimit fields, AuthZEN's decision false with the limit in its
 * context, and a monthly quota kept across a restart (the state file).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { call, envoyCheck, extAuthzClient, headersOf, verdictClient, type AnyClient } from '../gateway/helpers/envoy.js';
import { post } from '../http/helpers/client.js';
import { cleanupServerProcesses, isServingLine, makeTempDir, startServer, writeFile, type VerdictProcess } from '../support/server-process.js';

const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: report
rules:
  - name: members
    actions: [read, export]
    effect: allow
limits:
  - name: exports
    actions: [export]
    key: subject.id
    rate: 2/1h
    burst: 2
  - name: reads-month
    actions: [read]
    key: subject.id
    quota: {count: 3, period: month}
`;
const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
unmapped: deny
subjects: { peer: true, peerRoles: [service] }
routes:
  - match: GET /reports/{id}/export
    action: export
    resource: { type: report, id: "{id}" }
`;

type LimitState = { name: string; outcome: string; remaining: number; retryAfterMs: number; limit: number; kind: string; mode: string };
type Response = { allowed: boolean; reason: string; policy: string; limits?: LimitState[] };

describe('usage limits through verdict serve', function () {
  this.timeout(60_000);
  let dir: string;
  let stateDir: string;
  let server: VerdictProcess;
  let httpPort: number;
  let grpc: AnyClient;
  const clients: AnyClient[] = [];

  const check = (subject: string, action: string) =>
    call<Response>(grpc, 'Check', { subject: { type: 'user', id: subject }, action: { name: action }, resource: { type: 'report', id: 'r1' } });

  before(async () => {
    dir = makeTempDir('usage');
    stateDir = makeTempDir('usage-state');
    writeFile(dir, 'report.yaml', POLICY);
  });

  after(async () => {
    for (const c of clients) c.close();
    await cleanupServerProcesses();
  });

  it('gRPC Check: the limit state on allowed answers, and RATE_LIMITED with retry-after and remaining', async () => {
    // The routes file lives outside the policy directory (every *.yaml there is read as a policy).
    const routesDir = makeTempDir('routes');
    writeFile(routesDir, 'routes.yaml', ROUTES);
    server = await startServer({
      policies: dir,
      config: { gateway: { routesFile: path.join(routesDir, 'routes.yaml') }, usage: { stateDir, saveIntervalMs: 0 } },
      args: ['--http', '127.0.0.1:0'],
    });
    const http = String(server.findLog(isServingLine)!.http);
    httpPort = Number(http.slice(http.lastIndexOf(':') + 1));
    grpc = verdictClient(server.address);
    clients.push(grpc);

    const first = await check('g1', 'export');
    expect(first).to.include({ allowed: true, reason: 'RULE_ALLOW' });
    expect(first.limits).to.have.length(1);
    expect(first.limits![0]).to.include({ name: 'exports', kind: 'rate', mode: 'enforce', outcome: 'ok', remaining: 1, limit: 2, retryAfterMs: 0 });
    expect((await check('g1', 'export')).limits![0]!.remaining).to.equal(0);
    const denied = await check('g1', 'export');
    expect(denied).to.include({ allowed: false, reason: 'RATE_LIMITED', policy: 'report.yaml' });
    expect(denied.limits![0]).to.include({ name: 'exports', outcome: 'over', remaining: 0 });
    expect(denied.limits![0]!.retryAfterMs).to.be.within(1_790_000, 1_800_000);
    // Without a limit that applies, no limits field.
    expect((await call<Response>(grpc, 'Check', { subject: { id: 'g1' }, action: { name: 'list' }, resource: { type: 'report', id: 'r1' } })).limits ?? []).to.deep.equal([]);
  });

  it('ext_authz: RateLimit fields on allowed answers, then 429 with Retry-After, RateLimit-Policy and RateLimit', async () => {
    const envoy = extAuthzClient(server.address);
    clients.push(envoy);
    const req = () => call<Record<string, any>>(envoy, 'Check', envoyCheck({ path: '/reports/r1/export', principal: 'spiffe://example.org/ns/batch/sa/exporter' }));
    const ok = await req();
    expect(ok.httpResponse, JSON.stringify(ok)).to.equal('okResponse');
    expect(headersOf(ok.okResponse.responseHeadersToAdd)).to.deep.equal({ 'ratelimit-policy': '"exports";q=2;w=3600', ratelimit: '"exports";r=1;t=1800' });
    await req();
    const limited = await req();
    expect(limited.httpResponse).to.equal('deniedResponse');
    expect(limited.status.code).to.equal(status.RESOURCE_EXHAUSTED);
    expect(limited.deniedResponse.status.code).to.equal('TooManyRequests');
    const headers = headersOf(limited.deniedResponse.headers);
    expect(headers['retry-after']).to.equal('1800');
    expect(headers['ratelimit-policy']).to.equal('"exports";q=2;w=3600');
    expect(headers.ratelimit).to.equal('"exports";r=0;t=3600');
    const body = JSON.parse(limited.deniedResponse.body as string) as Record<string, unknown>;
    expect(body).to.include({ error: 'rate_limited', limit: 'exports', retry_after: 1800 });
    expect(headers['x-verdict-decision-id']).to.equal(body.decision_id);
  });

  it('AuthZEN: decision false with the limit in the context', async () => {
    const ask = () => post({ port: httpPort }, '/access/v1/evaluation', { subject: { type: 'user', id: 'z1' }, action: { name: 'export' }, resource: { type: 'report', id: 'r1' } });
    expect((await ask()).json.decision).to.equal(true);
    expect((await ask()).json.context.limits[0]).to.include({ name: 'exports', outcome: 'ok', remaining: 0 });
    const third = await ask();
    expect(third.status).to.equal(200);
    expect(third.json.decision).to.equal(false);
    expect(third.json.context).to.include({ reason: 'RATE_LIMITED', policy: 'report.yaml' });
    expect(third.json.context.limits[0]).to.include({ name: 'exports', outcome: 'over', remaining: 0 });
    expect(third.json.context.limits[0].retry_after_ms).to.be.within(1_790_000, 1_800_000);
  });

  it('a monthly quota survives a restart (state file written at shutdown, read at start)', async () => {
    expect((await check('m1', 'read')).limits![0]).to.include({ name: 'reads-month', remaining: 2 });
    expect((await check('m1', 'read')).limits![0]).to.include({ remaining: 1 });
    const stopped = await server.stop();
    expect(stopped.code).to.equal(0);
    const file = path.join(stateDir, 'usage.json');
    expect(existsSync(file)).to.equal(true);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { format: string; counters: { limit: string; key: string; b: number }[] };
    expect(saved.format).to.equal('verdict.usage.v1');
    expect(saved.counters.find((c) => c.limit === 'reads-month' && c.key === 'm1')).to.include({ b: 2 });
    const routesDir = makeTempDir('routes');
    writeFile(routesDir, 'routes.yaml', ROUTES);
    server = await startServer({ policies: dir, config: { gateway: { routesFile: path.join(routesDir, 'routes.yaml') }, usage: { stateDir, saveIntervalMs: 0 } } });
    grpc = verdictClient(server.address);
    clients.push(grpc);
    expect(server.findLog('usage quota counters restored')).to.include({ restored: 1 });
    expect((await check('m1', 'read')).limits![0]).to.include({ outcome: 'ok', remaining: 0 });
    const over = await check('m1', 'read');
    expect(over).to.include({ allowed: false, reason: 'QUOTA_EXCEEDED' });
    // Rates are not saved: the rate limit of g1 starts again with a full burst.
    expect(await check('g1', 'export')).to.include({ allowed: true });
  });
});
