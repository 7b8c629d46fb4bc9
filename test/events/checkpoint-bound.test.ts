import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { CHECKPOINT_SCHEMA_V2 } from '../../src/events/checkpoint.js';
import {
  check, NATS_URL, randomToken, readStream, Resources, runVerdict, startVerdict, uniqueNames, waitFor, writePolicies,
  type ServerProc, type StoredMessage,
} from '../support/events-harness.js';

interface Checkpoint {
  chain: string;
  seq: number;
  schema: string;
  sig?: { key: string };
}

const checkpoints = (stored: readonly StoredMessage[]) => stored.filter((m) => m.data.schema === CHECKPOINT_SCHEMA_V2).map((m) => m.data as unknown as Checkpoint);

/** The most chained records the stream holds in a row without a checkpoint after them. */
function longestUnsignedRun(stored: readonly StoredMessage[]): number {
  let run = 0;
  let longest = 0;
  for (const m of stored) {
    if (m.data.schema === CHECKPOINT_SCHEMA_V2) run = 0;
    else if (m.data.chain !== undefined) longest = Math.max(longest, ++run);
  }
  return longest;
}

/**
 * The unsigned tail is bounded by count as well as by time (docs/events.md "How much of a chain can
 * be unsigned"): with the interval set to a minute, a checkpoint still follows every
 * events.checkpointMaxEvents records; and a restart signs the tail its crashed predecessor left.
 */
describe('events: checkpoints bound the unsigned tail by count (real server, real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function signingKey(): Promise<string> {
    const file = path.join(res.tmpDir('key'), 'signing-key.pem');
    const out = await runVerdict(['keys', 'generate', '--out', file]);
    expect(out.code, out.stderr).to.equal(0);
    return file;
  }

  async function serve(names: { stream: string; prefix: string }, spoolDir: string, instanceId: string, events: string): Promise<ServerProc> {
    const server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir, instanceId, configYaml: `events:\n${events}` });
    await server.waitForLog(/^NATS available/);
    return server;
  }

  async function decide(server: ServerProc, n: number): Promise<void> {
    const client = res.client(server.address);
    for (let i = 0; i < n; i++) {
      const r = await check(client, { subject: { id: 'alice', roles: ['employee'] }, action: 'read', resource: { type: 'document', id: `d${i}` } });
      expect(r.reason).to.equal('RULE_ALLOW');
    }
  }

  it('events.checkpointMaxEvents is checked at start (1 – 1000000, default 1000)', () => {
    const dir = res.tmpDir('cfg');
    const load = (yaml: string) => {
      const file = path.join(dir, `c-${randomToken(3)}.yaml`);
      writeFileSync(file, yaml);
      return loadConfig({ configFile: file }, {});
    };
    expect(load('events: {}\n').events.checkpointMaxEvents).to.equal(1000);
    for (const bad of ['0', '1000001', '2.5', '"many"']) {
      expect(() => load(`events:\n  checkpointMaxEvents: ${bad}\n`), bad).to.throw(ConfigError, /events\.checkpointMaxEvents/);
    }
  });

  it('with checkpointIntervalMs at a minute, a signed checkpoint follows every checkpointMaxEvents records', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const key = await signingKey();
    const server = await serve(names, res.tmpDir('spool'), `vt-${randomToken(3)}`, `  checkpointIntervalMs: 60000\n  checkpointMaxEvents: 50\n  signingKeyFile: ${key}\n`);
    await decide(server, 130); // + the policy record at seq 1: 131 records
    const nc = await res.nats(NATS_URL);
    let stored: StoredMessage[] = [];
    await waitFor('every record in the stream', async () => {
      stored = await readStream(nc, names.stream);
      return stored.filter((m) => m.data.chain !== undefined && m.data.schema !== CHECKPOINT_SCHEMA_V2).length >= 131;
    }, 20_000, 200);
    const cps = checkpoints(stored);
    // The interval alone would have sent none within the minute: these are the count's.
    expect(cps.map((c) => c.seq)).to.deep.equal([50, 100]);
    for (const c of cps) expect(c.sig?.key, 'signed').to.be.a('string');
    expect(longestUnsignedRun(stored), 'never more than 50 records without a checkpoint after them').to.equal(50);
  });

  it('a restart on the same spool signs the tail its crashed predecessor sent without a checkpoint, before its own records', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const key = await signingKey();
    const spool = res.tmpDir('spool');
    const instance = `vt-${randomToken(3)}`;
    const first = await serve(names, spool, instance, `  checkpointIntervalMs: 60000\n  signingKeyFile: ${key}\n`);
    await decide(first, 10);
    const nc = await res.nats(NATS_URL);
    let stored: StoredMessage[] = [];
    await waitFor('the first run\'s 11 records in the stream, unsigned', async () => {
      stored = await readStream(nc, names.stream).catch(() => []);
      return stored.length >= 11;
    }, 10_000, 100);
    expect(checkpoints(stored), 'no checkpoint yet').to.deep.equal([]);
    const oldChain = String((stored[0]!.data.chain as { id: string }).id);
    first.child.kill('SIGKILL');
    await first.exit;

    const second = await serve(names, spool, instance, `  checkpointIntervalMs: 20\n  signingKeyFile: ${key}\n`);
    await second.waitForLog(/^NATS available/);
    await waitFor('a checkpoint of the crashed run\'s chain', async () => {
      stored = await readStream(nc, names.stream);
      return checkpoints(stored).some((c) => c.chain === oldChain);
    }, 15_000, 100);
    const old = checkpoints(stored).filter((c) => c.chain === oldChain);
    expect(old.map((c) => c.seq), 'the old chain signed up to its last record').to.deep.equal([11]);
    expect(old[0]!.sig?.key).to.be.a('string');
  });
});
