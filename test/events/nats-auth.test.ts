import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, credsAuthenticator, nkeys, type ConnectionOptions, type NatsConnection, type StreamConfig } from 'nats';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../src/config/load.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import { headKey } from '../../src/events/checkpoint.js';
import { desiredStream } from '../../src/events/stream.js';
import { startKeeper } from '../audit/support.js';
import { makeCa, makeLeaf } from '../gateway/helpers/pki.js';
import {
  check, randomToken, readTrail, Resources, runVerdict, startVerdict, uniqueNames, waitFor, writePolicies,
  type CheckResponse, type ServerProc,
} from '../support/events-harness.js';
import { ConfiguredNats } from './nats-servers.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/nats/nats-server.conf');
const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/events.md');
const STREAM_EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/nats/verdict-stream.json');
const encode = (s: string) => new TextEncoder().encode(s);

interface KeyPair {
  getPublicKey(): string;
  getSeed(): Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}
const nk = nkeys as { createUser(): KeyPair; createAccount(): KeyPair; createOperator(): KeyPair };

/** A JWT as nsc would issue it (v2 claims, ed25519-nkey), signed by `issuer`. */
function jwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const b64 = (v: string | Uint8Array) => Buffer.from(v).toString('base64url');
  const header = b64(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const payload = b64(JSON.stringify({ jti: randomToken(16).toUpperCase(), iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } }));
  return `${header}.${payload}.${b64(issuer.sign(encode(`${header}.${payload}`)))}`;
}

/** Everything about the tested deployment that a test needs. */
interface Deployment {
  nats: ConfiguredNats;
  names: { stream: string; prefix: string };
  passwords: { operator: string; verdict: string; keeper: string };
  verdictSeed: string;
  dir: string;
}

/** examples/nats/nats-server.conf with this test's stream, prefix, passwords, and an nkey user with Verdict's permissions. */
async function startDeployment(res: Resources): Promise<Deployment> {
  const names = uniqueNames();
  const passwords = { operator: `op-${randomToken()}`, verdict: `v-${randomToken()}`, keeper: `k-${randomToken()}` };
  const seedUser = nk.createUser();
  let text = readFileSync(EXAMPLE, 'utf8')
    .replace(/^listen: .*$/m, '')
    .replace(/^jetstream .*$/m, '')
    .replaceAll('VERDICT_DECISIONS', names.stream)
    .replaceAll('verdict.decisions', names.prefix)
    .replace('change-me-operator', passwords.operator)
    .replace('change-me-verdict', passwords.verdict)
    .replace('change-me-keeper', passwords.keeper);
  const verdictBlock = /\{ user: verdict, password: "[^"]+", permissions: (\{[\s\S]*?\n {6}\}) \}/.exec(text);
  expect(verdictBlock, 'the example has a verdict user').to.not.equal(null);
  text = text.replace(verdictBlock![0], `${verdictBlock![0]}\n      { nkey: ${seedUser.getPublicKey()}, permissions: ${verdictBlock![1]} }`);
  const nats = await ConfiguredNats.start(res, () => text);
  return { nats, names, passwords, verdictSeed: new TextDecoder().decode(seedUser.getSeed()), dir: res.tmpDir('secrets') };
}

function secretFile(d: Deployment, name: string, content: string): string {
  const file = path.join(d.dir, name);
  writeFileSync(file, `${content}\n`, { mode: 0o600 });
  return file;
}

/** Connections made with credentials; closed after each test. */
const opened: NatsConnection[] = [];

async function as(_res: Resources, url: string, opts: Partial<ConnectionOptions>): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: 0, timeout: 3000, ...opts });
  opened.push(nc);
  return nc;
}

/** The operator creates the stream as Verdict requires it (docs/events.md: "Who creates the stream"). */
async function createStreamAsOperator(res: Resources, d: Deployment): Promise<NatsConnection> {
  const op = await as(res, d.nats.url, { user: 'operator', pass: d.passwords.operator });
  const example = JSON.parse(readFileSync(STREAM_EXAMPLE, 'utf8').replaceAll('VERDICT_DECISIONS', d.names.stream).replaceAll('verdict.decisions', d.names.prefix)) as StreamConfig;
  // The example is exactly what Verdict requires of the stream with the default settings.
  expect(example).to.deep.equal(desiredStream({ ...DEFAULT_CONFIG.events, stream: d.names.stream, subjectPrefix: d.names.prefix }));
  await (await op.jetstreamManager()).streams.add(example);
  return op;
}

