/**
 * TLS, mutual TLS and PEP authentication on the AuthZEN port of a real `verdict serve --http`:
 * certificates made with openssl (the gateway tests' PKI), the mTLS caller visible to conditions and
 * checked against tls.allowedCallers, bearer tokens from a shared-secret file (rotated while serving)
 * and JWTs from a configured issuer, HTTP/2 over TLS, and certificate rotation.
 */
import http2 from 'node:http2';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, writeFile } from '../support/server-process.js';
import { makeLeaf, makeTestPki, type KeyPair, type TestPki } from '../gateway/helpers/pki.js';
import { AUDIENCE, ISSUER, JwksServer, signingKey, signToken, type SigningKey } from '../gateway/helpers/tokens.js';
import { post, request, type Target } from './helpers/client.js';
import { DOCUMENT_POLICY, startAuthzen, type AuthzenServer } from './helpers/server.js';

const EVALUATION = '/access/v1/evaluation';
const SECRET_A = 'a'.repeat(20) + '-first-shared-secret';
const SECRET_B = 'b'.repeat(20) + '-second-shared-secret';
const SECRET_C = 'c'.repeat(20) + '-rotated-shared-secret';
const OTHER_ISSUER = 'https://other-idp.example.test/';
const READ = { subject: { type: 'user', id: 'eve', properties: { roles: ['viewer'] } }, action: { name: 'read' }, resource: { type: 'document', id: 'd1' } };
const INSPECT = { ...READ, action: { name: 'inspect' } };

