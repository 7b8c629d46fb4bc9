/**
 * Envoy ext_authz against a real `verdict serve` (example policies, examples/gateway/routes.yaml),
 * with subject tokens from an identity provider whose JWKS is served by this test process.
 */
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { call, callError, envoyCheck, extAuthzClient, headersOf, REPO_ROOT, type AnyClient } from './helpers/envoy.js';
import { removeDir, startServe, tempDir, type ServeProcess } from './helpers/server.js';
import { AUDIENCE, JwksServer, signingKey, signToken, tamperedToken, tokensConfig, unsignedToken, type SigningKey } from './helpers/tokens.js';

const ROUTES = path.join(REPO_ROOT, 'examples/gateway/routes.yaml');
const POLICIES = path.join(REPO_ROOT, 'policies');

/** An auditor cleared for secret material: the example policies let auditors read any document. */
const AUDITOR = { sub: 'alice', roles: ['employee', 'auditor'], dept: 'finance', clearance: 3 };
/** A plain employee: may not delete documents she does not own. */
const EMPLOYEE = { sub: 'bob', roles: ['employee'], dept: 'sales', clearance: 1 };

type CheckResponse = {
  status?: { code?: number; message?: string };
  okResponse?: { headers?: { header?: { key?: string; value?: string } }[]; headersToRemove?: string[] };
  deniedResponse?: { status?: { code?: string }; headers?: { header?: { key?: string; value?: string } }[]; body?: string };
  httpResponse?: string;
};

