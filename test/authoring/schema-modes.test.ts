import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, runVerdict, startServer, writeFile } from '../support/server-process.js';
import { authzClient, check, closeClients, policyDir, type CheckResponse } from '../grpc/fixtures.js';
import { NO_DECLARATIONS_WARNING } from '../../src/policy/declared-check.js';
import type { VerdictProcess } from '../support/server-process.js';
import { startAuthzen } from '../http/helpers/server.js';
import { post } from '../http/helpers/client.js';

const INVOICE = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: invoice
rules:
  - name: finance-approves-small
    actions: [approve]
    effect: allow
    roles: [finance]
    when: resource.attributes.amount < 1000.0
`;

function declarations(mode: string): string {
  return `apiVersion: verdict/v1
kind: Declarations
roles: [finance]
schemas:
  mode: ${mode}
  subject:
    type: object
    properties:
      department: { type: string }
    additionalProperties: false
  resources:
    invoice:
      type: object
      properties:
        amount: { type: number, minimum: 0 }
      required: [amount]
      additionalProperties: false
`;
}

const GOOD = { subject: { id: 'fay', roles: ['finance'], attributes: { department: 'fin' } }, action: 'approve', resource: { type: 'invoice', id: 'i1', attributes: { amount: 10 } } };
/** Matches the rule (amount 10 < 1000) but not the schemas: a number where a string is declared, and an undeclared attribute. */
const BAD = { subject: { id: 'fay', roles: ['finance'], attributes: { department: 7 } }, action: 'approve', resource: { type: 'invoice', id: 'i1', attributes: { amount: 10, note: 'x' } } };
const PROBLEMS = ['subject.attributes/department: must be string', 'resource.attributes: must NOT have additional properties "note"'];

describe('schema modes on real requests over gRPC (verdict serve)', function () {
  this.timeout(60_000);
  const servers: Record<string, string> = {};
  const dirs: Record<string, string> = {};
  const procs: Record<string, VerdictProcess> = {};

  before(async () => {
    const modes = ['off', 'warn', 'enforce'];
    const started = await Promise.all(
      modes.map((mode) => {
        dirs[mode] = policyDir({ 'invoice.yaml': INVOICE, '_declarations.yaml': declarations(mode) });
        return startServer({ policies: dirs[mode]! });
      }),
    );
    modes.forEach((mode, i) => {
      servers[mode] = started[i]!.address!;
      procs[mode] = started[i]!;
    });
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('a matching request decides alike in every mode, with no problems', async () => {
    for (const mode of ['off', 'warn', 'enforce']) {
      const r = await check(authzClient(servers[mode]!), GOOD);
      expect([r.decision, r.rule, r.schemaProblems], mode).to.deep.equal(['EFFECT_ALLOW', 'finance-approves-small', undefined]);
    }
  });

  it('off: a non-matching request is decided as if no schema were declared', async () => {
    const r: CheckResponse = await check(authzClient(servers.off!), BAD);
    expect([r.decision, r.reason, r.schemaProblems]).to.deep.equal(['EFFECT_ALLOW', 'RULE_ALLOW', undefined]);
  });

  it('warn: the decision proceeds and the response lists the problems', async () => {
    const r = await check(authzClient(servers.warn!), BAD);
    expect([r.decision, r.reason, r.rule]).to.deep.equal(['EFFECT_ALLOW', 'RULE_ALLOW', 'finance-approves-small']);
    expect(r.schemaProblems).to.deep.equal(PROBLEMS);
  });

  it('enforce: a non-matching request is denied with SCHEMA_MISMATCH and the problems, before any rule', async () => {
    const r = await check(authzClient(servers.enforce!), BAD, { explain: true });
    expect([r.decision, r.allowed, r.reason, r.rule, r.explanation ?? []]).to.deep.equal(['EFFECT_DENY', false, 'SCHEMA_MISMATCH', '', []]);
    expect(r.schemaProblems).to.deep.equal(PROBLEMS);
  });

  it('problems are bounded: at most 8 lines, each at most 160 bytes', async () => {
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${'ü'.repeat(200)}${i}`, i]));
    const r = await check(authzClient(servers.enforce!), { ...BAD, resource: { ...BAD.resource, attributes: { amount: -1, ...many } } });
    expect(r.reason).to.equal('SCHEMA_MISMATCH');
    expect(r.schemaProblems).to.have.length(8);
    for (const p of r.schemaProblems!) expect(Buffer.byteLength(p)).to.be.at.most(160);
  });

  it('a server whose set has no declarations logs one warning line saying what it misses; one with declarations does not', async () => {
    const plain = await startServer({ policies: policyDir() });
    const line = plain.logs.find((l) => l.msg === NO_DECLARATIONS_WARNING);
    expect(line, JSON.stringify(plain.logs)).to.not.equal(undefined);
    expect(line!.level).to.equal(40);
    expect(procs.warn!.logs.find((l) => l.msg === NO_DECLARATIONS_WARNING)).to.equal(undefined);
  });

  it('AuthZEN over HTTP: enforce denies with SCHEMA_MISMATCH and lists the problems in context.schema_problems', async () => {
    const server = await startAuthzen({ policies: dirs.enforce! });
    const a = await post({ port: server.httpPort }, '/access/v1/evaluation', {
      subject: { type: 'user', id: 'fay', properties: { roles: ['finance'], department: 7 } },
      action: { name: 'approve' },
      resource: { type: 'invoice', id: 'i1', properties: { amount: 10, note: 'x' } },
    });
    expect(a.status, a.text).to.equal(200);
    expect([a.json.decision, a.json.context.reason, a.json.context.schema_problems]).to.deep.equal([false, 'SCHEMA_MISMATCH', PROBLEMS]);
  });

  it('verdict check --server and a local check print the same schemaProblems', async () => {
    const dir = makeTempDir('requests');
    const file = writeFile(dir, 'bad.json', JSON.stringify(BAD));
    const [local, remote] = await Promise.all([
      runVerdict(['check', '--policies', dirs.enforce!, '--request', file]),
      runVerdict(['check', '--server', servers.enforce!, '--request', file]),
    ]);
    const l = JSON.parse(local.stdout) as Record<string, unknown>;
    const s = JSON.parse(remote.stdout) as Record<string, unknown>;
    expect([l.reason, l.allowed, l.schemaProblems]).to.deep.equal(['SCHEMA_MISMATCH', false, PROBLEMS]);
    expect({ ...s, decisionId: '' }).to.deep.equal(l);
  });
});
