/**
 * The AuthZEN Access Evaluation API over a real `verdict serve --http` process and real sockets:
 * the certification scenario's requests (openid/authzen, certification/authorization-api-1_0-scenario.md)
 * against its fixture policy, the mapping of properties, roles and action properties, the response
 * context, and every request error class.
 */
import { expect } from 'chai';
import { cleanupServerProcesses, makeTempDir, writeFile } from '../support/server-process.js';
import { post, rawExchange, request, type Target } from './helpers/client.js';
import { CERTIFICATION_POLICY, DOCUMENT_POLICY, startAuthzen, type AuthzenServer } from './helpers/server.js';

const EVALUATION = '/access/v1/evaluation';
const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const record1 = { type: 'record', id: 'record-1' };

describe('http: AuthZEN access evaluation (real server process)', function () {
  this.timeout(30_000);
  let server: AuthzenServer;
  let target: Target;

  before(async () => {
    const policies = makeTempDir('authzen');
    writeFile(policies, 'record.yaml', CERTIFICATION_POLICY);
    writeFile(policies, 'document.yaml', DOCUMENT_POLICY);
    server = await startAuthzen({ policies, config: { limits: { maxIdentifierLength: 64 } } });
    target = { port: server.httpPort };
  });
  after(cleanupServerProcesses);

  describe('the certification fixture decisions', () => {
    const cases: [string, object, boolean][] = [
      ['rule 1: alice reads record-1', { subject: alice, action: { name: 'read' }, resource: record1 }, true],
      ['rule 2: alice writes record-1', { subject: alice, action: { name: 'write' }, resource: record1 }, true],
      ['rule 3: bob reads record-1', { subject: bob, action: { name: 'read' }, resource: record1 }, true],
      ['rule 4: bob may not write record-1', { subject: bob, action: { name: 'write' }, resource: record1 }, false],
      ['rule 5: alice may not write an archived record', { subject: alice, action: { name: 'write' }, resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } }, false],
      [
        'rule 6: an admin (subject property) writes an archived record',
        { subject: { ...bob, properties: { role: 'admin' } }, action: { name: 'write' }, resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } },
        true,
      ],
      ['rule 7: a soft delete (action property) is allowed', { subject: alice, action: { name: 'delete', properties: { soft: true } }, resource: record1 }, true],
      ['rule 8: a hard delete is denied', { subject: alice, action: { name: 'delete', properties: { soft: false } }, resource: record1 }, false],
      ['with the optional context', { subject: alice, action: { name: 'read' }, resource: record1, context: { time: '2025-06-27T18:03-07:00', ip: '192.168.1.1' } }, true],
      [
        'with additional properties',
        { subject: { ...alice, properties: { department: 'Sales', role: 'manager' } }, action: { name: 'read', properties: { method: 'GET' } }, resource: { ...record1, properties: { status: 'active', owner: 'bob' } } },
        true,
      ],
      ['with unknown fields (ignored)', { subject: alice, action: { name: 'read' }, resource: record1, foo: 'bar', futureField: { nested: true } }, true],
    ];
    for (const [name, body, decision] of cases) {
      it(name, async () => {
        const a = await post(target, EVALUATION, body);
        expect(a.status, a.text).to.equal(200);
        expect(a.headers['content-type']).to.equal('application/json');
        expect(a.json.decision).to.equal(decision);
      });
    }

    it('answers the same fixture request the same way every time', async () => {
      const body = { subject: bob, action: { name: 'write' }, resource: record1 };
      const answers = await Promise.all([1, 2, 3, 4, 5].map(() => post(target, EVALUATION, body)));
      expect(answers.map((a) => a.json.decision)).to.deep.equal([false, false, false, false, false]);
    });
  });

  describe('the response context', () => {
    it('names the decision id, reason, policy, rule and revision', async () => {
      const a = await post(target, EVALUATION, { subject: alice, action: { name: 'write' }, resource: record1 });
      expect(a.json.decision).to.equal(true);
      expect(a.json.context).to.include({ reason: 'RULE_ALLOW', policy: 'record.yaml', rule: 'alice-writes-unarchived' });
      expect(a.json.context.decision_id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(a.json.context.revision).to.match(/^sha256:[0-9a-f]{16}$/);
    });

    it('leaves policy and rule out when no rule decided', async () => {
      const a = await post(target, EVALUATION, { subject: bob, action: { name: 'write' }, resource: record1 });
      expect(a.json).to.deep.include({ decision: false });
      expect(a.json.context.reason).to.equal('NO_MATCHING_RULE');
      expect(a.json.context).not.to.have.any.keys('policy', 'rule');
    });

    it('a deny rule is HTTP 200 with decision false and the rule', async () => {
      const a = await post(target, EVALUATION, { subject: { type: 'user', id: 'eve', properties: { roles: ['editor'] } }, action: { name: 'edit' }, resource: { type: 'document', id: 'd9', properties: { secret: true } } });
      expect(a.status).to.equal(200);
      expect(a.json.decision).to.equal(false);
      expect(a.json.context).to.include({ reason: 'RULE_DENY', rule: 'deny-secret', policy: 'document.yaml' });
    });

    it('takes the roles from subject.properties.roles and leaves them out of the attributes', async () => {
      const editor = { type: 'user', id: 'eve', properties: { roles: ['editor'] } };
      const a = await post(target, EVALUATION, { subject: editor, action: { name: 'edit' }, resource: { type: 'document', id: 'd1' } });
      expect(a.json.decision).to.equal(true);
      expect(a.json.context.rule).to.equal('editors-edit');
      const viewer = await post(target, EVALUATION, { subject: { ...editor, properties: { roles: ['viewer'] } }, action: { name: 'edit' }, resource: { type: 'document', id: 'd1' } });
      expect(viewer.json.decision).to.equal(false);
    });

    it('explains every rule with options.explain', async () => {
      const a = await post(target, EVALUATION, { subject: { type: 'user', id: 'eve', properties: { roles: ['viewer'] } }, action: { name: 'edit' }, resource: { type: 'document', id: 'd1' }, options: { explain: true } });
      const byRule = Object.fromEntries((a.json.context.explanation as { rule: string; outcome: string }[]).map((t) => [t.rule, t.outcome]));
      expect(byRule).to.include({ 'editors-edit': 'RULE_OUTCOME_ROLE_MISMATCH', 'viewers-read': 'RULE_OUTCOME_ACTION_MISMATCH', 'deny-secret': 'RULE_OUTCOME_CONDITION_FALSE' });
      const plain = await post(target, EVALUATION, { subject: alice, action: { name: 'read' }, resource: record1 });
      expect(plain.json.context).not.to.have.property('explanation');
    });

    it('lists a condition that failed to evaluate, and does not allow', async () => {
      const a = await post(target, EVALUATION, { subject: alice, action: { name: 'probe' }, resource: { type: 'document', id: 'd1' } });
      expect(a.json.decision).to.equal(false);
      expect(a.json.context.errors).to.have.length(1);
      expect(a.json.context.errors[0]).to.include({ policy: 'document.yaml', rule: 'broken-condition' });
    });

    it('echoes X-Request-ID on answers and errors', async () => {
      const ok = await post(target, EVALUATION, { subject: alice, action: { name: 'read' }, resource: record1 }, { 'x-request-id': 'bfe9eb29-ab87-4ca3-be83-a1d5d8305716' });
      expect(ok.headers['x-request-id']).to.equal('bfe9eb29-ab87-4ca3-be83-a1d5d8305716');
      const bad = await post(target, EVALUATION, { subject: alice }, { 'x-request-id': 'req-42' });
      expect(bad.status).to.equal(400);
      expect(bad.headers['x-request-id']).to.equal('req-42');
      const none = await post(target, EVALUATION, { subject: alice, action: { name: 'read' }, resource: record1 });
      expect(none.status).to.equal(200);
      expect(none.headers).not.to.have.property('x-request-id');
    });
  });

  describe('400: the request is wrong', () => {
    const errors: [string, unknown, RegExp][] = [
      ['missing subject', { action: { name: 'read' }, resource: record1 }, /^subject: is required$/],
      ['missing action', { subject: alice, resource: record1 }, /^action: is required$/],
      ['missing resource', { subject: alice, action: { name: 'read' } }, /^resource: is required$/],
      ['subject without type', { subject: { id: 'alice' }, action: { name: 'read' }, resource: record1 }, /^subject\.type: is required$/],
      ['subject without id', { subject: { type: 'user' }, action: { name: 'read' }, resource: record1 }, /^subject\.id: is required$/],
      ['action without name', { subject: alice, action: {}, resource: record1 }, /^action\.name: is required$/],
      ['resource without type', { subject: alice, action: { name: 'read' }, resource: { id: 'record-1' } }, /^resource\.type: is required$/],
      ['resource without id', { subject: alice, action: { name: 'read' }, resource: { type: 'record' } }, /^resource\.id: is required$/],
      ['subject that is a string', { subject: 'alice', action: { name: 'read' }, resource: record1 }, /^subject: must be an object$/],
      ['action.name that is a number', { subject: alice, action: { name: 123 }, resource: record1 }, /^action\.name: must be a string$/],
      ['subject.id that is a list', { subject: { type: 'user', id: ['a'] }, action: { name: 'read' }, resource: record1 }, /^subject\.id: must be a string$/],
      ['properties that are a list', { subject: { ...alice, properties: [1] }, action: { name: 'read' }, resource: record1 }, /^subject\.properties: must be an object$/],
      ['roles that are not a list', { subject: { ...alice, properties: { roles: 'admin' } }, action: { name: 'read' }, resource: record1 }, /^subject\.properties\.roles: /],
      ['an empty role', { subject: { ...alice, properties: { roles: ['a', ''] } }, action: { name: 'read' }, resource: record1 }, /^subject\.properties\.roles\[1\]: is required and must not be empty$/],
      ['an identifier over limits.maxIdentifierLength', { subject: { type: 'user', id: 'x'.repeat(65) }, action: { name: 'read' }, resource: record1 }, /^subject\.id: is longer than 64 bytes/],
      ['properties nested deeper than limits.maxAttributeDepth', { subject: alice, action: { name: 'read' }, resource: { ...record1, properties: { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: { k: 1 } } } } } } } } } } } } }, /^resource\.properties\.a\.b\.c\.d\.e\.f\.g\.h\.i\.j: nests deeper than 10 levels/],
      ['a context that is a string', { subject: alice, action: { name: 'read' }, resource: record1, context: 'now' }, /^context: must be a map of attributes$/],
      ['context.action beside action.properties', { subject: alice, action: { name: 'delete', properties: { soft: true } }, resource: record1, context: { action: 'x' } }, /^context\.action: is reserved for action\.properties/],
      ['action.properties deeper than the limit', { subject: alice, action: { name: 'read', properties: { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: 1 } } } } } } } } } } }, resource: record1 }, /^action\.properties\.a\.b\.c\.d\.e\.f\.g\.h\.i: nests deeper/],
      ['options that are not an object', { subject: alice, action: { name: 'read' }, resource: record1, options: true }, /^options: must be an object$/],
      ['options.explain that is not a boolean', { subject: alice, action: { name: 'read' }, resource: record1, options: { explain: 'yes' } }, /^options\.explain: must be true or false$/],
    ];
    for (const [name, body, message] of errors) {
      it(name, async () => {
        const a = await post(target, EVALUATION, body);
        expect(a.status, a.text).to.equal(400);
        expect(a.headers['content-type']).to.equal('application/json');
        expect(a.json.error.code).to.equal('INVALID_REQUEST');
        expect(a.json.error.message).to.match(message);
      });
    }

    const bodies: [string, string | Buffer, string][] = [
      ['malformed JSON', '{"subject": {', 'not valid JSON'],
      ['an empty body', '', 'empty'],
      ['a JSON array', '[1,2]', 'must be a JSON object'],
      ['a JSON string', '"hello"', 'must be a JSON object'],
      ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 'not valid UTF-8'],
    ];
    for (const [name, body, message] of bodies) {
      it(name, async () => {
        const a = await request(target, { method: 'POST', path: EVALUATION, headers: { 'content-type': 'application/json' }, body });
        expect(a.status).to.equal(400);
        expect(a.json.error).to.include({ status: 400, code: 'INVALID_JSON' });
        expect(a.json.error.message).to.contain(message);
      });
    }

    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      it(`Content-Type ${type ?? '(missing)'}`, async () => {
        const a = await request(target, { method: 'POST', path: EVALUATION, headers: type ? { 'content-type': type } : {}, body: JSON.stringify({ subject: alice, action: { name: 'read' }, resource: record1 }) });
        expect(a.status).to.equal(400);
        expect(a.json.error.code).to.equal('INVALID_CONTENT_TYPE');
      });
    }

    it('accepts application/json with charset=utf-8 and upper case', async () => {
      const a = await request(target, { method: 'POST', path: EVALUATION, headers: { 'content-type': 'Application/JSON; charset="UTF-8"' }, body: JSON.stringify({ subject: alice, action: { name: 'read' }, resource: record1 }) });
      expect(a.status, a.text).to.equal(200);
    });

    it('an X-Request-ID longer than limits.maxIdentifierLength', async () => {
      const a = await post(target, EVALUATION, { subject: alice, action: { name: 'read' }, resource: record1 }, { 'x-request-id': 'r'.repeat(65) });
      expect(a.status).to.equal(400);
      expect(a.json.error.message).to.equal('X-Request-ID: is longer than 64 characters (limits.maxIdentifierLength)');
    });

    it('a "__proto__" property is data, not a prototype', async () => {
      const body = `{"subject":{"type":"user","id":"eve","properties":{"__proto__":{"roles":["editor"]}}},"action":{"name":"edit"},"resource":{"type":"document","id":"d1"}}`;
      const a = await request(target, { method: 'POST', path: EVALUATION, headers: { 'content-type': 'application/json' }, body });
      expect(a.status, a.text).to.equal(200);
      expect(a.json.decision).to.equal(false);
    });
  });

  describe('routes and methods', () => {
    it('404 with a JSON error for an unknown path', async () => {
      for (const path of ['/access/v1/search/subject', '/access/v1/evaluation/', '/', '/access/v2/evaluation']) {
        const a = await request(target, { method: 'POST', path, body: {} });
        expect(a.status, path).to.equal(404);
        expect(a.json.error.code).to.equal('NOT_FOUND');
      }
    });

    it('405 with Allow for a wrong method', async () => {
      const get = await request(target, { method: 'GET', path: EVALUATION });
      expect(get.status).to.equal(405);
      expect(get.headers.allow).to.equal('POST');
      expect(get.json.error.code).to.equal('METHOD_NOT_ALLOWED');
      const put = await request(target, { method: 'POST', path: '/.well-known/authzen-configuration', body: {} });
      expect(put.status).to.equal(405);
      expect(put.headers.allow).to.equal('GET, HEAD');
    });

    it('ignores a query string', async () => {
      const a = await post(target, `${EVALUATION}?trace=1`, { subject: alice, action: { name: 'read' }, resource: record1 });
      expect(a.json.decision).to.equal(true);
    });

    it('answers /healthz and /readyz like the gRPC health service', async () => {
      for (const path of ['/healthz', '/readyz']) {
        const a = await request(target, { path });
        expect(a.status).to.equal(200);
        expect(a.json).to.deep.equal({ status: 'SERVING' });
      }
    });

    it('serves keep-alive connections: many requests over one connection', async () => {
      // Raw bytes: three requests written back to back (pipelined) on one socket.
      const one = (id: string) => {
        const body = JSON.stringify({ subject: alice, action: { name: 'read' }, resource: { type: 'record', id } });
        return `POST ${EVALUATION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Request-ID: ${id}\r\n\r\n${body}`;
      };
      const r = await rawExchange(server.httpPort, [one('k1') + one('k2') + one('k3')], { waitMs: 1_500 });
      expect(r.text.match(/HTTP\/1\.1 200 OK/g)).to.have.length(3);
      expect(r.text).to.contain('x-request-id: k1').and.to.contain('x-request-id: k3');
      expect(r.closed).to.equal(false);
    });
  });
});