describe('gateway: Envoy ext_authz over gRPC', function () {
  this.timeout(30_000);
  let dir: string;
  let jwks: JwksServer;
  let key: SigningKey;
  let server: ServeProcess;
  let client: AnyClient;
  const tokensSeen: string[] = [];

  const check = (o: Parameters<typeof envoyCheck>[0]) => {
    if (o.token) tokensSeen.push(o.token);
    return call<CheckResponse>(client, 'Check', envoyCheck(o));
  };
  const token = async (claims: Record<string, unknown>, o: Parameters<typeof signToken>[2] = {}, k: SigningKey = key) => signToken(k, claims, o);

  function expectDenied(r: CheckResponse, httpStatus: string): { body: Record<string, unknown>; headers: Record<string, string> } {
    expect(r.httpResponse, JSON.stringify(r)).to.equal('deniedResponse');
    expect(r.deniedResponse?.status?.code).to.equal(httpStatus);
    const headers = headersOf(r.deniedResponse?.headers);
    expect(headers['content-type']).to.equal('application/json');
    return { body: JSON.parse(r.deniedResponse!.body!) as Record<string, unknown>, headers };
  }

  before(async () => {
    dir = tempDir('extauthz');
    jwks = new JwksServer();
    key = await signingKey('key-1');
    jwks.keys = [key];
    await jwks.start();
    server = await startServe(dir, { policies: POLICIES, logDecisions: true, tokens: tokensConfig(jwks.url), gateway: { routesFile: ROUTES } });
    client = extAuthzClient(server.address);
  });

  after(async () => {
    client?.close();
    await server?.stop();
    await jwks?.close();
    if (dir) removeDir(dir);
  });

  it('allows a mapped request for a verified subject, with headers for the upstream', async () => {
    const r = await check({ path: '/documents/d-17?version=2', token: await token(AUDITOR) });
    expect(r.httpResponse, JSON.stringify(r)).to.equal('okResponse');
    expect(r.status?.code ?? 0).to.equal(0);
    const headers = headersOf(r.okResponse?.headers);
    expect(headers['x-verdict-subject']).to.equal('alice');
    expect(headers['x-verdict-roles']).to.equal('employee,auditor');
    expect(headers['x-verdict-decision-id']).to.match(/^[0-9a-f-]{36}$/);
    // appended headers would let a client smuggle its own x-verdict-subject past Verdict
    expect(r.okResponse!.headers!.every((h) => (h as { appendAction?: string }).appendAction === 'OVERWRITE_IF_EXISTS_OR_ADD')).to.equal(true);
  });

  it('maps path parameters into the action and resource ("POST /reports/{id}/{operation}")', async () => {
    // auditors may run any report ("report:*")
    const r = await check({ method: 'POST', path: '/reports/q3-sales/run', token: await token(AUDITOR) });
    expect(r.httpResponse).to.equal('okResponse');
    // but nobody else: bob is no auditor and no department member of an unlabelled report
    const denied = await check({ method: 'POST', path: '/reports/q3-sales/export', token: await token(EMPLOYEE) });
    expectDenied(denied, 'Forbidden');
  });

  it('denies what the policies deny: 403 with a JSON body naming the decision', async () => {
    const r = await check({ method: 'DELETE', path: '/documents/d-17', token: await token(EMPLOYEE) });
    const { body, headers } = expectDenied(r, 'Forbidden');
    expect(r.status?.code).to.equal(status.PERMISSION_DENIED);
    expect(body.error).to.equal('forbidden');
    expect(body.decision_id).to.match(/^[0-9a-f-]{36}$/);
    expect(headers['x-verdict-decision-id']).to.equal(body.decision_id);
  });

  it('denies an unmapped route without consulting the policies', async () => {
    const r = await check({ path: '/admin/metrics', token: await token(AUDITOR) });
    const { body } = expectDenied(r, 'Forbidden');
    const line = await server.waitFor((l: Record<string, unknown>) => l.decisionId === body.decision_id);
    expect(line.reason).to.equal('NO_ROUTE');
  });

  it('answers 401 with a Bearer challenge when the token is missing', async () => {
    const r = await check({ path: '/documents/d-17' });
    const { body, headers } = expectDenied(r, 'Unauthorized');
    expect(r.status?.code).to.equal(status.UNAUTHENTICATED);
    expect(headers['www-authenticate']).to.equal('Bearer realm="verdict"');
    expect(body.error).to.equal('unauthenticated');
  });

  /** Exactly these claims (plus iss, aud, exp), signed with the issuer's key. */
  const signedClaims = async (claims: Record<string, unknown>) => {
    const { SignJWT } = await import('jose');
    return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid }).setIssuer('https://idp.example.test/').setAudience(AUDIENCE).setExpirationTime('5m').sign(key.privateKey);
  };

  const invalid: [string, () => Promise<string>, string][] = [
    ['expired', () => token(AUDITOR, { expiresIn: -120 }), 'the token has expired'],
    ['for another audience', () => token(AUDITOR, { audience: 'payroll-api' }), 'the token is not meant for this service'],
    ['from an untrusted issuer', () => token(AUDITOR, { issuer: 'https://evil.example.test/' }), 'the token issuer is not trusted'],
    ['unsigned (alg: none)', async () => unsignedToken(AUDITOR), 'the token algorithm is not allowed'],
    ['tampered with (roles changed after signing)', async () => tamperedToken(await token(EMPLOYEE), { roles: ['admin'] }), 'the token signature is invalid'],
    ['not yet valid', () => token(AUDITOR, { notBefore: 3600 }), 'the token is not valid yet'],
    // the issuer's clock skew is 5 s (tokensConfig): an hour ahead is refused, 3 s ahead is not (below)
    ['issued an hour in the future', () => token(AUDITOR, { issuedAt: 3600 }), 'the token was issued in the future'],
    ['with an "iat" that is not a number', () => signedClaims({ ...AUDITOR, iat: 'yesterday' }), 'the token is malformed'],
    ['signed by a key the issuer never published', async () => token(AUDITOR, {}, await signingKey('key-1')), 'the token signature is invalid'],
    ['not a JWT', async () => 'not-a-jwt', 'the token is malformed'],
  ];
  for (const [what, make, description] of invalid) {
    it(`answers 401 invalid_token for a token ${what}`, async () => {
      const r = await check({ path: '/documents/d-17', token: await make() });
      const { body, headers } = expectDenied(r, 'Unauthorized');
      expect(headers['www-authenticate']).to.equal(`Bearer realm="verdict", error="invalid_token", error_description="${description}"`);
      expect(body.error).to.equal('invalid_token');
      const line = await server.waitFor((l: Record<string, unknown>) => l.decisionId === body.decision_id);
      expect(line.reason).to.equal('UNAUTHENTICATED');
      expect(line.subject ?? '').to.equal('');
    });
  }

  it('accepts a token issued slightly in the future, within the clock skew', async () => {
    const r = await check({ path: '/documents/d-17', token: await token(AUDITOR, { issuedAt: 3 }) });
    expect(r.httpResponse, JSON.stringify(r)).to.equal('okResponse');
  });

  it('refuses an HS256 token made with the public key as HMAC secret (no HS/RS confusion)', async () => {
    const { SignJWT } = await import('jose');
    const secret = new TextEncoder().encode(JSON.stringify(key.jwk));
    const forged = await new SignJWT(AUDITOR).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setIssuer('https://idp.example.test/').setAudience(AUDIENCE).setExpirationTime('5m').sign(secret);
    const r = await check({ path: '/documents/d-17', token: forged });
    expect(expectDenied(r, 'Unauthorized').headers['www-authenticate']).to.contain('error_description="the token algorithm is not allowed"');
  });

  it('follows a key rotation of the issuer: new keys are fetched, removed keys stop working', async () => {
    const oldKey = key;
    const oldToken = await token(AUDITOR, {}, oldKey);
    expect((await check({ path: '/documents/d-1', token: oldToken })).httpResponse).to.equal('okResponse');
    const newKey = await signingKey('key-2');
    jwks.keys = [newKey];
    const before = jwks.fetches;
    const r = await check({ path: '/documents/d-1', token: await token(AUDITOR, {}, newKey) });
    expect(r.httpResponse, JSON.stringify(r)).to.equal('okResponse');
    expect(jwks.fetches).to.be.greaterThan(before);
    const stale = await check({ path: '/documents/d-1', token: oldToken });
    expect(headersOf(stale.deniedResponse?.headers)['www-authenticate']).to.contain('error="invalid_token"');
    key = newKey;
  });

  it('takes a service subject from the mTLS principal Envoy reports when there is no token', async () => {
    // No example policy grants role "service" anything: the decision is a policy DENY, not a 401.
    const r = await check({ path: '/reports/r-1', principal: 'spiffe://example.org/ns/billing/sa/reporter' });
    const { body } = expectDenied(r, 'Forbidden');
    const line = await server.waitFor((l: Record<string, unknown>) => l.decisionId === body.decision_id);
    expect(line.subject).to.equal('spiffe://example.org/ns/billing/sa/reporter');
    expect(line.reason).to.equal('NO_MATCHING_RULE');
  });

  it('answers 400 for a path Verdict refuses to map (dot segments, bad encoding)', async () => {
    for (const p of ['/documents/%2e%2e/admin', '/documents/%zz']) {
      const r = await check({ path: p, token: await token(AUDITOR) });
      expectDenied(r, 'BadRequest');
    }
  });

  it('rejects a CheckRequest without an HTTP request with INVALID_ARGUMENT', async () => {
    const err = await callError(client, 'Check', { attributes: { source: {} } });
    expect(err.code).to.equal(status.INVALID_ARGUMENT);
  });

  it('never writes a token to the logs', async () => {
    expect(tokensSeen.length).to.be.greaterThan(5);
    for (const t of tokensSeen) {
      const signature = t.split('.')[2];
      expect(server.output).not.to.contain(t);
      if (signature) expect(server.output).not.to.contain(signature);
    }
  });
});
