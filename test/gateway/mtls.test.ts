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
  - name: the-batch-job
    description: a caller known by its certificate CN
    actions: [batch]
    effect: allow
    when: caller.kind == "cn" && caller.id == "cn:batch-job.internal"
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

  interface Impostors {
    readonly docsReader: KeyPair;
    readonly spoofedCn: KeyPair;
    readonly dotDot: KeyPair;
    readonly percent: KeyPair;
    readonly lookalike: KeyPair;
    readonly upperCase: KeyPair;
    readonly twoUris: KeyPair;
  }
  let spoof: Impostors;

  before(async () => {
    dir = tempDir('mtls');
    pki = makeTestPki(dir);
    const client = (name: string, cn: string, san?: string[]) => makeLeaf(dir, pki.ca, name, { cn, ...(san ? { san } : {}), usage: 'clientAuth' });
    spoof = {
      docsReader: client('docs-reader', 'reader', ['URI:spiffe://example.org/ns/docs/sa/reader']),
      spoofedCn: client('spoofed-cn', ENVOY_ID),
      dotDot: client('dot-dot', 'dot-dot', ['URI:spiffe://example.org/ns/docs/../edge/x']),
      percent: client('percent', 'percent', ['URI:spiffe://example.org/ns/docs/%2e%2e/edge/x']),
      lookalike: client('lookalike', 'lookalike', ['URI:spiffe://example.org/ns/docsx/sa/y']),
      upperCase: client('upper', 'upper', ['URI:spiffe://EXAMPLE.org/ns/edge/sa/envoy']),
      twoUris: client('two-uris', 'two-uris', [`URI:${ENVOY_ID}`, 'URI:https://envoy.example.org/']),
    };
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
        allowedCallers: ['spiffe://example.org/ns/edge/*', 'spiffe://example.org/ns/docs/*', 'cn:batch-job.internal'],
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

  it('identifies a certificate without URI SAN by its subject CN (kind cn, id "cn:<CN>"), allowed by a cn: entry', async () => {
    const c = verdict(pki.cnOnly);
    expect((await call(c, 'Check', READ)).allowed).to.equal(true);
    const inspected = await call(c, 'Check', INSPECT);
    expect(inspected.allowed ?? false).to.equal(false);
    const line = await server.waitFor((l) => l.decisionId === inspected.decisionId);
    expect(line.reason).to.equal('NO_MATCHING_RULE');
    const batch = await call(c, 'Check', { ...READ, action: { name: 'batch' } });
    expect(batch.rule).to.equal('the-batch-job');
  });

  it('matches a SPIFFE prefix entry on whole segments: ns/docs/* admits ns/docs/sa/reader', async () => {
    expect((await call(verdict(spoof.docsReader), 'Check', READ)).allowed).to.equal(true);
  });

  // Certificates signed by the trusted CA that must not pass as an allowed SPIFFE caller.
  const impostors: [string, (k: Impostors) => KeyPair, string][] = [
    ['a subject CN spelling an allowed SPIFFE ID (no URI SAN)', (k) => k.spoofedCn, `caller cn:${ENVOY_ID} may not use`],
    ['a URI SAN climbing out of ns/docs/ with ".."', (k) => k.dotDot, 'caller cn:dot-dot may not use'],
    ['a URI SAN with percent-encoded dots', (k) => k.percent, 'caller cn:percent may not use'],
    ['a URI SAN in ns/docsx/, a prefix of ns/docs/ but not a segment of it', (k) => k.lookalike, 'caller spiffe://example.org/ns/docsx/sa/y may not use'],
    ['a URI SAN with an upper-case trust domain', (k) => k.upperCase, 'caller cn:upper may not use'],
    ['a SPIFFE ID beside a second URI SAN (not an X.509-SVID)', (k) => k.twoUris, 'caller cn:two-uris may not use'],
  ];
  for (const [what, cert, details] of impostors) {
    it(`refuses a certificate with ${what}`, async () => {
      const err = await callError(verdict(cert(spoof)), 'Check', READ);
      expect(err.code).to.equal(status.PERMISSION_DENIED);
      expect(err.details).to.contain(details);
    });
  }

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
