/** The CLI around the gRPC service: `verdict serve` config errors, and `verdict check --server`. */
import path from 'node:path';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, runVerdict, startServer, writeFile } from '../support/server-process.js';
import { closeClients, policyDir, UUID } from './fixtures.js';

describe('verdict CLI with the gRPC service (real processes)', function () {
  this.timeout(30_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  describe('verdict serve --config with a bad file exits 2 naming the setting', () => {
    const cases: [string, string, RegExp[]][] = [
      ['an unknown top-level setting', 'listen: 127.0.0.1:0\nlisten_port: 5\n', [/listen_port: unknown setting/]],
      ['an unknown nested setting', 'limits:\n  maxAttributeDepth: 3\n  maxWidgets: 7\n', [/limits\.maxWidgets: unknown setting/]],
      ['a bad listen value', 'listen: "localhost"\n', [/listen: "localhost" must be HOST:PORT/]],
      ['a port out of range', 'listen: "127.0.0.1:70000"\n', [/listen: "127\.0\.0\.1:70000" must be HOST:PORT/]],
      ['a limit out of range, and a second problem', 'limits:\n  maxBatchItems: 0\nlogLevel: loud\n', [/limits\.maxBatchItems: must be an integer from 1/, /logLevel: "loud" must be one of/]],
      ['not a mapping', '- listen\n- 127.0.0.1:0\n', [/must hold a YAML mapping/]],
    ];
    for (const [what, yaml, expected] of cases) {
      it(what, async () => {
        const config = writeFile(makeTempDir('config'), 'bad.yaml', yaml);
        // No --listen flag: the file's value is the one that counts.
        const run = await runVerdict(['serve', '--config', config, '--policies', policyDir(), '--no-events']);
        expect(run.code, run.stderr + run.stdout).to.equal(2);
        expect(run.stderr).to.contain('invalid configuration');
        for (const re of expected) expect(run.stderr).to.match(re);
        expect(run.logs.find((l) => l.msg === 'verdict serving')).to.equal(undefined);
      });
    }

    it('a --listen flag that is not HOST:PORT, and a config file that does not exist', async () => {
      const badListen = await runVerdict(['serve', '--policies', policyDir(), '--listen', '127.0.0.1', '--no-events']);
      expect(badListen.code).to.equal(2);
      expect(badListen.stderr).to.match(/listen: "127\.0\.0\.1" must be HOST:PORT/);
      const missing = path.join(makeTempDir('config'), 'absent.yaml');
      const noFile = await runVerdict(['serve', '--config', missing, '--policies', policyDir(), '--no-events']);
      expect(noFile.code).to.equal(2);
      expect(noFile.stderr).to.contain(`config file ${missing}: cannot read it`);
    });
  });

  describe('verdict check --server HOST:PORT --request FILE', () => {
    it('prints the decision as JSON: exit 0 for allow, 3 for deny, 2 for an invalid request', async () => {
      const server = await startServer({ policies: policyDir() });
      const dir = makeTempDir('requests');
      const allowFile = writeFile(dir, 'allow.json', JSON.stringify({ subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: 'd1' } }));
      const denyFile = writeFile(dir, 'deny.json', JSON.stringify({ subject: { id: 'alice', roles: ['employee'], attributes: { suspended: true } }, action: 'read', resource: { type: 'document', id: 'd1' } }));
      const invalidFile = writeFile(dir, 'invalid.json', JSON.stringify({ subject: { id: 'alice' }, action: 'read', resource: { type: '' } }));

      const allow = await runVerdict(['check', '--server', server.address, '--request', allowFile]);
      expect(allow.code, allow.stderr).to.equal(0);
      const allowed = JSON.parse(allow.stdout) as Record<string, unknown>;
      expect(allowed).to.include({ decision: 'EFFECT_ALLOW', allowed: true, reason: 'RULE_ALLOW', policy: 'document.yaml', rule: 'employees-read' });
      expect(allowed.decisionId).to.match(UUID);
      expect(allowed.revision).to.equal(server.findLog('verdict serving')!.revision);

      const deny = await runVerdict(['check', '--server', server.address, '--request', denyFile, '--explain']);
      expect(deny.code, deny.stderr).to.equal(3);
      const denied = JSON.parse(deny.stdout) as Record<string, unknown>;
      expect(denied).to.include({ decision: 'EFFECT_DENY', reason: 'RULE_DENY', rule: 'deny-suspended' });
      expect(denied.allowed ?? false).to.equal(false);
      expect(denied.explanation).to.be.an('array').that.is.not.empty;

      const invalid = await runVerdict(['check', '--server', server.address, '--request', invalidFile]);
      expect(invalid.code).to.equal(2);
      expect(invalid.stderr).to.match(/^invalid request: resource\.type: /);
      expect(invalid.stdout).to.equal('');
    });

    it('exits 1 when no server answers', async () => {
      const server = await startServer({ policies: policyDir() });
      const address = server.address;
      await server.stop('SIGTERM');
      const file = writeFile(makeTempDir('requests'), 'r.json', JSON.stringify({ subject: { id: 'a' }, action: 'read', resource: { type: 'document' } }));
      const run = await runVerdict(['check', '--server', address, '--request', file]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.match(/^check failed: /);
    });
  });
});
