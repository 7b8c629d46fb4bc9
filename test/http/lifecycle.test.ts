/**
 * The AuthZEN listener through a server's life, with real `verdict serve` processes: a cluster of
 * two workers sharing the HTTP port, hot reload, graceful and forced shutdown with a request in
 * flight, the metadata document's URLs, and configuration mistakes refused at start.
 */
import net from 'node:net';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, replaceFile, runVerdict, serveArgs, spawnVerdict, writeFile } from '../support/server-process.js';
import { post, rawExchange, request, type Target } from './helpers/client.js';
import { CERTIFICATION_POLICY, startAuthzen } from './helpers/server.js';

const EVALUATION = '/access/v1/evaluation';
const READ = { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } };

function policiesDir(text = CERTIFICATION_POLICY): string {
  const dir = makeTempDir('authzen-life');
  writeFile(dir, 'record.yaml', text);
  return dir;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** Opens a connection and sends a request whose body stops halfway; `finish()` sends the rest. */
function halfSent(port: number): { finish(): void; answer: Promise<string>; socket: net.Socket } {
  const body = JSON.stringify(READ);
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.write(`POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
  let text = '';
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => undefined);
  });
  return { finish: () => socket.write(body.slice(20)), answer, socket };
}

describe('http: the AuthZEN listener through start, reload, workers and shutdown (real server processes)', function () {
  this.timeout(40_000);
  afterEach(cleanupServerProcesses);

  it('a cluster of two workers shares the HTTP port and both answer', async () => {
    const server = await startAuthzen({ policies: policiesDir(), workers: 2, config: { logDecisions: true } });
    const target: Target = { port: server.httpPort };
    for (let i = 0; i < 16; i++) {
      const a = await post(target, EVALUATION, READ);
      expect(a.json.decision).to.equal(true);
    }
    const workers = new Set(server.proc.logs.filter((l) => l.msg === 'decision' && l.source === 'authzen_evaluation').map((l) => l.worker));
    expect([...workers].sort()).to.deep.equal([0, 1]);
    expect((await request(target, { path: '/readyz' })).json).to.deep.equal({ status: 'SERVING' });
  });

  it('hot reload changes the answers; a batch is decided by one revision', async () => {
    const dir = policiesDir();
    const server = await startAuthzen({ policies: dir, config: { reload: { debounceMs: 20, pollIntervalMs: 100 } } });
    const target: Target = { port: server.httpPort };
    const before = await post(target, EVALUATION, READ);
    expect(before.json.decision).to.equal(true);
    replaceFile(dir, 'record.yaml', CERTIFICATION_POLICY.replace('actions: [read]', 'actions: [list]'));
    await server.proc.waitForLog('policy set reloaded');
    const after = await post(target, EVALUATION, READ);
    expect(after.json.decision).to.equal(false);
    expect(after.json.context.revision).not.to.equal(before.json.context.revision);
    const batch = await post(target, '/access/v1/evaluations', { ...READ, evaluations: [{}, { action: { name: 'list' } }] });
    expect(batch.json.evaluations.map((e: { decision: boolean }) => e.decision)).to.deep.equal([false, true]);
    expect(new Set(batch.json.evaluations.map((e: { context: { revision: string } }) => e.context.revision)).size).to.equal(1);
  });

  it('SIGTERM: the port closes, a request in flight is answered (Connection: close), and the stop is graceful', async () => {
    const server = await startAuthzen({ policies: policiesDir(), config: { shutdown: { graceMs: 10_000 } } });
    const inFlight = halfSent(server.httpPort);
    await new Promise((r) => setTimeout(r, 150));
    server.proc.kill('SIGTERM');
    await server.proc.waitForLog('verdict stopping');
    await new Promise((r) => setTimeout(r, 100));
    expect(await refused(server.httpPort)).to.equal(true);
    inFlight.finish();
    const text = await inFlight.answer;
    expect(text).to.match(/^HTTP\/1\.1 200 OK/);
    expect(text.toLowerCase()).to.contain('connection: close');
    expect(text).to.contain('"decision":true');
    const stopped = await server.proc.waitForLog('verdict stopped');
    expect(stopped.shutdown).to.equal('graceful');
    expect((await server.proc.exitWithin(10_000)).code).to.equal(0);
  });

  it('SIGTERM: a request still unfinished after shutdown.graceMs is cut and the stop says forced', async () => {
    const server = await startAuthzen({ policies: policiesDir(), config: { shutdown: { graceMs: 300 } } });
    const stuck = halfSent(server.httpPort);
    await new Promise((r) => setTimeout(r, 150));
    server.proc.kill('SIGTERM');
    expect(await stuck.answer).to.equal('');
    expect((await server.proc.waitForLog('verdict stopped')).shutdown).to.equal('forced');
    expect((await server.proc.exitWithin(10_000)).code).to.equal(0);
  });

  describe('metadata', () => {
    it('uses http.publicBaseUrl, also under the well-known URI with its path appended', async () => {
      const server = await startAuthzen({ policies: policiesDir(), config: { http: { publicBaseUrl: 'https://pdp.example.com/authz/' } } });
      const expected = {
        policy_decision_point: 'https://pdp.example.com/authz',
        access_evaluation_endpoint: 'https://pdp.example.com/authz/access/v1/evaluation',
        access_evaluations_endpoint: 'https://pdp.example.com/authz/access/v1/evaluations',
      };
      for (const path of ['/.well-known/authzen-configuration', '/.well-known/authzen-configuration/authz']) {
        const a = await request({ port: server.httpPort }, { path, headers: { host: 'elsewhere:1' } });
        expect(a.status, path).to.equal(200);
        expect(a.headers['content-type']).to.equal('application/json');
        expect(a.json).to.deep.equal(expected);
      }
    });

    it('without it, follows the Host the client used, and ignores a Host that is no authority', async () => {
      const server = await startAuthzen({ policies: policiesDir() });
      const fromHost = await request({ port: server.httpPort }, { path: '/.well-known/authzen-configuration', headers: { host: 'PDP.internal:8443' } });
      expect(fromHost.json.policy_decision_point).to.equal('http://pdp.internal:8443');
      expect(fromHost.json.access_evaluation_endpoint).to.equal('http://pdp.internal:8443/access/v1/evaluation');
      expect(fromHost.headers.vary).to.equal('host');
      expect(fromHost.json).not.to.have.any.keys('search_subject_endpoint', 'search_resource_endpoint', 'search_action_endpoint');
      const raw = await rawExchange(server.httpPort, ['GET /.well-known/authzen-configuration HTTP/1.1\r\nHost: evil.example/x?y\r\nConnection: close\r\n\r\n'], { waitMs: 3_000 });
      expect(raw.text).to.contain(`"policy_decision_point":"http://127.0.0.1:${server.httpPort}"`);
    });
  });

  describe('configuration mistakes stop the start', () => {
    const cases: [string, Record<string, unknown>, string[], RegExp][] = [
      ['a listen address that is no HOST:PORT', {}, ['--http', 'localhost'], /http\.listen: "localhost" must be HOST:PORT/],
      ['a public base URL with a query', { http: { listen: '127.0.0.1:0', publicBaseUrl: 'https://pdp.example.com/?x=1' } }, [], /http\.publicBaseUrl: .* must have no query or fragment/],
      ['a JWT issuer that is not in tokens.issuers', { http: { listen: '127.0.0.1:0', auth: { jwtIssuers: ['https://nobody.example/'] } } }, [], /http\.auth\.jwtIssuers: "https:\/\/nobody\.example\/" is not one of tokens\.issuers/],
      ['a header timeout longer than the request timeout', { http: { listen: '127.0.0.1:0', headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }, [], /http\.headersTimeoutMs: 5000 must not exceed http\.requestTimeoutMs/],
      ['an unknown http setting', { http: { listen: '127.0.0.1:0', maxBodyBytes: 5 } }, [], /http\.maxBodyBytes: unknown setting/],
      ['a missing bearer token file', { http: { listen: '127.0.0.1:0', auth: { bearerTokenFile: '/nonexistent/verdict-tokens' } } }, [], /http\.auth\.bearerTokenFile: cannot read \/nonexistent\/verdict-tokens \(ENOENT\)/],
    ];
    // All refused starts run side by side: each is a whole `verdict serve` process.
    // (awaited here: the afterEach cleanup would kill processes still running)
    const results = new Map<string, { code: number | null; stderr: string }>();
    before(async () => {
      const runs = cases.map(([name, config, args]) => [name, runVerdict(serveArgs({ policies: policiesDir(), config, args, listen: '127.0.0.1:0' }))] as const);
      const file = writeFile(makeTempDir('tokens'), 'tokens', 'too-short\n');
      const short = runVerdict(serveArgs({ policies: policiesDir(), config: { http: { listen: '127.0.0.1:0', auth: { bearerTokenFile: file } } } }));
      for (const [name, run] of [...runs, ['short', short] as const]) results.set(name, await run);
    });
    for (const [name, , , message] of cases) {
      it(name, async () => {
        const r = await results.get(name)!;
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr).to.match(message);
      });
    }

    it('a bearer token file with a short secret', async () => {
      const r = await results.get('short')!;
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain('has 9 characters; a shared secret needs at least 32');
    });

    it('an HTTP port already in use: exit 1, the last line naming the HTTP address', async () => {
      const blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as net.AddressInfo).port;
      try {
        const proc = spawnVerdict(serveArgs({ policies: policiesDir(), args: ['--http', `127.0.0.1:${port}`] }));
        const status = await proc.exitWithin(15_000);
        expect(status.code).to.equal(1);
        const last = proc.logs[proc.logs.length - 1]!;
        expect(last.code).to.equal('ADDRESS_IN_USE');
        expect(last.msg).to.equal(`verdict failed to start: 127.0.0.1:${port} is already in use (another process is listening on it); choose another --http address or stop that process`);
        expect(last.err).to.match(new RegExp(`http\\.listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      } finally {
        blocker.close();
      }
    });
  });
});
