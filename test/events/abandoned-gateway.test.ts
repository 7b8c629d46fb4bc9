import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/server/logger.js';
import { VerdictServer } from '../../src/server/app.js';
import type { ClosableSink } from '../../src/service/decision-trail.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { call, envoyCheck, extAuthzClient, type AnyClient } from '../gateway/helpers/envoy.js';
import { makeTestPki } from '../gateway/helpers/pki.js';
import { removeDir, tempDir } from '../gateway/helpers/server.js';
import { signingKey, signToken, tokensConfig, type SigningKey } from '../gateway/helpers/tokens.js';

const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: readers-read
    actions: [read]
    effect: allow
    roles: [reader]
`;
const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
routes:
  - match: GET /documents/{id}
    action: read
    resource: { type: document, id: "{id}" }
`;

/**
 * An ext_authz call Envoy gave up on (its deadline passed) while Verdict was still deciding — here
 * while it fetched the token issuer's keys from a slow JWKS endpoint — is recorded with
 * `delivered: false`, as Verdict's own Check is; an answered one never is. Real gRPC over a socket.
 */
describe('events: abandoned ext_authz calls are recorded as not delivered (real gRPC)', function () {
  this.timeout(30_000);
  let dir: string;
  let server: VerdictServer;
  let envoy: AnyClient;
  let key: SigningKey;
  let jwks: http.Server;
  const records: DecisionRecord[] = [];
  const JWKS_DELAY_MS = 700;

  before(async () => {
    dir = tempDir('abandoned');
    key = await signingKey('k1');
    // A JWKS endpoint that takes its time: the first token check waits for it.
    jwks = http.createServer((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] })), JWKS_DELAY_MS);
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    mkdirSync(path.join(dir, 'policies'));
    writeFileSync(path.join(dir, 'policies', 'document.yaml'), POLICY);
    writeFileSync(path.join(dir, 'routes.yaml'), ROUTES);
    const configFile = path.join(dir, 'verdict.yaml');
    writeFileSync(configFile, stringify({ tokens: tokensConfig(`http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`), gateway: { routesFile: path.join(dir, 'routes.yaml') } }));
    const config = loadConfig({ configFile, policies: path.join(dir, 'policies'), listen: '127.0.0.1:0', noEvents: true }, { VERDICT_WORKERS: '1' });
    const sink: ClosableSink = { requiresDurability: false, record: (r) => void records.push(r), recordDurably: async (r) => (records.push(r), true), close: async () => undefined };
    server = new VerdictServer({ config, logger: createLogger('silent'), sink });
    envoy = extAuthzClient(`127.0.0.1:${await server.start()}`);
  });

  after(async () => {
    envoy?.close();
    await server?.stop('test done');
    await new Promise((r) => jwks?.close(r));
    if (dir) removeDir(dir);
  });

  it('Envoy\'s deadline passes while Verdict fetches the issuer\'s keys: recorded with delivered: false; the next, answered call is not', async () => {
    const token = await signToken(key, { sub: 'alice', roles: ['reader'] });
    const late = envoyCheck({ path: '/documents/d1', token });
    const lateId = String(((late.attributes as any).request.http as { id: string }).id);
    const err = await new Promise<ServiceError | null>((resolve) => envoy.Check!(late, { deadline: Date.now() + 200 }, (e: ServiceError | null) => resolve(e)));
    expect(err?.code).to.equal(status.DEADLINE_EXCEEDED);
    // Verdict goes on deciding once the keys arrive; the answer reaches nobody.
    const deadline = Date.now() + 5000;
    while (!records.some((r) => r.requestId === lateId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const abandoned = records.find((r) => r.requestId === lateId);
    expect(abandoned, 'the abandoned call was decided and recorded').to.not.equal(undefined);
    expect(abandoned!.source).to.equal('ext_authz');
    expect(abandoned!.decision.effect).to.equal('ALLOW');
    expect(abandoned!.delivered).to.equal(false);

    const onTime = envoyCheck({ path: '/documents/d2', token });
    const answer = await call(envoy, 'Check', onTime);
    expect(answer.httpResponse).to.equal('okResponse');
    const answered = records.find((r) => r.requestId === String(((onTime.attributes as any).request.http as { id: string }).id));
    expect(answered?.delivered, 'answered: no delivered field').to.equal(undefined);
  });
});

