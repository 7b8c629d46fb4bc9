import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eventHash } from '../../src/events/chain.js';
import { CHECKPOINT_SCHEMA_V2 } from '../../src/events/checkpoint.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import {
  checkBatch, NATS_URL, randomToken, readTrail, Resources, runVerdict, sleep, startVerdict, trailFiles, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type Proc, type ServerProc,
} from '../support/events-harness.js';
import { chainOfInstance, checkpointOf, newKey, startKeeper, writeKeyring, type TestKey } from './support.js';

/** `batches` CheckBatch calls of `size` items: every third item is denied (suspended subject). */
async function decide(client: AuthzClient, batches: number, size: number, tag: string, pauseMs = 0): Promise<number> {
  let n = 0;
  for (let b = 0; b < batches; b++) {
    if (b > 0 && pauseMs > 0) await sleep(pauseMs); // checkpoints between batches
    for (const suspended of [false, true]) {
      const items = Array.from({ length: suspended ? Math.floor(size / 3) : size - Math.floor(size / 3) }, (_, i) => ({ action: 'read', resource: { type: 'document', id: `${tag}-${b}-${suspended}-${i}` } }));
      await checkBatch(client, { id: `u-${tag}`, roles: ['employee'], attributes: { suspended } }, items, `${tag}-${b}`);
      n += items.length;
    }
  }
  return n;
}

const problems = (p: Proc) => p.logs.filter((l) => l.msg === 'AUDIT TRAIL PROBLEM');
const isCheckpoint = (l: string) => JSON.parse(l).data?.schema === CHECKPOINT_SCHEMA_V2;

