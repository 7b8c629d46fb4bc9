/**
 * Token and JWKS errors on /metrics of a real server trusting an issuer whose keys are a local
 * JWKS file: refused tokens are counted by problem (and as UNAUTHENTICATED decisions); a JWKS file
 * changed into something unreadable is counted as a reload failure.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { toProtoCheckRequest, unary } from '../../src/grpc/client.js';
import { cleanupServerProcesses, makeTempDir } from '../support/server-process.js';
import { authzClient, closeClients, policyDir, pollUntil, type AuthzClient } from '../grpc/fixtures.js';
import { AUDIENCE, ISSUER, signingKey, signToken } from '../gateway/helpers/tokens.js';
import { scrape, startWithAdmin } from './helpers.js';

function checkWithToken(client: AuthzClient, token: string): Promise<{ reason: string }> {
  const { subject: _subject, ...rest } = toProtoCheckRequest({ subject: { id: '-' }, action: 'read', resource: { type: 'document', id: 'd1' } });
  return unary(client, 'Check', { ...rest, token });
}

describe('observability: token and JWKS errors on /metrics', function () {
  this.timeout(30_000);

  afterEach(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  it('counts refused tokens by problem and JWKS files that fail to reload', async () => {
    const key = await signingKey('k1');
    const jwksFile = path.join(makeTempDir('jwks'), 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [key.jwk] }));
    const tokens = { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwksFile, claims: { subject: 'sub', roles: 'roles' } }] };
    const { proc, admin } = await startWithAdmin({ policies: policyDir(), config: { tokens } });
    const client = authzClient(proc.address);

    expect(await checkWithToken(client, await signToken(key, { sub: 'alice', roles: ['employee'] }))).to.include({ reason: 'RULE_ALLOW' });
    expect(await checkWithToken(client, 'not-a-jwt')).to.include({ reason: 'UNAUTHENTICATED' });
    expect(await checkWithToken(client, await signToken(key, { sub: 'alice' }, { expiresIn: -600 }))).to.include({ reason: 'UNAUTHENTICATED' });
    expect(await checkWithToken(client, await signToken(key, { sub: 'alice' }, { issuer: 'https://elsewhere.example/' }))).to.include({ reason: 'UNAUTHENTICATED' });
    expect(await checkWithToken(client, await signToken(await signingKey('k1'), { sub: 'alice' }))).to.include({ reason: 'UNAUTHENTICATED' });

    const s = await scrape(admin);
    const byProblem = Object.fromEntries(s.samples('verdict_token_errors_total').map((m) => [m.labels!.problem, Number(m.value)]));
    expect(byProblem).to.deep.equal({ malformed: 1, expired: 1, unknown_issuer: 1, bad_signature: 1 });
    expect(s.value('verdict_decisions_total', { reason: 'UNAUTHENTICATED' })).to.equal(4);
    expect(s.value('verdict_jwks_reload_failures_total')).to.equal(0);

    writeFileSync(jwksFile, '{"keys": [');
    await pollUntil('a JWKS reload failure', async () => (await scrape(admin)).value('verdict_jwks_reload_failures_total'), (n) => n >= 1);
    await proc.waitForLog((l) => l.component === 'tokens' && /could not be reloaded/.test(String(l.msg)));
  });
});
