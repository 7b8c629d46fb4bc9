/**
 * `verdict serve` start-up failures, as a supervisor sees them: the process exits 1 and its last
 * line is one JSON line naming the cause (`verdict failed to start: 127.0.0.1:P is already in
 * use`), in a single process and with --workers 2, and every line it wrote, on stdout and stderr,
 * is JSON (grpc-js used to print `E No address added …` as plain text).
 */
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { policyDir } from '../grpc/fixtures.js';
import { cleanupServerProcesses, makeTempDir, runVerdict, startServer, writeFile, type RunResult } from '../support/server-process.js';

/** Every non-empty line of stdout and stderr, parsed; fails on a line that is not a JSON object. */
function jsonLines(run: { stdout: string; stderr: string }): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const [which, text] of [['stdout', run.stdout], ['stderr', run.stderr]] as const) {
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        expect.fail(`${which} line is not JSON: ${line}`);
      }
      expect(parsed, line).to.be.an('object');
      if (which === 'stdout') lines.push(parsed as Record<string, unknown>);
    }
  }
  return lines;
}

/** Exit 1; every line JSON; the last stdout line is the fatal start failure. Returns it. */
function expectFailedStart(run: RunResult): Record<string, unknown> {
  const context = `${run.stdout}\n${run.stderr}`;
  expect(run.code, context).to.equal(1);
  const lines = jsonLines(run);
  const last = lines.at(-1)!;
  expect(last, context).to.include({ level: 60 });
  expect(String(last.msg)).to.match(/^verdict failed to start: /);
  // Nothing else is fatal, and the server never claimed to serve.
  expect(lines.filter((l) => l.level === 60)).to.have.length(1);
  expect(lines.find((l) => l.msg === 'verdict serving')).to.equal(undefined);
  return last;
}

async function occupiedPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

describe('verdict serve: a failed start ends with one JSON line naming the cause', function () {
  this.timeout(40_000);
  let holder: Server | undefined;

  afterEach(async () => {
    holder?.close();
    holder = undefined;
    await cleanupServerProcesses();
  });

  for (const workers of [1, 2]) {
    it(`the port is in use (--workers ${workers}): "127.0.0.1:P is already in use" is the last line`, async () => {
      const busy = await occupiedPort();
      holder = busy.server;
      const run = await runVerdict(['serve', '--policies', policyDir(), '--listen', `127.0.0.1:${busy.port}`, '--no-events', '--workers', String(workers)]);
      const last = expectFailedStart(run);
      expect(last.msg).to.match(new RegExp(`^verdict failed to start: 127\\.0\\.0\\.1:${busy.port} is already in use`));
      expect(last.code).to.equal('ADDRESS_IN_USE');
      expect(String(last.err)).to.contain('EADDRINUSE');
      if (workers > 1) {
        // Reported by a worker, logged by the primary once every worker has gone.
        expect(last.worker).to.be.a('number');
        expect(run.stdout).to.not.contain('a worker could not start');
      }
    });
  }

  for (const workers of [1, 2]) {
    it(`the policy directory does not exist or does not load (--workers ${workers}): the last line names the directory and the first error`, async () => {
      const missing = path.join(makeTempDir('gone'), 'policies');
      const gone = expectFailedStart(await runVerdict(['serve', '--policies', missing, '--listen', '127.0.0.1:0', '--no-events', '--workers', String(workers)]));
      expect(gone).to.include({ code: 'POLICIES_REJECTED' });
      expect(gone.msg).to.equal(`verdict failed to start: policy set ${missing} rejected: ${missing}:1:1: FILE_UNREADABLE: cannot read policy directory: ENOENT: no such file or directory, stat '${missing}'`);

      const broken = policyDir({ 'document.yaml': 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: document\nrules:\n  - name: r\n    actions: [read]\n    effect: permit\n  - name: s\n    actions: [read]\n    effect: allow\n    when: "subject.id =="\n' });
      const rejected = expectFailedStart(await runVerdict(['serve', '--policies', broken, '--listen', '127.0.0.1:0', '--no-events', '--workers', String(workers)]));
      expect(rejected.msg).to.match(new RegExp(`^verdict failed to start: policy set ${broken} rejected \\(2 errors, all logged above; the first:\\) document\\.yaml:7:\\d+: INVALID_EFFECT`));
    });
  }

  it('the spool directory is a file (--workers 1 and 2): the last line names events.spoolDir', async () => {
    const file = writeFile(makeTempDir('spool'), 'not-a-dir', 'x');
    // NATS is not needed to fail: the spool opens first (an unused port, so no stream is touched).
    const runs = await Promise.all(
      [1, 2].map((workers) => runVerdict(['serve', '--policies', policyDir(), '--listen', '127.0.0.1:0', '--nats', 'nats://127.0.0.1:9', '--spool-dir', file, '--workers', String(workers)])),
    );
    for (const run of runs) {
      const last = expectFailedStart(run);
      expect(last.code).to.equal('SPOOL_UNUSABLE');
      expect(last.msg).to.match(new RegExp(`^verdict failed to start: events\\.spoolDir ${file}(/w\\d)?: cannot open the decision spool \\(`));
    }
  });

  it('a TLS file that does not exist: exit 2, and the last line names the file', async () => {
    const config = writeFile(makeTempDir('config'), 'verdict.yaml', 'tls:\n  certFile: /nonexistent/server.pem\n  keyFile: /nonexistent/server.key\n');
    const run = await runVerdict(['serve', '--policies', policyDir(), '--listen', '127.0.0.1:0', '--no-events', '--config', config]);
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stderr.trim().split('\n').at(-1)).to.match(/tls: cannot read certFile \/nonexistent\/server\.pem/);
    expect(run.stdout).to.equal('');
  });

  it('a server that starts, answers and stops (--workers 2) writes only JSON lines', async () => {
    const server = await startServer({ policies: policyDir(), workers: 2 });
    const request = writeFile(makeTempDir('requests'), 'r.json', JSON.stringify({ subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: 'd1' } }));
    const check = await runVerdict(['check', '--server', server.address, '--request', request]);
    expect(check.code, check.stderr).to.equal(0);
    server.kill('SIGHUP');
    await server.waitForLog('SIGHUP: reloading policies');
    const exit = await server.stop('SIGTERM');
    expect(exit.code).to.equal(0);
    const lines = jsonLines(server);
    expect(lines.length).to.be.greaterThan(5);
    expect(lines.at(-1)).to.include({ msg: 'verdict stopped' });
  });
});