describe('evidence: signed checkpoints, a keeper that keeps only valid records, truncation made visible (real NATS, real processes)', function () {
  this.timeout(90_000);
  const res = new Resources();
  let names: { stream: string; prefix: string };
  let dir: string;
  let instance: string;
  let bucket: string;
  let pdpKey: TestKey;
  let keeperKey: TestKey;
  let attacker: TestKey;
  let keyring: string;

  beforeEach(() => {
    names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    bucket = `VT_HEADS_${randomToken(4).toUpperCase()}`;
    res.stream(NATS_URL, `KV_${bucket}`);
    dir = res.tmpDir('evidence');
    instance = `vt-${randomToken(3)}`;
    pdpKey = newKey(dir, 'pdp');
    keeperKey = newKey(dir, 'keeper');
    attacker = newKey(dir, 'mallory');
    keyring = writeKeyring(dir, [{ key: pdpKey, instances: [`${instance}*`], name: 'pdp' }, { key: keeperKey, keeper: true, name: 'keeper' }]);
  });
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(): Promise<{ server: ServerProc; client: AuthzClient }> {
    const server = await startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: instance,
      configYaml: `events:\n  signingKeyFile: ${pdpKey.file}\n  headsBucket: ${bucket}\n  headsIntervalMs: 1000\n`,
    });
    await server.waitForLog(/^NATS available/);
    return { server, client: res.client(server.address) };
  }

  const keeperArgs = (outDir: string, receipts: string, extra: string[] = []) => [
    '--nats', NATS_URL, '--stream', names.stream, '--subject-prefix', names.prefix, '--out', outDir, '--durable', 'keeper',
    '--keys', keyring, '--receipts', receipts, '--signing-key', keeperKey.file, ...extra,
  ];

  const verify = (files: string[], ...flags: string[]) => runVerdict(['audit', 'verify', '--keys', keyring, ...flags, ...files]);

  /** A copy of the trail under the same file names, with `edit` applied to the lines of the (single) file. */
  function tampered(trailDir: string, label: string, edit: (lines: string[]) => string[]): string[] {
    const out = path.join(dir, `tampered-${label}`);
    mkdirSync(out);
    return trailFiles(trailDir).map((f) => {
      const lines = readFileSync(f, 'utf8').split('\n').filter(Boolean);
      const copy = path.join(out, path.basename(f));
      writeFileSync(copy, `${edit(lines).join('\n')}\n`);
      return copy;
    });
  }

  it('a signed run verifies; a cut tail, a deleted final or every checkpoint, a re-hashed tail and edited wrappers are each reported', async () => {
    const outDir = res.tmpDir('trail');
    const receipts = path.join(res.tmpDir('receipts'), 'receipts.json');
    const { server, client } = await serve();
    const keeper = await startKeeper(res, keeperArgs(outDir, receipts, ['--rotate-bytes', String(64 * 1024 * 1024)]));
    const made = await decide(client, 7, 100, 'e', 150);
    expect(made).to.equal(700);
    const records = made + 1; // seq 1 of the chain: the policy set that went live at start (verdict.policy.v1)
    expect(await server.stop('SIGTERM')).to.equal(0);
    await waitFor('the final checkpoint in the trail', () => readTrail(outDir).some((r) => r.data.schema === CHECKPOINT_SCHEMA_V2 && r.data.final === true), 15_000);
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    expect(problems(keeper)).to.deep.equal([]);

    // Verdict logged its last signed head at shutdown, and recorded it in the KV bucket.
    const logged = server.log('decision chain head')?.head as { checkpoint: Record<string, unknown>; streamSeq: number };
    expect(logged.checkpoint).to.include({ final: true, seq: records, instance });
    expect((logged.checkpoint.sig as { key: string }).key).to.equal(pdpKey.id);
    const nc = await res.nats(NATS_URL);
    const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true });
    const stored = JSON.parse((await kv.get(instance))!.string());
    expect(stored).to.deep.equal(logged);

    const files = trailFiles(outDir);
    const chainId = String(logged.checkpoint.chain);
    const ok = await verify(files, '--receipts', receipts, '--heads', NATS_URL, '--heads-bucket', bucket);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include(`chain ${chainId}: seq 1..${records} signed (checkpoint at seq ${records} by key pdp (${pdpKey.id})), closed by a final checkpoint`);
    expect(ok.stdout).to.match(/verified 1 files, 701 events, \d+ checkpoints: OK/);

    const lines = readFileSync(files[0]!, 'utf8').split('\n').filter(Boolean);
    expect(lines.length).to.be.greaterThan(600);

    // 1. The last 500 lines cut: the receipts and the KV head show what is missing.
    const cut = tampered(outDir, 'cut', (ls) => ls.slice(0, -500));
    const lastKept = JSON.parse(lines[lines.length - 501]!).seq as number;
    const lastSeq = JSON.parse(lines[lines.length - 1]!).seq as number;
    const a = await verify(cut, '--receipts', receipts);
    expect(a.code, a.stdout + a.stderr).to.equal(1);
    expect(a.stderr).to.include(`TRUNCATED: holds`).and.include(`stream messages ${lastKept + 1}..${lastSeq} were cut off its end`);
    expect(a.stderr).to.match(new RegExp(`TRUNCATED: chain ${chainId}: records \\d+\\.\\.${records} are missing: a checkpoint at seq ${records} \\(stream seq ${lastSeq}\\) was seen`));
    expect(a.stdout).to.include('no final checkpoint');
    const aHeads = await verify(cut, '--heads', NATS_URL, '--heads-bucket', bucket);
    expect(aHeads.code).to.equal(1);
    expect(aHeads.stderr).to.match(new RegExp(`KV head ${bucket}/${instance} \\(revision \\d+\\): TRUNCATED: chain ${chainId}: records \\d+\\.\\.${records} are missing`));

    // The same from Verdict's own log: its `decision chain head` lines, kept by the operator.
    const logFile = path.join(dir, 'verdict-log.ndjson');
    writeFileSync(logFile, `${server.logs.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const aLog = await verify(cut, '--heads', logFile);
    expect(aLog.code).to.equal(1);
    expect(aLog.stderr).to.match(new RegExp(`verdict-log\\.ndjson:\\d+: TRUNCATED: chain ${chainId}: records \\d+\\.\\.${records} are missing`));

    // 2. Only the final checkpoint deleted.
    const finalAt = lines.findIndex((l) => isCheckpoint(l) && JSON.parse(l).data.final === true);
    const noFinal = tampered(outDir, 'no-final', (ls) => ls.filter((_, i) => i !== finalAt));
    const b = await verify(noFinal, '--heads', NATS_URL, '--heads-bucket', bucket);
    expect(b.code, b.stdout + b.stderr).to.equal(1);
    expect(b.stderr).to.include(`TRUNCATED: chain ${chainId}: its final checkpoint at seq ${records} (stream seq ${logged.streamSeq}) was seen, but these files do not hold it`);
    const bReceipts = await verify(noFinal, '--receipts', receipts);
    expect(bReceipts.code).to.equal(1);
    expect(bReceipts.stderr).to.include('TRUNCATED');

    // 3. Every checkpoint deleted: nothing is signed any more (and the stream sequence has holes).
    const noCheckpoints = tampered(outDir, 'no-checkpoints', (ls) => ls.filter((l) => !isCheckpoint(l)));
    const c = await verify(noCheckpoints);
    expect(c.code).to.equal(1);
    expect(c.stderr).to.include(`UNSIGNED: no record of chain ${chainId} is covered by a valid signature`);
    expect(c.stderr).to.include('STREAM-GAP');
    expect(c.stdout).to.include(`chain ${chainId}: ${records} events, NOT SIGNED (it has no checkpoint)`);

    // 4. One event edited, every later event and checkpoint re-hashed (and moved to its subject):
    //    signatures no longer match, even without receipts.
    const firstCheckpoint = lines.findIndex(isCheckpoint);
    const target = lines.findIndex((l, i) => i > Math.max(300, firstCheckpoint) && JSON.parse(l).data.decision === 'ALLOW');
    expect(target, 'an allowed event after the first checkpoint').to.be.greaterThan(0);
    const rehashed = tampered(outDir, 'rehashed', (ls) => {
      let prev = '';
      const remap = new Map<string, string>();
      return ls.map((l, i) => {
        const line = JSON.parse(l);
        const d = line.data;
        if (d.schema === EVENT_SCHEMA) {
          if (i === target) {
            d.decision = 'DENY';
            line.subject = line.subject.replace(/\.allow$/, '.deny');
          }
          if (i >= target) {
            if (i > target) d.chain.prev = prev;
            const old = d.chain.hash;
            d.chain.hash = eventHash(d);
            remap.set(old, d.chain.hash);
          }
          prev = d.chain.hash;
        } else if (remap.has(d.hash)) d.hash = remap.get(d.hash);
        return JSON.stringify(line);
      });
    });
    const targetSeq = JSON.parse(lines[target]!).data.chain.seq as number;
    const d = await verify(rehashed);
    expect(d.code, d.stdout + d.stderr).to.equal(1);
    expect(d.stderr).to.include('BAD-SIGNATURE').and.not.include('BROKEN-LINK').and.not.include('ALTERED');
    const signedTo = Number(/seq 1\.\.(\d+) signed/.exec(d.stdout)?.[1]);
    expect(signedTo, d.stdout).to.be.lessThan(targetSeq);
    expect(d.stdout).to.include(`${signedTo + 1}..${records} unsigned tail`);

    // 5. Wrapper edits: a stream sequence renumbered, a subject changed.
    const renumbered = tampered(outDir, 'renumbered', (ls) => ls.map((l, i) => (i === 10 ? l.replace(/^\{"seq":\d+/, `{"seq":${JSON.parse(l).seq + 100000}`) : l)));
    const e = await verify(renumbered, '--receipts', receipts);
    expect(e.code).to.equal(1);
    expect(e.stderr).to.match(/STREAM-(GAP|ORDER)/);
    expect(e.stderr).to.include('RECEIPTS');
    const resubjected = tampered(outDir, 'resubjected', (ls) => ls.map((l, i) => (i === 5 ? l.replace(/\.(allow|deny)","data"/, (_, x) => `.${x === 'allow' ? 'deny' : 'allow'}","data"`) : l)));
    const f = await verify(resubjected);
    expect(f.code).to.equal(1);
    expect(f.stderr).to.match(/:6: MISFILED: stored on subject/);
  });

  it('forged records published into NATS: garbage goes to the rejects file, a forged chain is an online finding, and verify rejects it', async () => {
    const outDir = res.tmpDir('trail');
    const receipts = path.join(res.tmpDir('receipts'), 'receipts.json');
    const { server, client } = await serve();
    const keeper = await startKeeper(res, keeperArgs(outDir, receipts, ['--unsigned-grace', '1']));
    let made = await decide(client, 1, 12, 'f');

    // An anonymous NATS client publishes into the stream's subjects.
    const nc = await res.nats(NATS_URL);
    const mallory = chainOfInstance('mallory', 3, 'evil', (_, b) => {
      b.subject = { id: 'mallory', roles: ['admin'], type: 'user' };
      b.action = 'delete';
      b.resource = { id: 'payroll', type: 'payroll' };
      b.decision = 'ALLOW';
      b.reason = 'RULE_ALLOW';
    }).events;
    for (const e of mallory) nc.publish(`${names.prefix}.payroll.allow`, e.payload);
    nc.publish(`${names.prefix}._chain.mallory.checkpoint`, JSON.stringify(checkpointOf(mallory[2]!, 'mallory', attacker.file, true)));
    // A chain that claims the real instance, with no checkpoint at all.
    const impostor = chainOfInstance(instance, 2, 'impostor').events;
    for (const e of impostor) nc.publish(`${names.prefix}.document.allow`, e.payload);
    const garbage: [string, string | Uint8Array, RegExp][] = [
      ['document.allow', 'mallory ALLOWED to delete payroll', /not JSON/],
      ['document.allow', JSON.stringify(JSON.parse(mallory[0]!.payload), null, 2), /not canonical JSON/],
      ['payroll.allow', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /not valid UTF-8/],
      ['document.deny', '{"decision":"ALLOW","schema":"verdict.decision.v1"}', /record without a chain link/],
    ];
    for (const [subject, data] of garbage) nc.publish(`${names.prefix}.${subject}`, data);
    await nc.flush();
    made += await decide(client, 1, 12, 'g');

    const impostorUnsigned = () => problems(keeper).find((l) => l.kind === 'unsigned' && String(l.detail).includes(`${instance}/impostor`));
    await waitFor('the unknown-key and unsigned findings', () => problems(keeper).some((l) => l.kind === 'unknown-key') && impostorUnsigned(), 15_000);
    expect(await server.stop('SIGTERM')).to.equal(0);
    await waitFor('the final checkpoint in the trail', () => readTrail(outDir).some((r) => r.data?.schema === CHECKPOINT_SCHEMA_V2 && r.data.final === true && r.data.instance === instance), 15_000);
    expect(await keeper.stop('SIGTERM'), 'a keeper that found problems exits 1').to.equal(1);

    const found = problems(keeper);
    expect(found.every((l) => l.level === 50)).to.equal(true);
    expect(found.filter((l) => l.kind === 'rejected')).to.have.length(4);
    expect(found.find((l) => l.kind === 'unknown-key')?.chain).to.equal('mallory/evil');
    expect(String(impostorUnsigned()?.detail)).to.match(/records 1\.\.2 of chain .* are not covered by a valid signature after 1 s/);

    // The rejects file has each refused message in full, with its reason; the trail a placeholder.
    const rejects = readFileSync(path.join(outDir, 'rejects.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(rejects).to.have.length(4);
    garbage.forEach(([, , reason], i) => expect(rejects[i].reason).to.match(reason));
    expect(rejects[0].payload).to.equal('mallory ALLOWED to delete payroll');
    const trail = readTrail(outDir) as unknown as Record<string, any>[];
    expect(trail.filter((r) => r.rejected)).to.have.length(4);
    expect(trail.map((r) => r.seq)).to.deep.equal(trail.map((_, i) => i + 1));
    for (const l of readFileSync(trailFiles(outDir)[0]!, 'utf8').split('\n').filter(Boolean)) expect(l).to.not.include('mallory ALLOWED');

    const v = await verify(trailFiles(outDir), '--receipts', receipts);
    expect(v.code).to.equal(1);
    expect(v.stderr).to.include('UNKNOWN-KEY: checkpoint of chain mallory/evil at seq 3');
    expect(v.stderr).to.include(`UNSIGNED: no record of chain ${instance}/impostor is covered`);
    expect(v.stderr.match(/: REJECTED: /g)).to.have.length(4);
    expect(v.stdout).to.include('chain mallory/evil: 3 events, NOT SIGNED (signed by a key not in the keyring)');
    expect(v.stdout).to.match(new RegExp(`chain ${instance}/[0-9a-f-]{36}: seq 1\\.\\.${made + 1} signed \\(checkpoint at seq ${made + 1} by key pdp \\(${pdpKey.id}\\)\\), closed by a final checkpoint`));
  });

  it('a keeper restarted on a tampered trail: a forged high stream seq does not make it skip, a cut file is reported', async () => {
    const outDir = res.tmpDir('trail');
    const receipts = path.join(res.tmpDir('receipts'), 'receipts.json');
    const { client } = await serve();
    let keeper = await startKeeper(res, keeperArgs(outDir, receipts));
    const first = await decide(client, 1, 9, 'h');
    await waitFor('the trail', () => readTrail(outDir).filter((r) => r.data.schema === EVENT_SCHEMA).length >= first, 10_000);
    expect(await keeper.stop('SIGTERM')).to.equal(0);

    // The old keeper resumed after any line starting with {"seq": — this one would have made it skip everything.
    const [file] = trailFiles(outDir);
    writeFileSync(file!, `${readFileSync(file!, 'utf8')}{"seq":999999999,"subject":"x","data":{}}\n`);
    const second = await decide(client, 1, 9, 'i');
    keeper = await startKeeper(res, keeperArgs(outDir, receipts));
    await waitFor('the resumed trail', () => readTrail(outDir).filter((r) => r.data?.schema === EVENT_SCHEMA).length >= first + second, 10_000);
    expect(String(keeper.log('trail file repaired')?.detail)).to.include("bytes after the keeper's last receipt");
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    expect(readFileSync(file!, 'utf8')).to.not.include('999999999');

    // Lines cut off the end while the keeper was stopped: reported at start, and it goes on in a new file.
    const lines = readFileSync(file!, 'utf8').split('\n').filter(Boolean);
    writeFileSync(file!, `${lines.slice(0, -3).join('\n')}\n`);
    keeper = await startKeeper(res, keeperArgs(outDir, receipts));
    const third = await decide(client, 1, 6, 'j');
    await waitFor('the new file', () => trailFiles(outDir).length === 2 && readTrail(outDir).filter((r) => r.data?.schema === EVENT_SCHEMA).length >= first + second + third - 3, 10_000);
    expect(await keeper.stop('SIGTERM')).to.equal(1);
    const [truncated] = problems(keeper);
    expect(truncated).to.include({ kind: 'truncated' });
    expect(String(truncated!.detail)).to.match(/its end was cut/);
    const v = await verify(trailFiles(outDir), '--receipts', receipts);
    expect(v.code).to.equal(1);
    expect(v.stderr).to.include('TRUNCATED');
  });

  it('messages that left the stream before the keeper read them (max_msgs lowered by a NATS client) are a STREAM-GAP and a GAP', async () => {
    const outDir = res.tmpDir('trail');
    const receipts = path.join(res.tmpDir('receipts'), 'receipts.json');
    const { client } = await serve();
    let keeper = await startKeeper(res, keeperArgs(outDir, receipts));
    const first = await decide(client, 1, 6, 'k');
    await waitFor('the trail', () => readTrail(outDir).filter((r) => r.data?.schema === EVENT_SCHEMA).length >= first, 10_000);
    expect(await keeper.stop('SIGTERM')).to.equal(0);
    const kept = JSON.parse(readFileSync(receipts, 'utf8')).streamSeq as number;

    await decide(client, 1, 9, 'l');
    // An ordinary NATS client shrinks the stream to one message, then puts the limit back.
    const jsm = await (await res.nats(NATS_URL)).jetstreamManager();
    const info = await waitFor('the new decisions in the stream', async () => {
      const i = await jsm.streams.info(names.stream);
      return i.state.last_seq > kept + 9 ? i : undefined;
    });
    await jsm.streams.update(names.stream, { ...info!.config, max_msgs: 1 });
    await jsm.streams.update(names.stream, { ...info!.config, max_msgs: -1 });
    const lost = (await jsm.streams.info(names.stream)).state.first_seq;
    expect(lost).to.be.greaterThan(kept + 1);
    await decide(client, 1, 3, 'm');

    keeper = await startKeeper(res, keeperArgs(outDir, receipts));
    const streamGap = await waitFor('the stream gap', () => problems(keeper).find((l) => l.kind === 'stream-gap'), 10_000);
    expect(String(streamGap!.detail)).to.include(`stream messages ${kept + 1}..${lost - 1} are missing`);
    await waitFor('the chain gap', () => problems(keeper).some((l) => l.kind === 'gap'), 15_000);
    expect(await keeper.stop('SIGTERM')).to.equal(1);
    const v = await verify(trailFiles(outDir), '--receipts', receipts);
    expect(v.code).to.equal(1);
    expect(v.stderr).to.include(`STREAM-GAP: stream messages ${kept + 1}..${lost - 1} are missing`);
  });

  it('the KV head is written at a bounded rate, not for every checkpoint, and the final one at once', async () => {
    const { server, client } = await serve();
    const t0 = Date.now();
    await decide(client, 12, 6, 'n', 200);
    expect(await server.stop('SIGTERM')).to.equal(0);
    const seconds = (Date.now() - t0) / 1000;
    const nc = await res.nats(NATS_URL);
    const checkpoints = (await (await nc.jetstreamManager()).streams.info(names.stream, { subjects_filter: `${names.prefix}._chain.>` })).state.messages;
    const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true });
    const history: Record<string, any>[] = [];
    for await (const e of await kv.history({ key: instance })) history.push(JSON.parse(e.string()));
    expect(checkpoints, 'a checkpoint per batch or so').to.be.at.least(8);
    // headsIntervalMs is 1 s here: at most one per second, plus the chain's first and its final one.
    expect(history.length).to.be.at.most(Math.ceil(seconds) + 2).and.below(checkpoints);
    expect(history[0]!.checkpoint.seq, 'the first checkpoint of the chain at once').to.be.at.most(history[1]!.checkpoint.seq);
    expect(history.at(-1)!.checkpoint).to.include({ final: true });
  });
});
