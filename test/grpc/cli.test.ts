/** The CLI around the gRPC service: `verdict serve` config errors, and `verdict check --server`. */
import path from 'node:path';
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, REPO_ROOT, runVerdict, startServer, writeFile } from '../support/server-process.js';
import { closeClients, policyDir, UUID } from './fixtures.js';

/** The keys of `verdict check` output, in order (docs/api.md "CLI decision output"). */
const DECISION_KEYS = ['decision', 'allowed', 'policy', 'rule', 'reason', 'revision', 'decisionId', 'errors', 'schemaProblems'];

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

    it('prints the same JSON as a local check --policies for the same request: names, values, allowed, errors and explanation', async () => {
      // The example set has derived roles (traces list them); the fixture set has a rule whose
      // condition errors on a string count (errors non-empty, reason NO_MATCHING_RULE).
      const examples = path.join(REPO_ROOT, 'policies');
      const fixture = policyDir();
      const dir = makeTempDir('requests');
      const cases: [string, string, string[]][] = [
        [examples, path.join(REPO_ROOT, 'examples/requests/alice-edits-her-draft.json'), ['--explain']],
        [examples, path.join(REPO_ROOT, 'examples/requests/bob-deletes-legal-hold.json'), ['--explain']],
        [fixture, writeFile(dir, 'count.json', JSON.stringify({ subject: { id: 'a', roles: ['employee'] }, action: 'count', resource: { type: 'document', attributes: { count: 'many' } } })), ['--explain']],
        [fixture, writeFile(dir, 'read.json', JSON.stringify({ subject: { id: 'a', roles: ['employee'] }, action: 'read', resource: { type: 'document' } })), []],
      ];
      const started = await Promise.all([examples, fixture].map((policies) => startServer({ policies })));
      const servers = new Map([examples, fixture].map((policies, i) => [policies, started[i]!.address]));
      const seen = new Set<string>();
      for (const [policies, request, extra] of cases) {
        const [local, remote] = await Promise.all([
          runVerdict(['check', '--policies', policies, '--request', request, ...extra]),
          runVerdict(['check', '--server', servers.get(policies)!, '--request', request, ...extra]),
        ]);
        const what = `${path.basename(request)} ${extra.join(' ')}`;
        expect(remote.code, `${what}: ${remote.stderr}`).to.equal(local.code);
        expect([0, 3], what).to.include(local.code);
        const l = JSON.parse(local.stdout) as Record<string, unknown>;
        const r = JSON.parse(remote.stdout) as Record<string, unknown>;
        expect(Object.keys(l), what).to.deep.equal(extra.includes('--explain') ? [...DECISION_KEYS, 'explanation'] : DECISION_KEYS);
        expect(Object.keys(r), what).to.deep.equal(Object.keys(l));
        expect(l.decisionId).to.equal('');
        expect(r.decisionId).to.match(UUID);
        expect({ ...r, decisionId: '' }, what).to.deep.equal(l);
        expect(l.allowed).to.equal(local.code === 0);
        expect(l.decision).to.equal(local.code === 0 ? 'EFFECT_ALLOW' : 'EFFECT_DENY');
        seen.add(`${String(l.reason)}${(l.errors as unknown[]).length > 0 ? '+errors' : ''}`);
        for (const t of (l.explanation ?? []) as Record<string, unknown>[]) {
          expect(Object.keys(t)).to.deep.equal(['policy', 'rule', 'effect', 'outcome', 'detail', 'derivedRoles']);
          expect(String(t.outcome)).to.match(/^RULE_OUTCOME_/);
          if ((t.derivedRoles as string[]).length > 0) seen.add('derivedRoles');
        }
      }
      // The cases covered what they were chosen for.
      expect([...seen]).to.include.members(['RULE_ALLOW', 'RULE_DENY', 'NO_MATCHING_RULE+errors', 'derivedRoles']);
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
