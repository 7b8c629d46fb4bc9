/** Routes files, the route table, paths, and the tls/tokens/gateway settings: validated at load with positions. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfig, validateConfig, DEFAULT_CONFIG } from '../../src/config/load.js';
import { pathSegments } from '../../src/gateway/http-request.js';
import { RouteTable, RoutesError, renderTarget, routeRequest } from '../../src/gateway/route-table.js';
import { parseGatewayRoutes } from '../../src/gateway/routes-file.js';
import { removeDir, spawnServe, tempDir } from './helpers/server.js';

function table(...matches: [string, string, string?][]): RouteTable {
  return new RouteTable(matches.map(([match, action, id], i) => ({ match, action, resource: { type: 't', ...(id ? { id } : {}) }, at: `r:${i + 1}` })));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof RoutesError) return [...err.problems];
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected an error');
}

describe('gateway: route table', () => {
  const t = table(
    ['GET /documents/{id}', 'read', '{id}'],
    ['GET /documents/drafts', 'list-drafts'],
    ['POST /documents/{id}/{op}', '{op}', '{id}'],
    ['GET,HEAD /files/{path...}', 'download', '{path}'],
    ['* /', 'home'],
  );
  const target = (method: string, p: string) => {
    const m = t.match(method, pathSegments(p).segments!);
    return m ? { ...renderTarget(m), route: m.route.match } : undefined;
  };

  it('matches templates, preferring literal segments over {params}', () => {
    expect(target('GET', '/documents/d1')).to.deep.include({ action: 'read', id: 'd1' });
    expect(target('GET', '/documents/drafts')).to.deep.include({ action: 'list-drafts', id: '' });
    expect(target('POST', '/documents/d1/share')).to.deep.include({ action: 'share', id: 'd1', route: 'POST /documents/{id}/{op}' });
    expect(target('GET', '/documents/d1/')).to.deep.include({ action: 'read', id: 'd1' });
  });

  it('matches {name...} against the rest of the path, methods lists and "*"', () => {
    expect(target('HEAD', '/files/a/b/c.txt')).to.deep.include({ action: 'download', id: 'a/b/c.txt' });
    expect(target('DELETE', '/')).to.deep.include({ action: 'home' });
    expect(target('DELETE', '/documents/d1')).to.equal(undefined);
    expect(target('GET', '/documents')).to.equal(undefined);
  });

  it('decodes each segment once, after splitting, so %2F stays inside a parameter', () => {
    expect(target('GET', '/documents/a%2Fb')).to.deep.include({ id: 'a/b' });
    expect(pathSegments('/a/%2e%2e/b').problem).to.contain('".."');
    expect(pathSegments('/a//b').problem).to.contain('empty segment');
    expect(pathSegments('/a/%zz').problem).to.contain('percent-encoding');
  });

  it('flags "/", "\\", NUL and control characters inside decoded segments', () => {
    expect(pathSegments('/files/public/report.pdf').unsafe).to.equal(0);
    expect(pathSegments('/files/%41%20b/%C3%A9').unsafe).to.equal(0); // "A b", "é"
    expect(pathSegments('/files/public/..%2F..%2Fadmin').unsafe).to.equal(1);
    expect(pathSegments('/files/a%5Cb/c\\d').unsafe).to.equal(2);
    expect(pathSegments('/files/a%09b').unsafe).to.equal(4);
    expect(pathSegments('/files/a%00b/%2F').unsafe).to.equal(9);
  });

  it('routes a request only when its route allows what its segments hold', () => {
    const allowing = new RouteTable([
      { match: 'GET /files/{path...}', action: 'download', resource: { type: 'file', id: '{path}' }, at: 'r:1' },
      { match: 'GET /objects/{key}', action: 'get', resource: { type: 'object', id: '{key}' }, allowInSegments: ['slash', 'nul'], at: 'r:2' },
    ]);
    const route = (p: string) => {
      const { segments, unsafe } = pathSegments(p);
      const r = routeRequest(allowing, 'GET', segments!, unsafe!);
      return r.kind === 'matched' ? renderTarget(r.match).id : r.kind === 'bad' ? r.problem : 'unmapped';
    };
    expect(route('/files/public/a/b')).to.equal('public/a/b');
    expect(route('/files/public/..%2F..%2Fadmin')).to.equal('the request path has a segment holding "/" (%2F); route "GET /files/{path...}" does not allow it (allowInSegments)');
    expect(route('/objects/a%2Fb%00')).to.equal('a/b\u0000');
    expect(route('/objects/a%0Db')).to.contain('a control character; route "GET /objects/{key}"');
    expect(route('/nothing/a%2Fb')).to.equal('the request path has a segment holding "/" (%2F)');
    expect(route('/nothing/ab')).to.equal('unmapped');
  });

  it('rejects duplicate routes, bad templates and unknown placeholders, naming where', () => {
    const problems = problemsOf(() =>
      table(['GET /a/{id}', 'read', '{id}'], ['GET /a/{other}', 'read'], ['GET /b/x{id}', 'read'], ['GET /c/{id}', '{op}'], ['GET /d/{p...}/e', 'x'], ['FETCH! /e', 'x']),
    );
    expect(problems.join('\n')).to.match(/r:2: "GET \/a\/\{other\}" duplicates "GET \/a\/\{id\}" for GET/);
    expect(problems.join('\n')).to.contain('r:3: "GET /b/x{id}": "x{id}" mixes text and a placeholder');
    expect(problems.join('\n')).to.contain('r:4: action "{op}": unknown placeholder {op} (known here: {id})');
    expect(problems.join('\n')).to.contain('r:5: "GET /d/{p...}/e": {p...} must be the last segment');
    expect(problems.join('\n')).to.contain('r:6: "FETCH! /e": "FETCH!" is not an HTTP method');
  });
});

describe('gateway: routes file', () => {
  it('reports every problem with file:line:column', () => {
    const text = `apiVersion: verdict/v1
kind: GatewayRoutes
unmapped: allow
context:
  headers: [user-agent, Authorization]
upstream:
  headers:
    x-who: "{subject.name}"
routes:
  - match: GET /documents/{id}
    action: read
    resource: { type: document, id: "{docId}" }
  - match: GET /folders/{id}
    actoin: read
    resource: folder
`;
    const problems = problemsOf(() => parseGatewayRoutes('routes.yaml', text)).join('\n');
    expect(problems).to.contain('routes.yaml:3:11: INVALID_VALUE: unmapped: "allow" must be "deny" or "route"');
    expect(problems).to.contain('routes.yaml:5:12: INVALID_VALUE: context.headers: "authorization" carries credentials');
    expect(problems).to.contain('routes.yaml:8:12: INVALID_VALUE: upstream.headers.x-who: "{subject.name}": unknown placeholder {subject.name}');
    expect(problems).to.contain('routes.yaml:14:5: UNKNOWN_FIELD: routes[1]: unknown field "actoin"');
    expect(problems).to.contain('routes.yaml:13:5: MISSING_FIELD: routes[1]: missing required field "action"');
    expect(problems).to.contain('routes.yaml:10:12: resource.id "{docId}": unknown placeholder {docId} (known here: {id})');
  });

  it('reads allowInSegments per route and rejects unknown characters, routes without a parameter, and unsafe literals', () => {
    const text = `routes:
  - match: GET /objects/{key}
    action: get
    resource: object
    allowInSegments: [slash, quote]
  - match: GET /fixed
    action: get
    resource: object
    allowInSegments: slash
  - match: GET /a\\b/{id}
    action: get
    resource: object
  - match: GET /ok/{key}
    action: get
    resource: object
    allowInSegments: [slash, backslash, control, nul]
`;
    const problems = problemsOf(() => parseGatewayRoutes('routes.yaml', text)).join('\n');
    expect(problems).to.contain('routes.yaml:2:12: allowInSegments: "quote" is not one of slash, backslash, control, nul');
    expect(problems).to.contain('routes.yaml:6:12: "GET /fixed": allowInSegments needs a {param} to apply to');
    expect(problems).to.contain('routes.yaml:10:12: "GET /a\\b/{id}": the literal segment "a\\b" holds "\\" (%5C), which no request segment may match');
    expect(problems).not.to.contain('routes.yaml:14');
    const ok = parseGatewayRoutes('routes.yaml', 'routes:\n  - match: GET /ok/{key}\n    action: get\n    resource: object\n    allowInSegments: [slash, control]\n');
    expect(ok.table.match('GET', ['ok', 'x'])!.route.allowedUnsafe).to.equal(5);
  });

  it('loads the example mapping for the example policies', async () => {
    const { loadGatewayRoutes } = await import('../../src/gateway/routes-file.js');
    const { REPO_ROOT } = await import('./helpers/envoy.js');
    const settings = loadGatewayRoutes(path.join(REPO_ROOT, 'examples/gateway/routes.yaml'));
    expect(settings.table.size).to.be.greaterThan(10);
    const m = settings.table.match('POST', ['reports', 'q3', 'export'])!;
    expect(renderTarget(m)).to.deep.include({ action: 'report:export', id: 'q3' });
  });
});

describe('gateway: the documented examples', () => {
  it('examples/gateway/verdict.yaml is a valid configuration', async () => {
    const { REPO_ROOT } = await import('./helpers/envoy.js');
    const config = loadConfig({ configFile: path.join(REPO_ROOT, 'examples/gateway/verdict.yaml') }, {});
    expect(config.tls?.allowedCallers).to.include('spiffe://example.org/ns/edge/sa/envoy');
    expect(config.tokens?.issuers[0]?.algorithms).to.deep.equal(['RS256', 'ES256']);
    expect(config.gateway?.routesFile).to.equal('examples/gateway/routes.yaml');
  });

  it('examples/gateway/envoy.yaml asks Verdict over gRPC with V3, failing closed, without the body', async () => {
    const { REPO_ROOT } = await import('./helpers/envoy.js');
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const envoy = parse(readFileSync(path.join(REPO_ROOT, 'examples/gateway/envoy.yaml'), 'utf8'));
    const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const extAuthz = hcm.http_filters.find((f: { name: string }) => f.name === 'envoy.filters.http.ext_authz').typed_config;
    expect(extAuthz).to.deep.include({ transport_api_version: 'V3', failure_mode_allow: false });
    expect(extAuthz).to.not.have.property('with_request_body');
    expect(extAuthz.grpc_service.envoy_grpc.cluster_name).to.equal('verdict');
    const cluster = envoy.static_resources.clusters.find((c: { name: string }) => c.name === 'verdict');
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).to.have.property('http2_protocol_options');
  });
});

describe('gateway: tls, tokens and gateway settings', () => {
  const validate = (extra: Record<string, unknown>) => problemsOf(() => validateConfig({ ...(DEFAULT_CONFIG as unknown as Record<string, unknown>), ...extra })).join('\n');

  it('refuses "none", HMAC from a JWKS, and issuers without audience or keys', () => {
    const problems = validate({
      tokens: {
        issuers: [
          { issuer: 'https://a/', audiences: ['x'], jwksUrl: 'https://a/jwks', algorithms: ['none', 'HS256', 'RS256'] },
          { issuer: 'https://b/', jwksFile: 'b.json' },
          { issuer: 'https://c/', audiences: ['x'] },
          { issuer: 'https://d/', audiences: ['x'], secretFile: 'd.key' },
        ],
      },
    });
    expect(problems).to.contain('tokens.issuers[0].algorithms: "none" is never accepted');
    expect(problems).to.contain('tokens.issuers[0].algorithms: HS256 needs a secretFile; HMAC keys are never taken from a JWKS');
    expect(problems).to.contain('tokens.issuers[1].audiences: at least one audience is required');
    expect(problems).to.contain('tokens.issuers[2]: set exactly one of jwksUrl, jwksFile or secretFile (got none)');
    expect(problems).to.contain('tokens.issuers[3].algorithms: a secretFile issuer must list its HMAC algorithms explicitly');
  });

  it('refuses a JWKS over plain HTTP unless the issuer allows it explicitly', () => {
    const issuer = { issuer: 'https://a/', audiences: ['x'] };
    const problems = validate({
      tokens: {
        issuers: [
          { ...issuer, jwksUrl: 'http://idp.example.org/jwks.json' },
          { ...issuer, issuer: 'https://b/', jwksUrl: 'http://127.0.0.1:8080/jwks.json', allowInsecureJwksUrl: true },
          { ...issuer, issuer: 'https://c/', jwksUrl: 'https://idp.example.org/jwks.json' },
          { ...issuer, issuer: 'https://d/', jwksFile: 'd.json', allowInsecureJwksUrl: true },
          { ...issuer, issuer: 'https://e/', jwksUrl: 'ftp://idp.example.org/jwks.json' },
        ],
      },
    });
    expect(problems).to.contain(
      'tokens.issuers[0].jwksUrl: "http://idp.example.org/jwks.json" is plain HTTP: whoever can alter the traffic can replace the signing keys and mint tokens; ' +
        'use https://, or set tokens.issuers[0].allowInsecureJwksUrl: true',
    );
    expect(problems).not.to.match(/tokens\.issuers\[[12]\]/);
    expect(problems).to.contain('tokens.issuers[3].allowInsecureJwksUrl: only applies to jwksUrl');
    expect(problems).to.contain('tokens.issuers[4].jwksUrl: "ftp://idp.example.org/jwks.json" must be an http(s) URL');
  });

  it('refuses an allowlist or required client certificates without client CAs, and unknown settings', () => {
    const problems = validate({ tls: { certFile: 'c.pem', keyFile: 'k.pem', requireClientCert: true, allowedCallers: ['spiffe://x/*'], ciphers: 'x' } });
    expect(problems).to.contain('tls.requireClientCert: needs tls.clientCaFile');
    expect(problems).to.contain('tls.allowedCallers: needs tls.clientCaFile');
    expect(problems).to.contain('tls.ciphers: unknown setting');
  });

  it('takes the routes file from --routes, VERDICT_GATEWAY_ROUTES or gateway.routesFile', () => {
    expect(loadConfig({ routes: 'r.yaml' }, {}).gateway?.routesFile).to.equal('r.yaml');
    expect(loadConfig({}, { VERDICT_GATEWAY_ROUTES: 'e.yaml' }).gateway?.routesFile).to.equal('e.yaml');
    expect(loadConfig({}, {}).gateway).to.equal(undefined);
  });

  it('verdict serve stops at start with a message naming a broken routes file or a missing certificate', async function () {
    this.timeout(20_000);
    const dir = tempDir('badstart');
    try {
      const routes = path.join(dir, 'routes.yaml');
      writeFileSync(routes, 'routes:\n  - match: GET /x/{id}\n    action: "{nope}"\n    resource: x\n');
      // checked before any worker starts, whatever --workers says
      const bad = spawnServe(dir, { policies: 'policies', gateway: { routesFile: routes } }, ['--workers', '2']);
      expect(await bad.exit()).to.equal(2);
      expect(bad.output).to.contain(`- gateway.routesFile: ${routes}:2:12: action "{nope}": unknown placeholder {nope}`);
      const noCert = spawnServe(dir, { policies: 'policies', tls: { certFile: path.join(dir, 'missing.pem'), keyFile: path.join(dir, 'missing.key') } });
      expect(await noCert.exit()).to.equal(2);
      expect(noCert.output).to.contain(`- tls: cannot read certFile ${path.join(dir, 'missing.pem')} (ENOENT)`);
    } finally {
      removeDir(dir);
    }
  });
});