async function eventIds(nc: NatsConnection, stream: string): Promise<Set<string>> {
  const consumer = await nc.jetstream().consumers.get(stream);
  const ids = new Set<string>();
  const info = await (await nc.jetstreamManager()).streams.info(stream);
  if (info.state.messages === 0) return ids;
  const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
  for await (const m of batch) {
    const data = JSON.parse(m.string()) as { schema?: string; id?: string };
    if (data.schema === EVENT_SCHEMA) ids.add(String(data.id));
    if (m.seq >= info.state.last_seq) break;
  }
  return ids;
}

/** `op` fails with a permissions violation naming `subject`. */
async function expectRefused(op: () => Promise<unknown>, subject: RegExp): Promise<void> {
  let error: unknown;
  try {
    await op();
  } catch (err) {
    error = err;
  }
  expect(error, `refused: ${String(subject)}`).to.be.instanceOf(Error);
  expect((error as { code?: string }).code).to.equal('PERMISSIONS_VIOLATION');
  expect((error as Error).message).to.match(subject);
}

describe('events: NATS credentials, TLS and the permissions of docs/events.md (real nats-server with that configuration)', function () {
  this.timeout(40_000);
  const res = new Resources();
  afterEach(async () => {
    for (const nc of opened.splice(0)) await nc.close().catch(() => undefined);
    await res.cleanup();
  });
  after(() => res.cleanup());

  async function serveWith(d: Pick<Deployment, 'names'>, url: string, events: string): Promise<ServerProc> {
    return startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: url, ...d.names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}`,
      configYaml: `events:\n  checkpointIntervalMs: 20\n${events}`,
    });
  }

  async function decide(server: ServerProc, n: number): Promise<CheckResponse[]> {
    await server.waitForLog(/^NATS available/);
    const client = res.client(server.address);
    const out: CheckResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } }));
    return out;
  }

  it('Verdict publishes with its own credentials; nobody but the operator can update, delete, purge or delete from the stream; the keeper reads but cannot publish', async () => {
    const d = await startDeployment(res);
    const op = await createStreamAsOperator(res, d);
    const server = await serveWith(d, d.nats.url, `  natsUser: verdict\n  natsPasswordFile: ${secretFile(d, 'verdict.password', d.passwords.verdict)}\n  manageStream: false\n`);
    const made = await decide(server, 5);
    await waitFor('the decisions in the stream', async () => (await eventIds(op, d.names.stream)).size >= 5, 10_000, 100);
    expect(await eventIds(op, d.names.stream)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    expect(server.stdout + server.stderr, 'the password is never logged').to.not.include(d.passwords.verdict);

    const s = d.names.stream;
    for (const [who, opts] of [
      ['verdict', { user: 'verdict', pass: d.passwords.verdict }],
      ['keeper', { user: 'keeper', pass: d.passwords.keeper }],
    ] as const) {
      const nc = await as(res, d.nats.url, opts);
      const jsm = await nc.jetstreamManager();
      const have = (await jsm.streams.info(s)).config;
      await expectRefused(() => jsm.streams.update(s, { ...have, max_msgs: 1 }), new RegExp(`STREAM\\.UPDATE\\.${s}`));
      await expectRefused(() => jsm.streams.purge(s), new RegExp(`STREAM\\.PURGE\\.${s}`));
      await expectRefused(() => jsm.streams.deleteMessage(s, 1), new RegExp(`STREAM\\.MSG\\.DELETE\\.${s}`));
      await expectRefused(() => jsm.streams.delete(s), new RegExp(`STREAM\\.DELETE\\.${s}`));
      expect((await (await op.jetstreamManager()).streams.info(s)).state.messages, `${who} changed nothing`).to.be.greaterThanOrEqual(5);
    }

    // The keeper consumes everything with a durable consumer, and cannot publish a decision.
    const keeper = await as(res, d.nats.url, { user: 'keeper', pass: d.passwords.keeper });
    const kjsm = await keeper.jetstreamManager();
    await kjsm.consumers.add(s, { durable_name: 'keeper', ack_policy: 'explicit' as never });
    const consumer = await keeper.jetstream().consumers.get(s, 'keeper');
    const seen = new Set<string>();
    const batch = await consumer.fetch({ max_messages: 100, expires: 1000 });
    for await (const m of batch) {
      const data = JSON.parse(m.string()) as { schema?: string; id?: string };
      if (data.schema === EVENT_SCHEMA) seen.add(String(data.id));
      m.ack();
    }
    expect(seen).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    await expectRefused(() => keeper.jetstream().publish(`${d.names.prefix}.document.allow`, encode('{"forged":true}'), { timeout: 2000 }), new RegExp(`Publish to "${d.names.prefix.replace('.', '\\.')}\\.document\\.allow"`));

    // No anonymous access at all.
    let anonymous: unknown;
    await connect({ servers: d.nats.url, maxReconnectAttempts: 0, timeout: 3000 }).then((nc) => nc.close(), (err: unknown) => (anonymous = err));
    expect((anonymous as { code?: string }).code).to.equal('AUTHORIZATION_VIOLATION');

    // The operator can (a positive control: the refusals above are the permissions, nothing else).
    const ojsm = await op.jetstreamManager();
    await ojsm.streams.update(s, { ...(await ojsm.streams.info(s)).config, description: 'checked by the operator' });
  });

  it('the example\'s roles hold end to end: Verdict records its heads (KV) and revision text (Object Store) with only its grants; `audit consume` runs as the read-only keeper user', async () => {
    // docs/events.md shows this very configuration (less its comments): every line of it is in the example.
    const docs = readFileSync(DOCS, 'utf8');
    const section = docs.slice(docs.indexOf('### NATS permissions and credentials'));
    const block = section.slice(section.indexOf('```\n') + 4, section.indexOf('\n```', section.indexOf('```\n') + 4));
    const exampleLines = new Set(readFileSync(EXAMPLE, 'utf8').split('\n').map((l) => l.trimEnd()));
    expect(block).to.include('accounts {');
    for (const line of block.split('\n')) expect(exampleLines.has(line.trimEnd()), `docs line not in the example: ${line}`).to.equal(true);
    const d = await startDeployment(res);
    const op = await createStreamAsOperator(res, d);
    // The operator creates the two buckets too: Verdict may not create streams.
    const ojs = op.jetstream();
    await ojs.views.kv('VERDICT_HEADS', { history: 64 });
    await ojs.views.os('VERDICT_POLICIES', { storage: 'file' as never });
    const instance = `vt-${randomToken(3)}`;
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: d.nats.url, ...d.names, spoolDir: res.tmpDir('spool'), instanceId: instance,
      configYaml: `events:\n  checkpointIntervalMs: 20\n  headsIntervalMs: 1000\n  natsUser: verdict\n  natsPasswordFile: ${secretFile(d, 'verdict.password', d.passwords.verdict)}\n  manageStream: false\n`,
    });
    const made = await decide(server, 5);
    const kv = await ojs.views.kv('VERDICT_HEADS', { bindOnly: true });
    await waitFor('Verdict\'s head in the KV bucket', async () => (await kv.get(headKey(instance)))?.operation === 'PUT', 10_000, 100);
    await waitFor('the revision\'s text in the Object Store', async () => (await (await ojs.views.os('VERDICT_POLICIES')).list()).length === 1, 10_000, 100);
    expect(server.log(/chain head not recorded|policy revision text not stored/), server.tail(20)).to.equal(undefined);

    // The keeper, with the keeper user's credentials (flags shared with nothing but the events settings' checks).
    const out = res.tmpDir('trail');
    const keeperArgs = ['--nats', d.nats.url, '--stream', d.names.stream, '--out', out, '--durable', 'keeper'];
    const keeper = await startKeeper(res, [...keeperArgs, '--nats-user', 'keeper', '--nats-password-file', secretFile(d, 'keeper.password', d.passwords.keeper)]);
    await waitFor('every decision in the keeper\'s trail', () => {
      const ids = new Set(readTrail(out).map((l) => l.data?.id));
      return made.every((r) => ids.has(r.decisionId));
    }, 15_000, 100);
    expect(await keeper.stop('SIGTERM'), keeper.tail(20)).to.equal(0);
    expect(keeper.stdout + keeper.stderr, 'the password is never logged').to.not.include(d.passwords.keeper);
    // Its user cannot publish a forged decision, nor change the stream.
    const asKeeper = await as(res, d.nats.url, { user: 'keeper', pass: d.passwords.keeper });
    await expectRefused(() => asKeeper.jetstream().publish(`${d.names.prefix}.payroll.allow`, encode('mallory ALLOWED'), { timeout: 2000 }), /Permissions Violation for Publish/);
    // Without credentials the keeper is refused by the server: it connects with what it is given.
    const anonymous = await startKeeper(res, ['--nats', d.nats.url, '--stream', d.names.stream, '--out', res.tmpDir('trail2'), '--durable', 'keeper2', '--connect-timeout', '1'], false);
    expect(await anonymous.exit).to.equal(1);
    expect(anonymous.stderr, anonymous.stderr).to.match(/Authorization Violation|AUTHORIZATION_VIOLATION/i);
    // A broken credential file is a usage error naming the flag.
    const broken = await startKeeper(res, [...keeperArgs, '--nats-user', 'keeper', '--nats-password-file', path.join(d.dir, 'missing')], false);
    expect(await broken.exit).to.equal(2);
    expect(broken.stderr).to.match(/--nats-password-file: cannot read .*missing \(ENOENT\)/);
  });

  it('Verdict connects with an nkey seed file', async () => {
    const d = await startDeployment(res);
    const op = await createStreamAsOperator(res, d);
    const server = await serveWith(d, d.nats.url, `  natsNkeySeedFile: ${secretFile(d, 'verdict.nk', d.verdictSeed)}\n  manageStream: false\n`);
    const made = await decide(server, 3);
    await waitFor('the decisions in the stream', async () => (await eventIds(op, d.names.stream)).size >= 3, 10_000, 100);
    expect(await eventIds(op, d.names.stream)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    expect(server.stdout + server.stderr).to.not.include(d.verdictSeed);
  });

  it('Verdict connects with a token file', async () => {
    const token = `t-${randomToken(12)}`;
    const nats = await ConfiguredNats.start(res, () => `authorization { token: "${token}" }`);
    const names = uniqueNames();
    const dir = res.tmpDir('secrets');
    writeFileSync(path.join(dir, 'token'), token);
    const server = await serveWith({ names }, nats.url, `  natsTokenFile: ${path.join(dir, 'token')}\n`);
    const made = await decide(server, 3);
    const nc = await as(res, nats.url, { token });
    await waitFor('the decisions in the stream', async () => (await eventIds(nc, names.stream)).size >= 3, 10_000, 100);
    expect(await eventIds(nc, names.stream)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    expect(server.stdout + server.stderr).to.not.include(token);
  });

  it('Verdict connects with a .creds file (operator mode: JWTs)', async () => {
    const operator = nk.createOperator();
    const system = nk.createAccount();
    const account = nk.createAccount();
    const user = nk.createUser();
    const limits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
    const names = uniqueNames();
    const userJwt = jwt(account, user.getPublicKey(), 'verdict', { type: 'user', pub: { allow: [`${names.prefix}.>`, '$JS.API.>'] }, sub: { allow: ['_INBOX.>'] }, subs: -1, data: -1, payload: -1 });
    const nats = await ConfiguredNats.start(res, () =>
      [
        `operator: "${jwt(operator, operator.getPublicKey(), 'op', { type: 'operator', system_account: system.getPublicKey() })}"`,
        `system_account: ${system.getPublicKey()}`,
        'resolver: MEMORY',
        'resolver_preload: {',
        `  ${system.getPublicKey()}: "${jwt(operator, system.getPublicKey(), 'SYS', { type: 'account', limits })}"`,
        `  ${account.getPublicKey()}: "${jwt(operator, account.getPublicKey(), 'EVIDENCE', { type: 'account', limits: { ...limits, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } })}"`,
        '}',
      ].join('\n'),
    );
    const seed = new TextDecoder().decode(user.getSeed());
    const creds = `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    const dir = res.tmpDir('secrets');
    writeFileSync(path.join(dir, 'verdict.creds'), creds);
    const server = await serveWith({ names }, nats.url, `  natsCredsFile: ${path.join(dir, 'verdict.creds')}\n`);
    await server.waitForLog(/^NATS available/).catch((err: Error) => {
      throw new Error(`${err.message}\n${server.tail(30)}`);
    });
    const made = await decide(server, 3);
    const nc = await as(res, nats.url, { authenticator: credsAuthenticator(encode(creds)) });
    await waitFor('the decisions in the stream', async () => (await eventIds(nc, names.stream)).size >= 3, 10_000, 100);
    expect(await eventIds(nc, names.stream)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    expect(server.stdout + server.stderr).to.not.include(seed);
  });

  it('Verdict connects over TLS with a CA and a client certificate (the server verifies it)', async () => {
    const pki = res.tmpDir('pki');
    const ca = makeCa(pki, 'ca');
    const serverCert = makeLeaf(pki, ca, 'nats', { cn: 'nats', san: ['IP:127.0.0.1', 'DNS:localhost'], usage: 'serverAuth' });
    const client = makeLeaf(pki, ca, 'verdict', { cn: 'verdict', usage: 'clientAuth' });
    const nats = await ConfiguredNats.start(res, () => `tls { cert_file: "${serverCert.cert}", key_file: "${serverCert.key}", ca_file: "${ca.cert}", verify: true }`, { scheme: 'tls' });
    const names = uniqueNames();
    const server = await serveWith({ names }, nats.url, `  natsCaFile: ${ca.cert}\n  natsCertFile: ${client.cert}\n  natsKeyFile: ${client.key}\n`);
    const made = await decide(server, 3);
    const nc = await as(res, nats.url, { tls: { caFile: ca.cert, certFile: client.cert, keyFile: client.key } });
    await waitFor('the decisions in the stream', async () => (await eventIds(nc, names.stream)).size >= 3, 10_000, 100);
    expect(await eventIds(nc, names.stream)).to.deep.equal(new Set(made.map((r) => r.decisionId)));
    // Without a client certificate the server refuses the connection.
    let refused: unknown;
    await connect({ servers: nats.url, maxReconnectAttempts: 0, timeout: 3000, tls: { caFile: ca.cert } }).then((c) => c.close(), (err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(Error);
  });

  it('credential settings are checked at start: exit 2 naming the setting, never printing the secret', async () => {
    const dir = res.tmpDir('secrets');
    const seedFile = path.join(dir, 'bad.nk');
    writeFileSync(seedFile, 'SUnot-a-seed-but-secret-looking');
    const token = path.join(dir, 'token');
    writeFileSync(token, 'tok-secret-value');
    const pki = res.tmpDir('pki');
    const ca = makeCa(pki, 'ca');
    const other = makeLeaf(pki, ca, 'other', { cn: 'other', usage: 'clientAuth' });
    const mine = makeLeaf(pki, ca, 'mine', { cn: 'mine', usage: 'clientAuth' });
    const cases: [string, RegExp][] = [
      [`natsUser: verdict\n  natsPasswordFile: ${path.join(dir, 'missing')}`, /events\.natsPasswordFile: cannot read .*missing \(ENOENT\)/],
      [`natsNkeySeedFile: ${seedFile}`, /events\.natsNkeySeedFile: .* does not hold an nkey seed/],
      [`natsTokenFile: ${token}\n  natsNkeySeedFile: ${seedFile}`, /events: set only one NATS credential/],
      [`natsCertFile: ${mine.cert}`, /events\.natsCertFile and events\.natsKeyFile: set both/],
      [`natsCertFile: ${mine.cert}\n  natsKeyFile: ${other.key}`, /events\.natsKeyFile: .* does not belong to the certificate/],
      ['natsPasswordFile: /etc/hostname', /events\.natsPasswordFile: needs events\.natsUser/],
    ];
    for (const [events, message] of cases) {
      const cfg = path.join(dir, `c-${randomToken(3)}.yaml`);
      writeFileSync(cfg, `events:\n  ${events}\n`);
      let error: unknown;
      try {
        loadConfig({ configFile: cfg }, {});
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as Error).message).to.match(message);
      expect((error as Error).message).to.not.include('tok-secret-value').and.not.include('not-a-seed-but-secret-looking');
    }
    // The same through `verdict serve`: exit code 2 before anything starts.
    const cfg = path.join(dir, 'seed.yaml');
    writeFileSync(cfg, `events:\n  natsNkeySeedFile: ${seedFile}\n`);
    const serve = await runVerdict(['serve', '--config', cfg, '--policies', writePolicies(res.tmpDir('policies')), '--listen', '127.0.0.1:0']);
    expect(serve.code, serve.stderr).to.equal(2);
    expect(serve.stderr).to.match(/events\.natsNkeySeedFile: .* does not hold an nkey seed/);
    expect(serve.stdout + serve.stderr).to.not.include('not-a-seed-but-secret-looking');
    const withUrlCredentials = path.join(dir, 'url.yaml');
    writeFileSync(withUrlCredentials, 'events:\n  natsUrl: nats://verdict:hunter2@127.0.0.1:4222\n');
    const out = await runVerdict(['serve', '--config', withUrlCredentials, '--policies', writePolicies(res.tmpDir('policies'))]);
    expect(out.code).to.equal(2);
    expect(out.stderr).to.match(/events\.natsUrl: must not hold credentials/);
    expect(out.stderr).to.not.include('hunter2');
  });
});
