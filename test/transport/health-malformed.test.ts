/** grpc.health.v1.Health answers malformed requests with INVALID_ARGUMENT (raw bytes over a real socket). */
import type { ClientHttp2Session } from 'node:http2';
import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { policyDir } from '../grpc/fixtures.js';
import { cleanupServerProcesses, startServer } from '../support/server-process.js';
import { connect, grpcFrame, openStream, outcome, rawCall } from './helpers/h2.js';

/** HealthCheckRequest { service: "" } is the empty message; these are not HealthCheckRequests. */
const MALFORMED = {
  'a length beyond the message': Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
  'an invalid wire type': Buffer.from([0x0f, 0x01]),
  'a truncated varint': Buffer.from([0x08, 0xff]),
};

describe('health: malformed requests (real server, raw HTTP/2)', function () {
  this.timeout(20_000);
  let session: ClientHttp2Session;

  before(async () => {
    const server = await startServer({ policies: policyDir() });
    session = await connect(server.address);
  });

  after(async () => {
    session?.close();
    await cleanupServerProcesses();
  });

  it('answers a well-formed Check with SERVING (status OK)', async () => {
    const r = await rawCall(session, '/grpc.health.v1.Health/Check', Buffer.alloc(0));
    expect(r.grpcStatus).to.equal(status.OK);
    expect([...r.messages[0]!]).to.deep.equal([0x08, 0x01]); // status: SERVING
  });

  for (const [what, bytes] of Object.entries(MALFORMED)) {
    it(`answers Check with ${what} with INVALID_ARGUMENT naming the problem`, async () => {
      const r = await rawCall(session, '/grpc.health.v1.Health/Check', bytes);
      expect(r.grpcStatus, r.grpcMessage).to.equal(status.INVALID_ARGUMENT);
      expect(r.grpcMessage).to.match(/^request: not a valid Check message \(.+\)$/);
    });
  }

  it('answers Watch with a malformed request with INVALID_ARGUMENT and ends the stream', async () => {
    const r = await rawCall(session, '/grpc.health.v1.Health/Watch', MALFORMED['an invalid wire type']);
    expect(r.grpcStatus, r.grpcMessage).to.equal(status.INVALID_ARGUMENT);
    expect(r.grpcMessage).to.match(/^request: not a valid Watch message/);
    expect(r.messages).to.have.length(0);
  });

  it('still watches with a well-formed request after the malformed ones', async () => {
    const stream = openStream(session, '/grpc.health.v1.Health/Watch');
    const done = outcome(stream);
    const first = new Promise<Buffer>((resolve) => stream.once('data', (c: Buffer) => resolve(c)));
    stream.end(grpcFrame(Buffer.alloc(0)));
    expect([...(await first)]).to.deep.equal([0, 0, 0, 0, 2, 0x08, 0x01]);
    stream.close();
    await done;
  });
});
