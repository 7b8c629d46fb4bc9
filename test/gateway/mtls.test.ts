/**
 * Mutual TLS for callers, against a real `verdict serve`: certificates made with openssl, the
 * caller's SPIFFE ID visible to conditions as `caller`, the allowlist, and certificate reload.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { credentials, status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { call, callError, envoyCheck, extAuthzClient, verdictClient, type AnyClient } from './helpers/envoy.js';
import { ENVOY_ID, makeLeaf, makeTestPki, OUTSIDER_ID, type KeyPair, type TestPki } from './helpers/pki.js';
import { removeDir, startServe, tempDir, type ServeProcess } from './helpers/server.js';

const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
  - name: only-through-the-gateway
    description: inspect is allowed only when the gateway itself asks
    actions: [inspect]
    effect: allow
    when: caller.kind == "spiffe" && caller.id == "${ENVOY_ID}"
`;

const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
routes:
  - match: GET /documents/{id}
    action: read
    resource: { type: document, id: "{id}" }
`;

/** The server certificate names localhost (and 127.0.0.1); SNI must not be an IP address. */
const TLS_NAME = { 'grpc.ssl_target_name_override': 'localhost' };

const READ = { subject: { id: 'alice', roles: ['employee'] }, action: { name: 'read' }, resource: { type: 'document', id: 'd1' } };
const INSPECT = { ...READ, action: { name: 'inspect' } };

describe('gateway: mutual TLS for callers (real server process)', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let server: ServeProcess;
  const clients: AnyClient[] = [];

  const tlsCreds = (client?: KeyPair) =>
    client ? credentials.createSsl(pki.ca.certPem, client.keyPem, client.certPem) : credentials.createSsl(pki.ca.certPem);
  const verdict = (client?: KeyPair) => {
    const c = verdictClient(server.address, tlsCreds(client), TLS_NAME);
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = tempDir('mtls');
    pki = makeTestPki(dir);
    const policies = path.join(dir, 'policies');
    mkdirSync(policies);
    writeFileSync(path.join(policies, 'document.yaml'), POLICY);
    writeFileSync(path.join(dir, 'routes.yaml'), ROUTES);
    server = await startServe(dir, {
      policies,
      logDecisions: true,
      tls: {
        certFile: pki.server.cert,
        keyFile: pki.server.key,
        clientCaFile: pki.ca.cert,
        allowedCallers: ['spiffe://example.org/ns/edge/*', 'batch-job.internal'],
        reloadIntervalMs: 100,
      },
      gateway: { routesFile: path.join(dir, 'routes.yaml') },
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    if (dir) removeDir(dir);
  });

  it('serves a caller with a good certificate and shows its SPIFFE ID to conditions as caller', async () => {
    const c = verdict(pki.envoy);
    expect((await call(c, 'Check', READ)).allowed).to.equal(true);
    const inspected = await call(c, 'Check', INSPECT);
    expect(inspected.allowed).to.equal(true);
    expect(inspected.rule).to.equal('only-through-the-gateway');
  });

  it('serves Envoy ext_authz over the same mTLS port', async () => {
    const c = extAuthzClient(server.address, tlsCreds(pki.envoy), TLS_NAME);
    clients.push(c);
    const r = await call(c, 'Check', envoyCheck({ path: '/documents/d1', principal: 'spiffe://example.org/ns/docs/sa/reader' }));
    // the peer subject has role "service" only: a policy deny, decided for the gateway as caller
    expect(r.deniedResponse?.status?.code).to.equal('Forbidden');
  });

  it('identifies a certificate without URI SAN by its subject CN (kind x509)', async () => {
    const c = verdict(pki.cnOnly);
    expect((await call(c, 'Check', READ)).allowed).to.equal(true);
    const inspected = await call(c, 'Check', INSPECT);
    expect(inspected.allowed ?? false).to.equal(false);
    const line = await server.waitFor((l) => l.decisionId === inspected.decisionId);
    expect(line.reason).to.equal('NO_MATCHING_RULE');
  });

  it('refuses a caller outside the allowlist with PERMISSION_DENIED naming it', async () => {
    const err = await callError(verdict(pki.outsider), 'Check', READ);
    expect(err.code).to.equal(status.PERMISSION_DENIED);
    expect(err.details).to.contain(OUTSIDER_ID);
  });

  it('refuses a certificate from an unknown CA at the handshake', async () => {
    const err = await callError(verdict(pki.stranger), 'Check', READ);
    expect(err.code).to.equal(status.UNAVAILABLE);
  });

  it('refuses a client without a certificate at the handshake', async () => {
    const err = await callError(verdict(), 'Check', READ);
    expect(err.code).to.equal(status.UNAVAILABLE);
  });

  it('refuses plaintext', async () => {
    const c = verdictClient(server.address, credentials.createInsecure());
    clients.push(c);
    const err = await callError(c, 'Check', READ);
    expect(err.code).to.equal(status.UNAVAILABLE);
  });

  /** The serial number of the certificate the server presents to a new connection. */
  function presentedSerial(): Promise<string> {
    const [host, port] = [server.address.slice(0, server.address.lastIndexOf(':')), Number(server.address.split(':').pop())];
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host, port, ca: pki.ca.certPem, cert: pki.envoy.certPem, key: pki.envoy.keyPem, ALPNProtocols: ['h2'], servername: 'localhost' }, () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.end();
        resolve(serial);
      });
      socket.once('error', reject);
    });
  }

  it('reloads a rotated server certificate; a broken rotation keeps the last good one serving', async () => {
    const before = await presentedSerial();
    const next = makeLeaf(dir, pki.ca, 'server-2', { cn: 'verdict', san: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'serverAuth' });
    const stage = (file: string, content: Buffer) => {
      writeFileSync(`${file}.tmp`, content);
      renameSync(`${file}.tmp`, file);
    };
    // broken: the new certificate with the old key
    stage(pki.server.cert, next.certPem);
    await server.waitFor(/does not belong to the certificate/);
    expect(await presentedSerial()).to.equal(before);
    expect((await call(verdict(pki.envoy), 'Check', READ)).allowed).to.equal(true);
    // complete: the matching key arrives
    stage(pki.server.key, next.keyPem);
    await server.waitFor('tls certificates reloaded');
    const after = await presentedSerial();
    expect(after).not.to.equal(before);
    expect((await call(verdict(pki.envoy), 'Check', READ)).allowed).to.equal(true);
  });
});
