/**
 * The HTTP listener's limits against a real `verdict serve --http` process and raw sockets: body
 * size (413, declared and streamed), compression (415), header and request timeouts (408), and the
 * connection cap. Small limits are configured so each crossing takes well under a second.
 */
import net from 'node:net';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, writeFile } from '../support/server-process.js';
import { post, rawExchange, request, type Target } from './helpers/client.js';
import { CERTIFICATION_POLICY, startAuthzen, type AuthzenServer } from './helpers/server.js';

const EVALUATION = '/access/v1/evaluation';
const OK_BODY = { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } };

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Resolves true when the server closes the socket within `ms` (without sending anything). */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('http: limits of the AuthZEN listener (real server process)', function () {
  this.timeout(30_000);
  let server: AuthzenServer;
  let target: Target;

  before(async () => {
    const policies = makeTempDir('authzen-limits');
    writeFile(policies, 'record.yaml', CERTIFICATION_POLICY);
    server = await startAuthzen({
      policies,
      config: { limits: { maxMessageBytes: 2048 }, http: { headersTimeoutMs: 300, requestTimeoutMs: 600, maxConnections: 4 } },
    });
    target = { port: server.httpPort };
  });
  after(cleanupServerProcesses);

  it('a declared body over limits.maxMessageBytes is 413 before it is read, and the connection closes', async () => {
    const r = await rawExchange(server.httpPort, [`POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"subject":`], { waitMs: 3_000 });
    expect(r.text).to.match(/^HTTP\/1\.1 413 /);
    expect(r.text).to.contain('"code":"BODY_TOO_LARGE"').and.to.contain('limits.maxMessageBytes');
    expect(r.text.toLowerCase()).to.contain('connection: close');
    expect(r.closed).to.equal(true);
  });

  it('a chunked body that grows over the limit is 413', async () => {
    const chunk = `${(1500).toString(16)}\r\n${'x'.repeat(1500)}\r\n`;
    const r = await rawExchange(server.httpPort, [`POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk, chunk], { gapMs: 20, waitMs: 3_000 });
    expect(r.text).to.match(/^HTTP\/1\.1 413 /);
    expect(r.closed).to.equal(true);
  });

  it('a body just under the limit is decided', async () => {
    const padded = { ...OK_BODY, context: { pad: 'p'.repeat(1800) } };
    expect(JSON.stringify(padded).length).to.be.below(2048);
    const a = await post(target, EVALUATION, padded);
    expect(a.status, a.text).to.equal(200);
  });

  it('a compressed body is 415', async () => {
    const a = await request(target, { method: 'POST', path: EVALUATION, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: JSON.stringify(OK_BODY) });
    expect(a.status).to.equal(415);
    expect(a.json.error.code).to.equal('UNSUPPORTED_CONTENT_ENCODING');
  });

  it('headers that do not arrive within http.headersTimeoutMs: 408 and the connection closes', async () => {
    const r = await rawExchange(server.httpPort, [`POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\n`], { waitMs: 5_000 });
    expect(r.text).to.match(/^HTTP\/1\.1 408 /);
    expect(r.closed).to.equal(true);
    expect(r.elapsedMs).to.be.below(4_000);
  });

  it('a body that does not arrive within http.requestTimeoutMs: 408 and the connection closes', async () => {
    const r = await rawExchange(server.httpPort, [`POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"subject":`], { waitMs: 5_000 });
    expect(r.text).to.match(/^HTTP\/1\.1 408 /);
    expect(r.closed).to.equal(true);
  });

  it('connections over http.maxConnections are closed at once; freed slots take new ones', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => connect(server.httpPort)));
    const heldClosed = held.map(() => false);
    held.forEach((s, i) => s.once('close', () => (heldClosed[i] = true)));
    // Held connections are open and idle: the fifth is closed, while the four older ones (which the
    // header timeout would close first) are still open, so the cap closed it.
    const extra = await connect(server.httpPort);
    expect(await closedWithin(extra, 2_000)).to.equal(true);
    expect(heldClosed).to.deep.equal([false, false, false, false]);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const a = await post(target, EVALUATION, OK_BODY);
    expect(a.status).to.equal(200);
  });
});
