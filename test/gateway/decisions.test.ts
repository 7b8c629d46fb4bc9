/**
 * What the gateway hands the decision stream, with VerdictServer in-process (mTLS, tokens, routes
 * in pass-through mode) and a sink that keeps every DecisionRecord: source "ext_authz", the mTLS
 * caller, the HTTP context conditions see, UNAUTHENTICATED decisions, tokens in Verdict's own
 * Check and CheckBatch, and never a token in any record or event.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load.js';
import { AttributeSelector, buildUnchainedEvent } from '../../src/events/event.js';
import { createLogger } from '../../src/server/logger.js';
import { VerdictServer } from '../../src/server/app.js';
import type { ClosableSink } from '../../src/service/decision-trail.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { call, callError, envoyCheck, extAuthzClient, headersOf, verdictClient, type AnyClient } from './helpers/envoy.js';
import { ENVOY_ID, makeTestPki, type TestPki } from './helpers/pki.js';
import { removeDir, tempDir } from './helpers/server.js';
import { JwksServer, signingKey, signToken, tokensConfig, unsignedToken, type SigningKey } from './helpers/tokens.js';
import { stringify } from 'yaml';

const DOCUMENTS = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: readers-read
    actions: [read]
    effect: allow
    roles: [reader]
  - name: billing-services-read
    actions: [read]
    effect: allow
    roles: [service]
    when: subject.id.startsWith("spiffe://example.org/ns/billing/")
  - name: through-the-gateway
    actions: [inspect]
    effect: allow
    roles: [reader]
    when: >-
      caller.id == "${ENVOY_ID}" && caller.kind == "spiffe" &&
      context.ip == "10.1.2.3" &&
      context.http.method == "GET" && context.http.path == "/documents/d1/inspect" &&
      context.http.query.version == "2" &&
      context.http.headers["user-agent"] == "curl/8.5.0" &&
      !("authorization" in context.http.headers) &&
      context.destination.principal == "spiffe://example.org/ns/docs/sa/api" &&
      context.extensions.virtual_host == "docs" &&
      context.route == "GET /documents/{id}/inspect"
`;
const ROUTE_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: route
rules:
  - name: health-checks
    actions: [get]
    effect: allow
    when: resource.id == "/healthz"
`;
const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
unmapped: route
subjects: { peer: true, peerRoles: [service] }
upstream:
  removeAuthorization: true
  headers: { x-verdict-caller: "{caller.id}", x-verdict-target: "{action} {resource.type}/{resource.id}" }
routes:
  - match: GET /documents/{id}
    action: read
    resource: { type: document, id: "{id}" }
  - match: GET /documents/{id}/inspect
    action: inspect
    resource: { type: document, id: "{id}" }
`;

describe('gateway: decisions and events (VerdictServer in-process)', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let jwks: JwksServer;
  let key: SigningKey;
  let server: VerdictServer;
  let envoy: AnyClient;
  let verdict: AnyClient;
  const records: DecisionRecord[] = [];
  const tokens: string[] = [];
  const reader = async (claims: Record<string, unknown> = {}) => {
    const t = await signToken(key, { sub: 'alice', roles: ['reader'], dept: 'finance', ...claims });
    tokens.push(t);
    return t;
  };
  const recordOf = (decisionId: string) => {
    const r = records.find((x) => x.decisionId === decisionId);
    expect(r, `a record for ${decisionId}`).to.not.equal(undefined);
    return r!;
  };
  const decisionIdOf = (r: Record<string, any>) => headersOf(r.okResponse?.headers ?? r.deniedResponse?.headers)['x-verdict-decision-id']!;

  before(async () => {
    dir = tempDir('decisions');
    pki = makeTestPki(dir);
    jwks = new JwksServer();
    key = await signingKey('k1');
    jwks.keys = [key];
    await jwks.start();
    mkdirSync(path.join(dir, 'policies'));
    writeFileSync(path.join(dir, 'policies', 'document.yaml'), DOCUMENTS);
    writeFileSync(path.join(dir, 'policies', 'route.yaml'), ROUTE_POLICY);
    writeFileSync(path.join(dir, 'routes.yaml'), ROUTES);
    const configFile = path.join(dir, 'verdict.yaml');
    writeFileSync(configFile, stringify({
      tls: { certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: pki.ca.cert },
      tokens: tokensConfig(jwks.url),
      gateway: { routesFile: path.join(dir, 'routes.yaml') },
    }));
    const config = loadConfig({ configFile, policies: path.join(dir, 'policies'), listen: '127.0.0.1:0', noEvents: true }, { VERDICT_WORKERS: '1' });
    const sink: ClosableSink = {
      requiresDurability: false,
      record: (r) => void records.push(r),
      recordDurably: async (r) => (records.push(r), true),
      close: async () => undefined,
    };
    server = new VerdictServer({ config, logger: createLogger('silent'), sink });
    const port = await server.start();
    const creds = credentials.createSsl(pki.ca.certPem, pki.envoy.keyPem, pki.envoy.certPem);
    const options = { 'grpc.ssl_target_name_override': 'localhost' };
    envoy = extAuthzClient(`127.0.0.1:${port}`, creds, options);
    verdict = verdictClient(`127.0.0.1:${port}`, creds, options);
  });

  after(async () => {
    envoy?.close();
    verdict?.close();
    await server?.stop('test done');
    await jwks?.close();
    if (dir) removeDir(dir);
  });

  it('records an ext_authz decision with source "ext_authz", the mTLS caller, and no credentials in the context', async () => {
    const r = await call(envoy, 'Check', envoyCheck({ path: '/documents/d1', token: await reader() }));
    expect(r.httpResponse).to.equal('okResponse');
    const upstream = headersOf(r.okResponse.headers);
    expect(upstream['x-verdict-caller']).to.equal(ENVOY_ID);
    expect(upstream['x-verdict-target']).to.equal('read document/d1');
    expect(r.okResponse.headersToRemove).to.deep.equal(['authorization']);
    const rec = recordOf(decisionIdOf(r));
    expect(rec.source).to.equal('ext_authz');
    expect(rec.request.caller).to.deep.equal({ id: ENVOY_ID, kind: 'spiffe' });
    expect(rec.request.subject).to.deep.include({ id: 'alice', type: 'user', roles: ['reader'] });
    expect(rec.request.subject.attributes).to.deep.equal({ department: 'finance' });
    const http = rec.request.context.http as Record<string, any>;
    expect(http.headers).to.not.have.property('authorization');
    expect(http.headers).to.not.have.property(':path');
    expect(rec.requestId).to.equal(http.headers['x-request-id']);
  });

  it('gives conditions the HTTP context: source ip, method, path, query, headers, peers, route, caller', async () => {
    const r = await call(envoy, 'Check', envoyCheck({ path: '/documents/d1/inspect?version=2&version=3', token: await reader() }));
    expect(r.httpResponse, JSON.stringify(r)).to.equal('okResponse');
    expect(recordOf(decisionIdOf(r)).decision.rule).to.equal('through-the-gateway');
  });

  it('decides an unmapped request as resource type "route" in pass-through mode', async () => {
    const health = await call(envoy, 'Check', envoyCheck({ path: '/healthz', principal: 'spiffe://example.org/ns/mesh/sa/prober' }));
    expect(health.httpResponse).to.equal('okResponse');
    const rec = recordOf(decisionIdOf(health));
    expect(rec.request.action).to.equal('get');
    expect(rec.request.resource).to.deep.include({ type: 'route', id: '/healthz' });
    const other = await call(envoy, 'Check', envoyCheck({ path: '/metrics', token: await reader() }));
    expect(other.deniedResponse.status.code).to.equal('Forbidden');
    expect(recordOf(decisionIdOf(other)).decision.reason).to.equal('NO_MATCHING_RULE');
  });

  it('lets policies decide for service subjects from source.principal', async () => {
    const ok = await call(envoy, 'Check', envoyCheck({ path: '/documents/d1', principal: 'spiffe://example.org/ns/billing/sa/invoicer' }));
    expect(ok.httpResponse).to.equal('okResponse');
    expect(recordOf(decisionIdOf(ok)).request.subject).to.deep.include({ type: 'service', id: 'spiffe://example.org/ns/billing/sa/invoicer', roles: ['service'] });
    const no = await call(envoy, 'Check', envoyCheck({ path: '/documents/d1', principal: 'spiffe://example.org/ns/shop/sa/cart' }));
    expect(no.deniedResponse.status.code).to.equal('Forbidden');
  });

  it('records an invalid token as DENY UNAUTHENTICATED for an anonymous subject', async () => {
    const bad = unsignedToken({ sub: 'mallory', roles: ['reader'] });
    tokens.push(bad);
    const r = await call(envoy, 'Check', envoyCheck({ path: '/documents/d1', token: bad }));
    expect(r.deniedResponse.status.code).to.equal('Unauthorized');
    const rec = recordOf(decisionIdOf(r));
    expect(rec.decision).to.deep.include({ effect: 'DENY', reason: 'UNAUTHENTICATED' });
    expect(rec.request.subject).to.deep.include({ type: 'anonymous', id: '' });
    expect(rec.request.resource).to.deep.include({ type: 'document', id: 'd1' });
  });

  it("verifies Verdict's own Check token: the subject comes from the token, the caller from mTLS", async () => {
    const r = await call(verdict, 'Check', { token: await reader(), action: { name: 'read' }, resource: { type: 'document', id: 'd9' } });
    expect(r.allowed).to.equal(true);
    const rec = recordOf(r.decisionId);
    expect(rec.request.subject.id).to.equal('alice');
    expect(rec.request.caller).to.deep.equal({ id: ENVOY_ID, kind: 'spiffe' });
  });

  it('answers an invalid token on Check with a normal DENY response, reason UNAUTHENTICATED, recorded', async () => {
    const expired = await signToken(key, { sub: 'alice', roles: ['reader'] }, { expiresIn: -600 });
    tokens.push(expired);
    const r = await call(verdict, 'Check', { token: expired, action: { name: 'read' }, resource: { type: 'document', id: 'd9' } });
    expect(r).to.deep.include({ decision: 'EFFECT_DENY', reason: 'UNAUTHENTICATED' });
    expect(r.allowed ?? false).to.equal(false);
    expect(recordOf(r.decisionId).decision.reason).to.equal('UNAUTHENTICATED');
  });

  it('decides CheckBatch items for the token subject, and refuses a token beside an explicit subject', async () => {
    const items = [{ action: { name: 'read' }, resource: { type: 'document', id: 'a' } }, { action: { name: 'delete' }, resource: { type: 'document', id: 'a' } }];
    const batch = await call(verdict, 'CheckBatch', { token: await reader(), items });
    expect(batch.results.map((x: Record<string, unknown>) => x.allowed ?? false)).to.deep.equal([true, false]);
    const err = await callError(verdict, 'Check', { token: await reader(), subject: { id: 'bob' }, action: { name: 'read' }, resource: { type: 'document' } });
    expect(err.code).to.equal(status.INVALID_ARGUMENT);
    expect(err.details).to.contain('subject');
  });

  it('never puts a token into a record or an event, even with every attribute included', () => {
    const selector = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const events = records.map((r) => JSON.stringify(buildUnchainedEvent(r, 'test', selector)));
    const all = JSON.stringify(records) + events.join('\n');
    expect(tokens.length).to.be.greaterThan(5);
    for (const t of tokens) {
      expect(all).not.to.contain(t);
      expect(all).not.to.contain(t.split('.')[1]!);
    }
    const event = JSON.parse(events[0]!) as Record<string, unknown>;
    expect(event.caller).to.deep.equal({ id: ENVOY_ID, kind: 'spiffe' });
    expect(event.source).to.equal('ext_authz');
  });
});
