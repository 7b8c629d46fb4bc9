import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Http1Transport } from '../../bench/http/http1-transport.js';

/**
 * The AuthZEN load generator's HTTP/1.1 transport must count what an HTTP client would: 200
 * answers as calls (bodies of any size, with Content-Length or chunked), anything else as an error
 * with its status, and a server that goes away as errors, against a real node:http server.
 */
describe('bench: HTTP/1.1 transport against a real HTTP server', function () {
  this.timeout(15_000);
  let server: http.Server;
  let address: string;
  const seen: { path: string; rid: string; type: string; length: number }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ path: req.url ?? '', rid: String(req.headers['x-request-id']), type: String(req.headers['content-type']), length: body.length });
        if (body === '"fail"') {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"subject.id: is required"}}');
        } else if (body === '"chunked"') {
          // No Content-Length: node:http sends the body chunked, in two writes.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"decision":');
          setTimeout(() => res.end('true}'), 5);
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision: true, echo: body, pad: 'x'.repeat(100_000) }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const call = (t: Http1Transport, i: number) => new Promise<string | undefined>((resolve) => t.call(i, resolve));

  it('sends the pre-encoded requests, counts 200s, and reports other statuses with their body', async () => {
    const bodies = [Buffer.from('{"subject":{"id":"a"}}'), Buffer.from('"fail"'), Buffer.from('"chunked"')];
    const t = new Http1Transport(address, '/access/v1/evaluation', bodies, 4);
    try {
      await t.ready(5000);
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => call(t, i % 3)));
      expect(results.filter((r) => r === undefined)).to.have.length(20);
      expect(new Set(results.filter((r) => r !== undefined))).to.deep.equal(new Set(['HTTP 400 {"error":{"message":"subject.id: is required"}}']));
      const big = JSON.parse((await t.callForResponse(0)).toString()) as { echo: string; pad: string };
      expect(big.echo).to.equal('{"subject":{"id":"a"}}');
      expect(big.pad).to.have.length(100_000);
      expect(JSON.parse((await t.callForResponse(2)).toString())).to.deep.equal({ decision: true });
      expect(seen[0]).to.deep.include({ path: '/access/v1/evaluation', type: 'application/json' });
      expect(new Set(seen.map((s) => s.rid))).to.deep.equal(new Set(['bench-0', 'bench-1', 'bench-2']));
    } finally {
      t.close();
    }
  });

  it('keeps one call per connection and reuses connections (no new connection per call)', async () => {
    let connections = 0;
    const count = () => connections++;
    server.on('connection', count);
    const t = new Http1Transport(address, '/x', [Buffer.from('{}')], 3);
    try {
      await t.ready(5000);
      await Promise.all(Array.from({ length: 60 }, () => call(t, 0)));
      expect(connections).to.equal(3);
    } finally {
      t.close();
      server.off('connection', count);
    }
  });

  it('fails the calls of a connection the server closed, and a port nobody listens on', async () => {
    const t = new Http1Transport(address, '/x', [Buffer.from('{}')], 1);
    await t.ready(5000);
    server.closeAllConnections();
    await new Promise((r) => setTimeout(r, 50));
    // Every later call fails too, at once: the generator counts errors instead of waiting.
    for (let i = 0; i < 3; i++) expect(await call(t, 0)).to.match(/^transport /);
    t.close();
    const nobody = new Http1Transport('127.0.0.1:1', '/x', [Buffer.from('{}')], 1);
    let refused: unknown;
    await nobody.ready(2000).catch((err: unknown) => (refused = err));
    expect(String(refused)).to.match(/ECONNREFUSED/);
    nobody.close();
  });
});
