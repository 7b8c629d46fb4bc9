/**
 * Requests the service must refuse with INVALID_ARGUMENT, with a message naming the field (or the
 * limit) at fault. The server runs with small limits from a --config file.
 */
import { expect } from 'chai';
import { toProtoCheckRequest, unary } from '../../src/grpc/client.js';
import { attributesToStruct } from '../../src/grpc/struct.js';
import { cleanupServerProcesses, startServer, type VerdictProcess } from '../support/server-process.js';
import { authzClient, check, closeClients, docRequest, expectGrpcError, policyDir, status, type AuthzClient, type CheckResponse } from './fixtures.js';

const LIMITS = { maxAttributeDepth: 3, maxBatchItems: 5, maxMessageBytes: 4096 };

describe('gRPC INVALID_ARGUMENT (real server process, small limits)', function () {
  this.timeout(20_000);
  let server: VerdictProcess;
  let client: AuthzClient;

  before(async () => {
    server = await startServer({ policies: policyDir(), config: { limits: LIMITS } });
    client = authzClient(server.address);
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  /** A valid CheckRequest in proto object form, changed by `change`. */
  function request(change: (r: Record<string, any>) => void = () => undefined): Record<string, unknown> {
    const r = toProtoCheckRequest(docRequest('read')) as Record<string, any>;
    change(r);
    return r;
  }

  const checkCall = (msg: unknown) => unary<CheckResponse>(client, 'Check', msg);
  const batchCall = (msg: unknown) => unary<{ results: CheckResponse[] }>(client, 'CheckBatch', msg);

  it('the unchanged base request is valid', async () => {
    expect((await checkCall(request())).allowed).to.equal(true);
  });

  it('missing subject', async () => {
    await expectGrpcError(checkCall(request((r) => delete r.subject)), status.INVALID_ARGUMENT, /^subject: is required/);
  });

  it('empty subject.id (and a subject with no fields at all)', async () => {
    await expectGrpcError(checkCall(request((r) => (r.subject.id = ''))), status.INVALID_ARGUMENT, /^subject\.id: /);
    await expectGrpcError(checkCall(request((r) => (r.subject = {}))), status.INVALID_ARGUMENT, /^subject\.id: /);
  });

  it('missing action, and empty action.name', async () => {
    await expectGrpcError(checkCall(request((r) => delete r.action)), status.INVALID_ARGUMENT, /^action: is required/);
    await expectGrpcError(checkCall(request((r) => (r.action = { name: '' }))), status.INVALID_ARGUMENT, /^action\.name: /);
  });

  it('missing resource, and empty resource.type', async () => {
    await expectGrpcError(checkCall(request((r) => delete r.resource)), status.INVALID_ARGUMENT, /^resource: is required/);
    await expectGrpcError(checkCall(request((r) => (r.resource.type = ''))), status.INVALID_ARGUMENT, /^resource\.type: /);
  });

  it('items[2].resource.type empty in a batch (the whole batch is refused)', async () => {
    const items = [0, 1, 2, 3].map((i) => ({ action: { name: 'read' }, resource: { type: i === 2 ? '' : 'document', id: `d${i}` } }));
    await expectGrpcError(batchCall({ subject: { id: 'alice', roles: ['employee'] }, items }), status.INVALID_ARGUMENT, /^items\[2\]\.resource\.type: /);
    const noAction = [{ action: { name: 'read' }, resource: { type: 'document' } }, { resource: { type: 'document' } }];
    await expectGrpcError(batchCall({ subject: { id: 'alice' }, items: noAction }), status.INVALID_ARGUMENT, /^items\[1\]\.action: is required/);
  });

  it('an empty batch, and a batch without a subject', async () => {
    await expectGrpcError(batchCall({ subject: { id: 'alice' }, items: [] }), status.INVALID_ARGUMENT, /^items: /);
    await expectGrpcError(batchCall({ items: [{ action: { name: 'read' }, resource: { type: 'document' } }] }), status.INVALID_ARGUMENT, /^subject: is required/);
  });

  it('attribute nesting deeper than limits.maxAttributeDepth (3), in maps and in lists', async () => {
    // Depth 3 (top map, map, map) is accepted.
    const ok = await checkCall(request((r) => (r.subject.attributes = attributesToStruct({ a: { b: { c: 1 } } }))));
    expect(ok.allowed).to.equal(true);
    const deepMap = await expectGrpcError(
      checkCall(request((r) => (r.subject.attributes = attributesToStruct({ a: { b: { c: { d: 1 } } } })))),
      status.INVALID_ARGUMENT,
      'limits.maxAttributeDepth',
    );
    expect(deepMap.details).to.match(/^subject\.attributes\.a\.b\.c: nests deeper than 3 levels/);
    await expectGrpcError(
      checkCall(request((r) => (r.resource.attributes = attributesToStruct({ x: [[['too deep']]] })))),
      status.INVALID_ARGUMENT,
      /^resource\.attributes\.x\[0\]\[0\]: nests deeper than 3 levels \(limits\.maxAttributeDepth\)/,
    );
    await expectGrpcError(
      checkCall(request((r) => (r.context = attributesToStruct({ a: { b: { c: { d: 'x' } } } })))),
      status.INVALID_ARGUMENT,
      /^context\.a\.b\.c: .*limits\.maxAttributeDepth/,
    );
  });

  it('a non-finite number in an attribute, named by its path (list items as [i])', async () => {
    await expectGrpcError(
      checkCall(request((r) => (r.subject.attributes = attributesToStruct({ scores: [1, Number.NaN] })))),
      status.INVALID_ARGUMENT,
      /^subject\.attributes\.scores\[1\]: must be a finite number/,
    );
    await expectGrpcError(
      checkCall(request((r) => (r.context = attributesToStruct({ geo: { lat: Number.POSITIVE_INFINITY } })))),
      status.INVALID_ARGUMENT,
      /^context\.geo\.lat: must be a finite number/,
    );
  });

  it('more batch items than limits.maxBatchItems (5)', async () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ action: { name: 'read' }, resource: { type: 'document', id: `d${i}` } }));
    const five = await batchCall({ subject: { id: 'alice', roles: ['employee'] }, items: items(5) });
    expect(five.results).to.have.length(5);
    await expectGrpcError(batchCall({ subject: { id: 'alice', roles: ['employee'] }, items: items(6) }), status.INVALID_ARGUMENT, /^items: has 6 items; at most 5 allowed \(limits\.maxBatchItems\)/);
  });

  it('a message larger than limits.maxMessageBytes (4096), for Check and CheckBatch', async () => {
    const big = 'x'.repeat(5000);
    const e = await expectGrpcError(
      checkCall(request((r) => (r.resource.attributes = attributesToStruct({ note: big })))),
      status.INVALID_ARGUMENT,
      'limits.maxMessageBytes',
    );
    expect(e.details).to.match(/exceeds the limit of 4096 bytes/);
    await expectGrpcError(
      batchCall({ subject: { id: 'alice', attributes: attributesToStruct({ note: big }) }, items: [{ action: { name: 'read' }, resource: { type: 'document' } }] }),
      status.INVALID_ARGUMENT,
      'limits.maxMessageBytes',
    );
    // Just under the limit is fine.
    expect((await checkCall(request((r) => (r.resource.attributes = attributesToStruct({ note: 'x'.repeat(3500) }))))).allowed).to.equal(true);
  });

  it('more roles than limits.maxRoles (default 256), and an empty role', async () => {
    const roles = Array.from({ length: 257 }, (_, i) => `r${i}`);
    await expectGrpcError(checkCall(request((r) => (r.subject.roles = roles))), status.INVALID_ARGUMENT, /^subject\.roles: has 257 roles; at most 256 allowed \(limits\.maxRoles\)/);
    await expectGrpcError(checkCall(request((r) => (r.subject.roles = ['employee', '']))), status.INVALID_ARGUMENT, /^subject\.roles\[1\]: /);
  });

  it('a subject token when no token issuers are configured, for Check and CheckBatch', async () => {
    await expectGrpcError(checkCall(request((r) => (r.token = 'eyJhbGciOiJub25lIn0.e30.'))), status.INVALID_ARGUMENT, /^token: .*no token issuers are configured/);
    await expectGrpcError(
      batchCall({ subject: { id: 'alice' }, token: 'abc', items: [{ action: { name: 'read' }, resource: { type: 'document' } }] }),
      status.INVALID_ARGUMENT,
      /^token: /,
    );
  });

  it('the server keeps serving after refusing requests, and never logs the token', async () => {
    expect((await check(client, docRequest('read'))).allowed).to.equal(true);
    expect(server.running).to.equal(true);
    expect(server.stdout).to.not.contain('eyJhbGciOiJub25lIn0');
    expect(server.logs.filter((l) => (l.level ?? 0) >= 50), 'no error logs for invalid requests').to.deep.equal([]);
  });
});
