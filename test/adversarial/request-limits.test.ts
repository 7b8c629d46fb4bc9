/**
 * Issue 11, request limits: list lengths, string sizes (in UTF-8 bytes), attribute sizes and key
 * counts are bounded, and enforced identically on every input path: gRPC bytes (the server's wire
 * decoder), proto-loader's object form, JSON requests (CLI, policy tests, HTTP) and token claims.
 * Each limit is refused with INVALID_ARGUMENT and a message naming the field and the setting.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { TokenVerifier } from '../../src/auth/tokens.js';
import type { IssuerConfig } from '../../src/config/schema.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../src/engine/limits.js';
import { parseCheckRequest } from '../../src/engine/input.js';
import { InvalidRequestError } from '../../src/engine/validate.js';
import type { JsonCheckRequest } from '../../src/grpc/client.js';
import { toProtoCheckRequest } from '../../src/grpc/client.js';
import { toCheckRequest, type ProtoCheckRequest } from '../../src/grpc/translate.js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { protoLoaderMethod } from '../grpc/wire-random.js';
import { cleanupServerProcesses, startServer, type VerdictProcess } from '../support/server-process.js';
import { authzClient, check, closeClients, expectGrpcError, policyDir, status, type AuthzClient } from '../grpc/fixtures.js';

const EURO = '€'; // 1 UTF-16 unit, 3 UTF-8 bytes

/** A valid request with these resource attributes (and subject, context). */
function request(resource: Record<string, unknown>, extra: Partial<JsonCheckRequest> = {}): JsonCheckRequest {
  return {
    subject: { id: 'alice', roles: ['employee'], attributes: {} },
    action: 'read',
    resource: { type: 'document', id: 'd1', attributes: { owner: 'alice', ...resource } },
    context: {},
    ...extra,
  } as JsonCheckRequest;
}

const items = (n: number, prefix = 'g') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Cases: a request over one limit, and the message every input path must give. */
const OVER: { name: string; req: JsonCheckRequest; message: string }[] = [
  { name: 'a list of 1,001 items', req: request({ viewers: items(1001) }), message: 'resource.attributes.viewers: holds more than 1000 items (limits.maxAttributeItems)' },
  {
    name: 'nested lists holding 1,010 items together',
    req: request({ viewers: Array.from({ length: 10 }, () => items(100)) }),
    message: 'resource.attributes.viewers: holds more than 1000 items (limits.maxAttributeItems)',
  },
  { name: 'a string of 4,097 bytes', req: request({ note: 'x'.repeat(4097) }), message: 'resource.attributes.note: is longer than 4096 bytes (limits.maxStringBytes)' },
  {
    name: 'a string of 1,366 characters that is 4,098 UTF-8 bytes',
    req: request({ tags: ['ok', EURO.repeat(1366)] }),
    message: 'resource.attributes.tags[1]: is longer than 4096 bytes (limits.maxStringBytes)',
  },
  {
    name: 'a 5,000-byte map key (the path shortens it)',
    req: request({}, { context: { [`k${'y'.repeat(4999)}`]: 1 } }),
    message: `context.k${'y'.repeat(63)}…: is longer than 4096 bytes (limits.maxStringBytes)`,
  },
  {
    name: 'an attribute with 80,000 bytes of strings',
    req: request({ blob: Array.from({ length: 20 }, () => 'b'.repeat(4000)) }),
    message: 'resource.attributes.blob: holds more than 65536 bytes of strings (limits.maxAttributeBytes)',
  },
  {
    name: 'an attribute of 65,537 UTF-8 bytes in 21,857 characters',
    // key "blob" 4 + 16 × 4,095 + 13 = 65,537 bytes, in 21,857 UTF-16 characters
    req: request({ blob: Array.from({ length: 16 }, () => EURO.repeat(1365)).concat(['x'.repeat(13)]) }),
    message: 'resource.attributes.blob: holds more than 65536 bytes of strings (limits.maxAttributeBytes)',
  },
  {
    name: '257 context keys',
    req: request({}, { context: Object.fromEntries(items(257, 'k').map((k) => [k, true])) }),
    message: 'context: has more than 256 attributes (limits.maxAttributes)',
  },
  {
    name: 'a subject id of 342 characters that is 1,026 UTF-8 bytes',
    req: request({}, { subject: { id: EURO.repeat(342), roles: [], attributes: {} } }),
    message: 'subject.id: is longer than 1024 bytes (limits.maxIdentifierLength)',
  },
];

/** The same request at every limit, accepted. */
const AT_LIMITS = request({
  viewers: items(1000),
  note: EURO.repeat(1365),
  blob: Array.from({ length: 16 }, () => 'b'.repeat(4000)),
});

