/**
 * ext_authz paths whose decoded segments hold "/", "\", NUL or control characters, against a real
 * `verdict serve`: refused with 400 unless the route allows them (allowInSegments).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { call, envoyCheck, extAuthzClient, type AnyClient } from './helpers/envoy.js';
import { removeDir, startServe, tempDir, type ServeProcess } from './helpers/server.js';

/** Public files are readable by any service; everything else is not. */
const FILES = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: file
rules:
  - name: public-files
    actions: [download]
    effect: allow
    when: resource.id.startsWith("public/")
`;

const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
unmapped: route
routes:
  - match: GET /files/{path...}
    action: download
    resource: { type: file, id: "{path}" }
  - match: GET /objects/{key}
    action: download
    resource: { type: file, id: "{key}" }
    allowInSegments: [slash]
`;

type Response = { httpResponse?: string; deniedResponse?: { status?: { code?: string }; body?: string }; status?: { code?: number; message?: string } };

describe('gateway: decoded path segments (real server process)', function () {
  this.timeout(30_000);
  let dir: string;
  let server: ServeProcess;
  let client: AnyClient;
  const get = (p: string) => call<Response>(client, 'Check', envoyCheck({ path: p, principal: 'spiffe://example.org/ns/web/sa/frontend' }));

  before(async () => {
    dir = tempDir('paths');
    mkdirSync(path.join(dir, 'policies'));
    writeFileSync(path.join(dir, 'policies', 'file.yaml'), FILES);
    writeFileSync(path.join(dir, 'routes.yaml'), ROUTES);
    server = await startServe(dir, { policies: path.join(dir, 'policies'), logDecisions: true, gateway: { routesFile: path.join(dir, 'routes.yaml') } });
    client = extAuthzClient(server.address);
  });

  after(async () => {
    client?.close();
    await server?.stop();
    if (dir) removeDir(dir);
  });

  it('allows a public file, denies another (the policy works)', async () => {
    expect((await get('/files/public/report.pdf')).httpResponse).to.equal('okResponse');
    expect((await get('/files/private/report.pdf')).deniedResponse?.status?.code).to.equal('Forbidden');
  });

  const refused: [string, string, string][] = [
    ['an encoded "/" walking out of public/', '/files/public/..%2F..%2Fadmin', '"/" (%2F)'],
    ['an encoded "/" (lower case)', '/files/public/..%2f..%2fadmin', '"/" (%2F)'],
    ['an encoded "\\"', '/files/public/..%5C..%5Cadmin', '"\\" (%5C)'],
    ['a raw "\\"', '/files/public/..\\..\\admin', '"\\" (%5C)'],
    ['NUL', '/files/public/report.pdf%00.exe', 'NUL (%00)'],
    ['a line feed', '/files/public/a%0Ab', 'a control character'],
    ['DEL', '/files/public/a%7Fb', 'a control character'],
    ['a C1 control (U+0085)', '/files/public/a%C2%85b', 'a control character'],
  ];
  for (const [what, p, text] of refused) {
    it(`answers 400 to a segment holding ${what}, without deciding`, async () => {
      const r = await get(p);
      expect(r.deniedResponse?.status?.code, JSON.stringify(r)).to.equal('BadRequest');
      expect(r.status?.message).to.equal(`the request path has a segment holding ${text}; route "GET /files/{path...}" does not allow it (allowInSegments)`);
      expect(JSON.parse(r.deniedResponse!.body!)).to.deep.include({ error: 'bad_request' });
    });
  }

  it('refuses such a segment on an unmapped path too (unmapped: route)', async () => {
    const r = await get('/other/a%2Fb');
    expect(r.deniedResponse?.status?.code).to.equal('BadRequest');
    expect(r.status?.message).to.equal('the request path has a segment holding "/" (%2F)');
  });

  it('passes an encoded "/" to a route that allows it (allowInSegments: [slash]), and nothing else', async () => {
    const ok = await get('/objects/public%2Freport.pdf');
    expect(ok.httpResponse, JSON.stringify(ok)).to.equal('okResponse');
    const nul = await get('/objects/public%2Fa%00b');
    expect(nul.status?.message).to.equal('the request path has a segment holding NUL (%00); route "GET /objects/{key}" does not allow it (allowInSegments)');
  });

  it('records no decision for a refused path', async () => {
    const before = server.lines.filter((l) => l.msg === 'decision').length;
    await get('/files/public/..%2F..%2Fadmin');
    await get('/files/public/report.pdf');
    await server.waitFor((l) => l.msg === 'decision' && server.lines.filter((x) => x.msg === 'decision').length === before + 1);
    expect(server.lines.filter((l) => l.msg === 'decision').length).to.equal(before + 1);
  });
});