/**
 * AuthZEN over HTTP/2: a client that resets its stream right after sending the request (in the same
 * write) is gone when Verdict decides: the decision is recorded with delivered: false. An answered
 * request never is. (Over HTTP/1.1 a request is decided in the same turn its last byte arrives, so a
 * connection closed afterwards is recorded as answered; see docs/events.md.)
 */
describe('events: abandoned AuthZEN calls are recorded as not delivered (real HTTP/2)', function () {
  this.timeout(30_000);
  let dir: string;
  let server: VerdictServer;
  let session: http2.ClientHttp2Session;
  const records: DecisionRecord[] = [];

  before(async () => {
    dir = tempDir('abandoned-h2');
    const pki = makeTestPki(dir);
    mkdirSync(path.join(dir, 'policies'));
    writeFileSync(path.join(dir, 'policies', 'document.yaml'), POLICY);
    const configFile = path.join(dir, 'verdict.yaml');
    writeFileSync(configFile, stringify({ tls: { certFile: pki.server.cert, keyFile: pki.server.key }, http: { listen: '127.0.0.1:0' } }));
    const config = loadConfig({ configFile, policies: path.join(dir, 'policies'), listen: '127.0.0.1:0', noEvents: true }, { VERDICT_WORKERS: '1' });
    const sink: ClosableSink = { requiresDurability: false, record: (r) => void records.push(r), recordDurably: async (r) => (records.push(r), true), close: async () => undefined };
    server = new VerdictServer({ config, logger: createLogger('silent'), sink });
    await server.start();
    session = http2.connect(`https://127.0.0.1:${server.httpPort}`, { ca: readFileSync(pki.ca.cert), servername: 'localhost' });
  });

  after(async () => {
    session?.close();
    await server?.stop('test done');
    if (dir) removeDir(dir);
  });

  const body = (id: string) => JSON.stringify({ subject: { type: 'user', id: 'alice', properties: { roles: ['reader'] } }, action: { name: 'read' }, resource: { type: 'document', id } });

  it('a stream reset right after the request: delivered: false; an answered request: no delivered field', async () => {
    const ATTEMPTS = 20;
    for (let i = 0; i < ATTEMPTS; i++) {
      const req = session.request({ ':method': 'POST', ':path': '/access/v1/evaluation', 'content-type': 'application/json', 'x-request-id': `gone-${i}` });
      req.on('error', () => undefined);
      req.end(body(`g${i}`));
      req.close(http2.constants.NGHTTP2_CANCEL);
    }
    const answered = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/access/v1/evaluation', 'content-type': 'application/json', 'x-request-id': 'answered' });
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => resolve(text));
      req.on('error', reject);
      req.end(body('a'));
    });
    expect(JSON.parse(answered)).to.deep.include({ decision: true });
    await new Promise((r) => setTimeout(r, 200));
    const answeredRecord = records.find((r) => r.requestId === 'answered');
    expect(answeredRecord?.source).to.equal('authzen_evaluation');
    expect(answeredRecord?.delivered).to.equal(undefined);
    const gone = records.filter((r) => r.requestId.startsWith('gone-'));
    // A reset that reaches Verdict after it decided is recorded as answered (the absence of the field
    // means "answered", not "received"); one that reaches it before is recorded as not delivered.
    const undelivered = gone.filter((r) => r.delivered === false);
    expect(undelivered.length, `reset requests recorded as not delivered, of ${gone.length} decided`).to.be.greaterThan(0);
    for (const r of undelivered) expect(r.source).to.equal('authzen_evaluation');
  });
});
