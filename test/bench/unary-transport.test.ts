import { expect } from 'chai';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { CLIENT_KINDS, createTransport, parseClientKind, type UnaryTransport } from '../../bench/grpc/unary-transport.js';

const raw = (b: Buffer): Buffer => b;

/**
 * The load generators' transports must count what a gRPC client would: OK answers as calls, and
 * any other status — from the handler, or for a method the server does not have — as an error
 * with its code and message. Each transport talks to a real grpc-js server over a socket.
 */
describe('bench: unary transports (h2 and grpc-js) against a real gRPC server', function () {
  this.timeout(15_000);
  let server: Server;
  let address: string;
  before(async () => {
    server = new Server();
    server.addService(
      { echo: { path: '/bench.test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
      {
        echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
          if (call.request[0] === 1) callback({ code: status.INVALID_ARGUMENT, details: 'subject.id: must not be empty (ünïcode)' });
          else callback(null, Buffer.concat([call.request, Buffer.alloc(200_000, 7)]));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    address = `127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  const call = (t: UnaryTransport, i: number) => new Promise<string | undefined>((resolve) => t.call(i, resolve));

  for (const kind of CLIENT_KINDS) {
    it(`${kind}: an OK answer (even a large one) completes without error; a handler's status arrives with code and message`, async () => {
      const t = createTransport(kind, address, '/bench.test.Echo/Echo', [Buffer.from([0, 2, 3]), Buffer.from([1])]);
      try {
        await t.ready(5000);
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => call(t, i % 2)));
        expect(results.filter((r) => r === undefined)).to.have.length(20);
        expect(new Set(results.filter((r) => r !== undefined))).to.deep.equal(new Set(['3 subject.id: must not be empty (ünïcode)']));
        // The probe's form: the response message itself, without gRPC framing.
        const echoed = await t.callForResponse(0);
        expect(echoed.length).to.equal(3 + 200_000);
        expect([...echoed.subarray(0, 4)]).to.deep.equal([0, 2, 3, 7]);
        let refused: unknown;
        await t.callForResponse(1).catch((err: unknown) => (refused = err));
        expect(String(refused)).to.contain('3 subject.id: must not be empty');
      } finally {
        t.close();
      }
    });

    it(`${kind}: a method the server does not serve is an error (UNIMPLEMENTED), not a call`, async () => {
      const t = createTransport(kind, address, '/bench.test.Echo/Nope', [Buffer.from([0])]);
      try {
        await t.ready(5000);
        expect(await call(t, 0)).to.match(/^12 /);
      } finally {
        t.close();
      }
    });
  }

  it('--client accepts h2 and grpc-js, and refuses anything else naming the flag and the choices', () => {
    expect(CLIENT_KINDS.map(parseClientKind)).to.deep.equal(['h2', 'grpc-js']);
    expect(() => parseClientKind('grpc')).to.throw('--client: "grpc" is not one of h2, grpc-js');
  });

  it('h2: no server listening fails ready() instead of hanging', async () => {
    const probe = new Server();
    const port = await new Promise<number>((resolve, reject) => probe.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    probe.forceShutdown();
    const t = createTransport('h2', `127.0.0.1:${port}`, '/bench.test.Echo/Echo', [Buffer.from([0])]);
    try {
      let failure: unknown;
      await t.ready(3000).catch((err: unknown) => (failure = err));
      expect(String(failure)).to.match(/ECONNREFUSED/);
    } finally {
      t.close();
    }
  });
});
