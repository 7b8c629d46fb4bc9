/**
 * Declared schemas behind Envoy ext_authz (issue 13): with schemas.mode warn a request that does
 * not match is allowed as the rules say and enforce denies it (403, SCHEMA_MISMATCH); in both the
 * problems reach Envoy as the check's dynamic metadata, and never the client's response body or
 * headers. A real `verdict serve` over gRPC.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { call, envoyCheck, extAuthzClient, type AnyClient } from './helpers/envoy.js';
import { removeDir, startServe, tempDir, type ServeProcess } from './helpers/server.js';

const ITEMS = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: item
rules:
  - name: services-read
    actions: [read]
    effect: allow
    roles: [service]
`;
const declarations = (mode: string) => `apiVersion: verdict/v1
kind: Declarations
roles: [service]
schemas:
  mode: ${mode}
  resources:
    item:
      type: object
      properties:
        kind: { type: string, enum: [book, pen] }
      additionalProperties: false
`;
const ROUTES = `apiVersion: verdict/v1
kind: GatewayRoutes
unmapped: deny
subjects:
  peer: true
  peerType: service
  peerRoles: [service]
routes:
  - match: GET /items/{kind}
    action: read
    resource: { type: item, id: "{kind}", attributes: { kind: "{kind}" } }
`;
const PRINCIPAL = 'spiffe://example.org/ns/shop/sa/web';
const PROBLEM = 'resource.attributes/kind: must be equal to one of the allowed values';

type ProtoValue = { stringValue?: string; listValue?: { values?: ProtoValue[] } };
type CheckResponse = {
  httpResponse?: string;
  dynamicMetadata?: { fields?: Record<string, ProtoValue> } | null;
  okResponse?: { headers?: { header?: { key?: string; value?: string } }[] };
  deniedResponse?: { status?: { code?: string }; headers?: { header?: { key?: string; value?: string } }[]; body?: string };
};

/** The dynamic metadata Verdict attached, as plain JSON (undefined when none). */
function metadata(r: CheckResponse): Record<string, unknown> | undefined {
  const fields = r.dynamicMetadata?.fields;
  if (!fields || Object.keys(fields).length === 0) return undefined;
  const plain = (v: ProtoValue): unknown => (v.listValue ? (v.listValue.values ?? []).map(plain) : v.stringValue);
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, plain(v)]));
}

describe('gateway: declared schemas behind ext_authz (warn and enforce)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const servers: Record<string, ServeProcess> = {};
  const clients: Record<string, AnyClient> = {};

  before(async () => {
    await Promise.all(
      ['warn', 'enforce'].map(async (mode) => {
        const dir = tempDir(`schema-${mode}`);
        dirs.push(dir);
        const policies = path.join(dir, 'policies');
        mkdirSync(policies);
        writeFileSync(path.join(policies, 'item.yaml'), ITEMS);
        writeFileSync(path.join(policies, '_declarations.yaml'), declarations(mode));
        writeFileSync(path.join(dir, 'routes.yaml'), ROUTES);
        servers[mode] = await startServe(dir, { policies, gateway: { routesFile: path.join(dir, 'routes.yaml') } });
        clients[mode] = extAuthzClient(servers[mode]!.address);
      }),
    );
  });

  after(async () => {
    for (const c of Object.values(clients)) c.close();
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    for (const d of dirs) removeDir(d);
  });

  const check = (mode: string, p: string) => call<CheckResponse>(clients[mode]!, 'Check', envoyCheck({ path: p, principal: PRINCIPAL }));

  it('a matching request is allowed in both modes with no metadata', async () => {
    for (const mode of ['warn', 'enforce']) {
      const r = await check(mode, '/items/book');
      expect([r.httpResponse, metadata(r)], mode).to.deep.equal(['okResponse', undefined]);
    }
  });

  it('warn: allowed as the rules say, the problems in the dynamic metadata only', async () => {
    const r = await check('warn', '/items/cup');
    expect(r.httpResponse).to.equal('okResponse');
    expect(metadata(r)).to.deep.equal({ decision_reason: 'RULE_ALLOW', schema_problems: [PROBLEM] });
    expect(JSON.stringify(r.okResponse)).not.to.include('allowed values');
  });

  it('enforce: 403 with the problems in the dynamic metadata, not in the body the client sees', async () => {
    const r = await check('enforce', '/items/cup');
    expect(r.httpResponse).to.equal('deniedResponse');
    expect(r.deniedResponse?.status?.code).to.equal('Forbidden');
    expect(metadata(r)).to.deep.equal({ decision_reason: 'SCHEMA_MISMATCH', schema_problems: [PROBLEM] });
    expect(JSON.stringify(r.deniedResponse)).not.to.include('allowed values');
  });
});
