import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import { unary } from '../../src/grpc/client.js';
import { check, NATS_URL, randomToken, readStream, Resources, sleep, startVerdict, uniqueNames, waitFor, writePolicies, type ServerProc } from '../support/events-harness.js';

const ITEMS = 2000;
/** Client deadlines tried: some calls end before the server decides, some while it decides, some after. */
const DEADLINES_MS = [1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 90, 135, 200, 300];

/**
 * A call the caller abandoned — its deadline passed while the server was still deciding — is
 * recorded with `delivered: false`: the decision was made, the answer never reached anyone.
 * CheckBatch calls of 2,000 items are sent with deadlines from 1 ms to 300 ms; whatever the
 * machine's speed, some of them time out while the server decides.
 */
describe('events: abandoned calls are recorded as not delivered (real gRPC, real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(required: boolean): Promise<{ server: ServerProc; names: { stream: string; prefix: string } }> {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}`, required,
      configYaml: `limits:\n  maxBatchItems: ${ITEMS}\nevents:\n  checkpointIntervalMs: 20\n`,
    });
    await server.waitForLog(/^NATS available/);
    return { server, names };
  }

  for (const required of [false, true]) {
    it(`a call whose deadline passed while the server decided is recorded with delivered: false; an answered one never is${required ? ' (required mode)' : ''}`, async () => {
      const { server, names } = await serve(required);
      const client = res.client(server.address);
      const outcome = new Map<string, 'ok' | 'deadline'>();
      for (const deadline of DEADLINES_MS) {
        const requestId = `d${deadline}`;
        const batch = {
          subject: { type: 'user', id: 'alice', roles: ['employee'] },
          requestId,
          items: Array.from({ length: ITEMS }, (_, i) => ({ action: { name: 'read' }, resource: { type: 'document', id: `d${i}` } })),
        };
        await unary(client, 'CheckBatch', batch, deadline).then(
          () => outcome.set(requestId, 'ok'),
          (err: { code?: number }) => {
            expect(err.code).to.equal(status.DEADLINE_EXCEEDED);
            outcome.set(requestId, 'deadline');
          },
        );
        await sleep(50); // let the server finish a call the client gave up on
      }
      const answered = await check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: 'on-time' } }, 'on-time');

      const nc = await res.nats(NATS_URL);
      let stored: Awaited<ReturnType<typeof readStream>> = [];
      await waitFor('the events', async () => {
        stored = await readStream(nc, names.stream, 20_000);
        return stored.some((m) => m.data.id === answered.decisionId);
      }, 30_000, 250);
      const events = stored.filter((m) => m.data.schema === EVENT_SCHEMA);
      const byRequest = new Map<string, { delivered: number; undelivered: number }>();
      for (const m of events) {
        const r = byRequest.get(String(m.data.requestId)) ?? { delivered: 0, undelivered: 0 };
        if (m.data.delivered === false) r.undelivered++;
        else r.delivered++;
        byRequest.set(String(m.data.requestId), r);
      }
      const abandonedAndRecorded: string[] = [];
      for (const [requestId, result] of outcome) {
        const seen = byRequest.get(requestId) ?? { delivered: 0, undelivered: 0 };
        // A call is decided as a whole: all of its events, or none, and all alike.
        expect([0, ITEMS], `${requestId}: events recorded`).to.include(seen.delivered + seen.undelivered);
        expect(seen.delivered === 0 || seen.undelivered === 0, `${requestId}: all alike`).to.equal(true);
        if (result === 'ok') expect(seen.undelivered, `${requestId} was answered: never recorded as undelivered`).to.equal(0);
        if (result === 'deadline' && seen.undelivered === ITEMS) abandonedAndRecorded.push(requestId);
      }
      expect(abandonedAndRecorded.length, `some call timed out while the server decided (outcomes: ${JSON.stringify([...outcome])}, events: ${JSON.stringify([...byRequest])})`).to.be.greaterThan(0);
      expect(stored.find((m) => m.data.id === answered.decisionId)!.data).to.not.have.property('delivered');
    });
  }
});