describe('http: TLS, mTLS callers and PEP tokens (real server process)', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let server: AuthzenServer;
  let jwks: JwksServer;
  let key: SigningKey;
  let tokenFile: string;

  const target = (client?: KeyPair): Target => ({ port: server.httpPort, tls: { ca: pki.ca.certPem, cert: client?.certPem, key: client?.keyPem } });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    dir = makeTempDir('authzen-tls');
    pki = makeTestPki(dir);
    const policies = path.join(dir, 'policies');
    writeFile(policies, 'document.yaml', DOCUMENT_POLICY);
    tokenFile = writeFile(dir, 'pep-tokens', `# PEP tokens\n${SECRET_A}\n\n${SECRET_B}\n`);
    jwks = new JwksServer();
    key = await signingKey('k1');
    jwks.keys = [key];
    const jwksUrl = await jwks.start();
    server = await startAuthzen({
      policies,
      config: {
        tls: { certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: pki.ca.cert, allowedCallers: ['spiffe://example.org/ns/edge/*', 'cn:batch-job.internal'], reloadIntervalMs: 100 },
        tokens: {
          issuers: [
            { issuer: ISSUER, audiences: [AUDIENCE], jwksUrl, allowInsecureJwksUrl: true, jwksCooldownSeconds: 0 },
            { issuer: OTHER_ISSUER, audiences: [AUDIENCE], jwksUrl, allowInsecureJwksUrl: true, jwksCooldownSeconds: 0 },
          ],
        },
        http: { requestTimeoutMs: 800, headersTimeoutMs: 400, auth: { bearerTokenFile: tokenFile, jwtIssuers: [ISSUER] } },
      },
    });
  });
  after(async () => {
    await cleanupServerProcesses();
    await jwks?.close();
  });

  describe('mutual TLS', () => {
    it('serves HTTPS and shows the SPIFFE caller to conditions', async () => {
      const read = await post(target(pki.envoy), EVALUATION, READ, bearer(SECRET_A));
      expect(read.status, read.text).to.equal(200);
      expect(read.json.decision).to.equal(true);
      const inspect = await post(target(pki.envoy), EVALUATION, INSPECT, bearer(SECRET_A));
      expect(inspect.json.decision).to.equal(true);
      expect(inspect.json.context.rule).to.equal('gateway-inspects');
    });

    it('an allowed caller named by its CN is served, and is not the SPIFFE caller', async () => {
      const read = await post(target(pki.cnOnly), EVALUATION, READ, bearer(SECRET_A));
      expect(read.json.decision).to.equal(true);
      const inspect = await post(target(pki.cnOnly), EVALUATION, INSPECT, bearer(SECRET_A));
      expect(inspect.json.decision).to.equal(false);
    });

    it('403 for a verified caller outside tls.allowedCallers, whatever the token', async () => {
      const a = await post(target(pki.outsider), EVALUATION, READ, bearer(SECRET_A));
      expect(a.status).to.equal(403);
      expect(a.json.error).to.deep.equal({ status: 403, code: 'PERMISSION_DENIED', message: 'caller spiffe://example.org/ns/shop/sa/cart may not use the AuthZEN API: not in tls.allowedCallers' });
    });

    it('refuses the handshake without a client certificate, or with one from an untrusted CA', async () => {
      for (const client of [undefined, pki.stranger]) {
        const failed = await post(target(client), EVALUATION, READ, bearer(SECRET_A)).then(
          () => false,
          () => true,
        );
        expect(failed, client ? 'stranger' : 'no certificate').to.equal(true);
      }
    });

    it('publishes https:// endpoints in the metadata', async () => {
      const a = await request(target(pki.envoy), { path: '/.well-known/authzen-configuration' });
      expect(a.json).to.deep.equal({
        policy_decision_point: `https://127.0.0.1:${server.httpPort}`,
        access_evaluation_endpoint: `https://127.0.0.1:${server.httpPort}/access/v1/evaluation`,
        access_evaluations_endpoint: `https://127.0.0.1:${server.httpPort}/access/v1/evaluations`,
      });
    });
  });

  describe('PEP bearer tokens', () => {
    it('401 with a Bearer challenge when the token is missing', async () => {
      const a = await post(target(pki.envoy), EVALUATION, READ);
      expect(a.status).to.equal(401);
      expect(a.headers['www-authenticate']).to.equal('Bearer realm="verdict"');
      expect(a.json.error.code).to.equal('UNAUTHENTICATED');
    });

    it('401 invalid_token for a token that is no shared secret and no valid JWT', async () => {
      for (const token of ['not-the-secret', SECRET_A.slice(0, -1), `${SECRET_A}x`]) {
        const a = await post(target(pki.envoy), EVALUATION, READ, bearer(token));
        expect(a.status, token).to.equal(401);
        expect(a.headers['www-authenticate']).to.match(/^Bearer realm="verdict", error="invalid_token"/);
      }
      const basic = await post(target(pki.envoy), EVALUATION, READ, { authorization: `Basic ${Buffer.from(`x:${SECRET_A}`).toString('base64')}` });
      expect(basic.status).to.equal(401);
      expect(basic.headers['www-authenticate']).to.contain('error="invalid_request"');
    });

    it('accepts every secret of the file', async () => {
      for (const secret of [SECRET_A, SECRET_B]) expect((await post(target(pki.envoy), EVALUATION, READ, bearer(secret))).status).to.equal(200);
    });

    it('accepts a JWT from an issuer in http.auth.jwtIssuers, and says why it refuses others', async () => {
      const good = await signToken(key, { sub: 'pep-gateway' });
      expect((await post(target(pki.envoy), EVALUATION, READ, bearer(good))).status).to.equal(200);
      const expired = await signToken(key, { sub: 'pep-gateway' }, { expiresIn: -120 });
      const e = await post(target(pki.envoy), EVALUATION, READ, bearer(expired));
      expect(e.status).to.equal(401);
      expect(e.json.error.message).to.equal('the token has expired');
      const other = await signToken(key, { sub: 'pep-gateway' }, { issuer: OTHER_ISSUER });
      const o = await post(target(pki.envoy), EVALUATION, READ, bearer(other));
      expect(o.status).to.equal(401);
      expect(o.json.error.message).to.equal('the token issuer may not call this API (http.auth.jwtIssuers)');
      const wrongAudience = await signToken(key, { sub: 'pep-gateway' }, { audience: 'another-api' });
      expect((await post(target(pki.envoy), EVALUATION, READ, bearer(wrongAudience))).status).to.equal(401);
    });

    it('leaves metadata and health open (no token needed)', async () => {
      expect((await request(target(pki.envoy), { path: '/.well-known/authzen-configuration' })).status).to.equal(200);
      expect((await request(target(pki.envoy), { path: '/readyz' })).status).to.equal(200);
    });

    it('picks up a rotated token file; a broken rewrite keeps the last good tokens', async () => {
      const replace = (text: string) => {
        writeFileSync(`${tokenFile}.tmp`, text);
        renameSync(`${tokenFile}.tmp`, tokenFile);
      };
      replace(`${SECRET_C}\n`);
      const deadline = Date.now() + 10_000;
      while ((await post(target(pki.envoy), EVALUATION, READ, bearer(SECRET_C))).status !== 200) {
        if (Date.now() > deadline) throw new Error('the rotated token was not accepted within 10 s');
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await post(target(pki.envoy), EVALUATION, READ, bearer(SECRET_A))).status).to.equal(401);
      replace('short\n');
      await server.proc.waitForLog(/holds no token|needs at least 32|has 5 characters/, 10_000);
      expect((await post(target(pki.envoy), EVALUATION, READ, bearer(SECRET_C))).status).to.equal(200);
    });
  });

  describe('HTTP/2 over TLS', () => {
    const h2 = (client: KeyPair) =>
      http2.connect(`https://localhost:${server.httpPort}`, { ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem });

    it('answers an evaluation over HTTP/2 with the mTLS caller, and echoes X-Request-ID', async () => {
      const session = h2(pki.envoy);
      try {
        const answer = await new Promise<{ status: number; rid: unknown; body: string }>((resolve, reject) => {
          const body = JSON.stringify(INSPECT);
          const req = session.request({ ':method': 'POST', ':path': EVALUATION, 'content-type': 'application/json', 'x-request-id': 'h2-req-1', ...bearer(SECRET_C) });
          let status = 0;
          let rid: unknown;
          let text = '';
          req.on('response', (h) => {
            status = Number(h[':status']);
            rid = h['x-request-id'];
          });
          req.on('data', (c: Buffer) => (text += c.toString()));
          req.on('end', () => resolve({ status, rid, body: text }));
          req.on('error', reject);
          req.end(body);
        });
        expect(answer.status, answer.body).to.equal(200);
        expect(answer.rid).to.equal('h2-req-1');
        expect(JSON.parse(answer.body)).to.deep.include({ decision: true });
        expect(JSON.parse(answer.body).context.rule).to.equal('gateway-inspects');
        expect(session.alpnProtocol).to.equal('h2');
      } finally {
        session.close();
      }
    });

    it('408 for an HTTP/2 request body that does not arrive within http.requestTimeoutMs', async () => {
      const session = h2(pki.envoy);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': EVALUATION, 'content-type': 'application/json', ...bearer(SECRET_C) });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          req.write('{"subject":');
        });
        expect(status).to.equal(408);
      } finally {
        session.destroy();
      }
    });
  });

  describe('certificate rotation', () => {
    it('serves a rotated server certificate to new connections', async () => {
      const presented = () =>
        new Promise<string>((resolve, reject) => {
          const s = tls.connect({ port: server.httpPort, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem, cert: pki.envoy.certPem, key: pki.envoy.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
            resolve(s.getPeerCertificate().serialNumber);
            s.end();
          });
          s.on('error', reject);
        });
      const before = await presented();
      const next = makeLeaf(dir, pki.ca, 'server-2', { cn: 'verdict', san: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'serverAuth' });
      writeFileSync(`${pki.server.key}.tmp`, next.keyPem);
      renameSync(`${pki.server.key}.tmp`, pki.server.key);
      writeFileSync(`${pki.server.cert}.tmp`, next.certPem);
      renameSync(`${pki.server.cert}.tmp`, pki.server.cert);
      await server.proc.waitForLog('tls certificates reloaded', 10_000);
      await new Promise((r) => setTimeout(r, 50));
      const after = await presented();
      expect(after).not.to.equal(before);
      const a = await post(target(pki.envoy), EVALUATION, READ, bearer(await signToken(key, { sub: 'pep-gateway' })));
      expect(a.status, a.text).to.equal(200);
    });
  });
});
