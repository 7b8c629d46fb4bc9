/**
 * AuthZEN decisions on the decision stream, with a real NATS JetStream and a real server: every
 * evaluation and every evaluations item is one event whose id is the answer's decision_id, with the
 * X-Request-ID as requestId and the AuthZEN source; items after a short-circuit and bad items are not
 * decided, so they leave no event; action properties reach the event as context.action.
 */
import { expect } from 'chai';
import { countEvents, NATS_URL, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies, type ServerProc } from '../support/events-harness.js';
import { post, type Target } from './helpers/client.js';

const employee = (id: string) => ({ type: 'user', id, properties: { roles: ['employee'], email: `${id}@example.com` } });
const doc = (id: string) => ({ type: 'document', id });

describe('http: AuthZEN decisions on the decision stream (real NATS, real server)', function () {
  this.timeout(30_000);
  const res = new Resources();
  let names: { stream: string; prefix: string };
  let server: ServerProc;
  let target: Target;

  before(async () => {
    names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const policies = writePolicies(res.tmpDir('policies'));
    server = await startVerdict(res, {
      policies,
      natsUrl: NATS_URL,
      ...names,
      spoolDir: res.tmpDir('spool'),
      instanceId: `vt-${randomToken(3)}`,
      configYaml: 'http:\n  listen: 127.0.0.1:0\nevents:\n  includeAttributes: [context.action, subject.attributes.email]\n',
    });
    const http = String(server.log('verdict serving')!.http);
    target = { port: Number(http.slice(http.lastIndexOf(':') + 1)) };
    await server.waitForLog(/^NATS available/);
  });
  after(() => res.cleanup());

  it('records each decision once, with X-Request-ID, the source and the decision id', async () => {
    const one = await post(target, '/access/v1/evaluation', { subject: employee('alice'), action: { name: 'read', properties: { method: 'GET' } }, resource: doc('d1') }, { 'x-request-id': 'gw-7f3a9c' });
    expect(one.json.decision).to.equal(true);
    const many = await post(
      target,
      '/access/v1/evaluations',
      {
        subject: employee('bob'),
        action: { name: 'read' },
        options: { evaluations_semantic: 'deny_on_first_deny' },
        // d2 allowed, d3 by a suspended subject denied (the short-circuit), then neither d4 nor the bad item.
        evaluations: [{ resource: doc('d2') }, { resource: doc('d3'), subject: { type: 'user', id: 'bob', properties: { roles: ['employee'], suspended: true } } }, { resource: doc('d4') }, {}],
      },
      { 'x-request-id': 'batch-42' },
    );
    expect(many.json.evaluations.map((e: { decision: boolean }) => e.decision)).to.deep.equal([true, false]);
    const bad = await post(target, '/access/v1/evaluations', { subject: employee('carol'), action: { name: 'read' }, evaluations: [{}, { resource: doc('d5') }] }, { 'x-request-id': 'batch-43' });
    expect(bad.json.evaluations.map((e: { decision: boolean }) => e.decision)).to.deep.equal([false, true]);

    const nc = await res.nats(NATS_URL);
    await waitFor('4 events', async () => (await countEvents(nc, names.stream, names.prefix)) >= 4, 10_000);
    await sleep(300);
    const events = (await readStream(nc, names.stream)).map((m) => m.data).filter((e) => e.schema === 'verdict.decision.v1');
    expect(events).to.have.length(4);
    const byId = new Map(events.map((e) => [e.id, e]));

    const e1 = byId.get(one.json.context.decision_id)!;
    expect(e1).to.include({ requestId: 'gw-7f3a9c', source: 'authzen_evaluation', action: 'read', decision: 'ALLOW', rule: 'employees-read' });
    expect(e1.subject).to.deep.equal({ id: 'alice', roles: ['employee'], type: 'user' });
    expect(e1.attributes).to.deep.equal({ context: { action: { method: 'GET' } }, subject: { attributes: { email: 'alice@example.com' } } });

    const [allow, deny] = many.json.evaluations as { context: { decision_id: string } }[];
    expect(byId.get(allow!.context.decision_id)).to.include({ requestId: 'batch-42', source: 'authzen_evaluations', decision: 'ALLOW' });
    expect(byId.get(deny!.context.decision_id)).to.include({ requestId: 'batch-42', source: 'authzen_evaluations', decision: 'DENY', rule: 'deny-suspended' });
    expect(events.filter((e) => (e.resource as { id: string }).id === 'd4')).to.have.length(0);

    expect(byId.get(bad.json.evaluations[1].context.decision_id)).to.include({ requestId: 'batch-43' });
    expect(events.filter((e) => e.requestId === 'batch-43')).to.have.length(1);
  });
});