function jsonOutcome(req: JsonCheckRequest, limits: RequestLimits = DEFAULT_REQUEST_LIMITS): string {
  try {
    parseCheckRequest(JSON.parse(JSON.stringify(req)), limits);
    return 'accepted';
  } catch (err) {
    if (err instanceof InvalidRequestError) return err.message;
    throw err;
  }
}

const protoLoaderCheck = protoLoaderMethod('Check');

/** The same request decoded by proto-loader (its object form), then translated as gRPC requests are. */
function objectFormOutcome(req: JsonCheckRequest): string {
  try {
    const bytes = protoLoaderCheck.requestSerialize(toProtoCheckRequest(req));
    toCheckRequest(protoLoaderCheck.requestDeserialize(bytes) as ProtoCheckRequest, DEFAULT_CONFIG.limits);
    return 'accepted';
  } catch (err) {
    if (err instanceof InvalidRequestError) return err.message;
    throw err;
  }
}

describe('adversarial: request limits on every input path', function () {
  this.timeout(30_000);
  let server: VerdictProcess;
  let client: AuthzClient;

  before(async () => {
    server = await startServer({ policies: policyDir() });
    client = authzClient(server.address);
  });

  after(async () => {
    closeClients();
    await cleanupServerProcesses();
  });

  for (const c of OVER) {
    it(`refuses ${c.name}: gRPC, JSON and the object form alike`, async () => {
      await expectGrpcError(check(client, c.req), status.INVALID_ARGUMENT, c.message);
      expect(jsonOutcome(c.req)).to.equal(c.message);
      expect(objectFormOutcome(c.req)).to.equal(c.message);
    });
  }

  it('accepts a request exactly at every limit, on every path', async () => {
    const res = await check(client, AT_LIMITS);
    expect(res.decision).to.match(/^EFFECT_/);
    expect(jsonOutcome(AT_LIMITS)).to.equal('accepted');
    expect(objectFormOutcome(AT_LIMITS)).to.equal('accepted');
  });

  it('a "__proto__" attribute key is sent, counted and refused like any other (the client helper used to drop it)', async () => {
    const req = JSON.parse(`{"subject":{"id":"alice","attributes":{"__proto__":{"x":"${'y'.repeat(4097)}"}}},"action":"read","resource":{"type":"document","id":"d1"}}`) as JsonCheckRequest;
    const message = 'subject.attributes.__proto__.x: is longer than 4096 bytes (limits.maxStringBytes)';
    await expectGrpcError(check(client, req), status.INVALID_ARGUMENT, message);
    expect(jsonOutcome(req)).to.equal(message);
  });

  it('limits are settings: a server with limits.maxAttributeItems 10 refuses 11 items', async () => {
    const small = await startServer({ policies: policyDir(), config: { limits: { maxAttributeItems: 10, maxStringBytes: 64 } } });
    const smallClient = authzClient(small.address);
    await expectGrpcError(check(smallClient, request({ viewers: items(11) })), status.INVALID_ARGUMENT, 'resource.attributes.viewers: holds more than 10 items (limits.maxAttributeItems)');
    await expectGrpcError(check(smallClient, request({ note: 'x'.repeat(65) })), status.INVALID_ARGUMENT, 'resource.attributes.note: is longer than 64 bytes (limits.maxStringBytes)');
    expect((await check(smallClient, request({ viewers: items(10) }))).decision).to.match(/^EFFECT_/);
  });

  describe('token claims', () => {
    const secret = 'a-shared-secret-of-at-least-32-bytes!!';
    let verifier: TokenVerifier;

    before(() => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-claims-'));
      const file = path.join(dir, 'secret');
      writeFileSync(file, secret);
      const issuer: IssuerConfig = {
        issuer: 'https://idp.test/',
        audiences: ['verdict'],
        keys: { kind: 'secret-file', file },
        algorithms: ['HS256'],
        clockSkewSeconds: 0,
        claims: { subject: 'sub', roles: 'roles', attributes: { groups: 'groups', note: 'note' } },
        subjectType: 'user',
      };
      verifier = new TokenVerifier({ issuers: [issuer] }, DEFAULT_REQUEST_LIMITS);
    });

    after(() => verifier.close());

    const token = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://idp.test/')
        .setAudience('verdict')
        .setSubject('alice')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));

    it('claims within the limits give a subject; over any limit the token is refused', async () => {
      const ok = await verifier.verify(await token({ groups: items(1000), note: EURO.repeat(1365) }));
      expect(ok.ok).to.equal(true);
      for (const claims of [{ groups: items(1001) }, { note: EURO.repeat(1366) }, { roles: [EURO.repeat(342)] }]) {
        expect(await verifier.verify(await token(claims)), JSON.stringify(claims).slice(0, 60)).to.deep.equal({ ok: false, problem: 'malformed' });
      }
    });
  });
});
