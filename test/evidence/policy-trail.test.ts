/**
 * Policy changes as evidence, end to end: real `verdict serve` processes (single and cluster), a
 * real NATS (the stream read back, the Object Store), the real keeper, and the audit commands over
 * its files.
 */
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { connect } from 'nats';
import { parseBundle } from '../../src/bundles/format.js';
import { revisionDigest } from '../../src/evidence/revision-digest.js';
import { withDigest } from '../../src/policy/index.js';
import { checkChains } from '../events/chain-check.js';
import {
  check,
  NATS_URL,
  Proc,
  randomToken,
  readStream,
  readTrail,
  REPO_ROOT,
  Resources,
  runVerdict,
  startConsumer,
  startVerdict,
  trailFiles,
  uniqueNames,
  VERDICT_BIN,
  waitFor,
  type CheckResponse,
  type ServerProc,
} from '../support/events-harness.js';
import { replaceFile } from '../support/server-process.js';
import { chainOf, decisionEvents, exampleRequests, freshClient, policyRecords, POLICY_V1, POLICY_V2, seqOf, uniqueBucket } from './support.js';

const alice = { id: 'alice', roles: ['employee'] };

describe('policy evidence: policy changes in the decision chain, their text in NATS (real server, real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  interface Setup {
    readonly names: { stream: string; prefix: string };
    readonly bucket: string;
    readonly policies: string;
    readonly instanceId: string;
  }

  function setup(): Setup {
    const names = uniqueNames();
    const bucket = uniqueBucket();
    res.stream(NATS_URL, names.stream);
    res.stream(NATS_URL, `OBJ_${bucket}`);
    const policies = res.tmpDir('policies');
    writeFileSync(path.join(policies, 'document.yaml'), POLICY_V1);
    return { names, bucket, policies, instanceId: `vt-${randomToken(3)}` };
  }

  function serve(s: Setup, extraYaml = '', opts: { required?: boolean } = {}): Promise<ServerProc> {
    const configYaml = `events:\n  revisionsBucket: ${s.bucket}\n  checkpointIntervalMs: 20\n${extraYaml}reload:\n  debounceMs: 20\n`;
    return startVerdict(res, { policies: s.policies, natsUrl: NATS_URL, ...s.names, spoolDir: res.tmpDir('spool'), instanceId: s.instanceId, configYaml, required: opts.required });
  }

  /** Checks in a loop on two connections until stopped; every answer is kept. */
  function load(address: string) {
    const answers: CheckResponse[] = [];
    let stop = false;
    const loops = [0, 1].map(async (k) => {
      const c = res.client(address);
      for (let i = 0; !stop; i++) answers.push(await check(c, { subject: alice, action: 'read', resource: { type: 'document', id: `d${k}-${i}` } }));
    });
    return { answers, stop: async () => ((stop = true), await Promise.all(loops)) };
  }

  for (const required of [false, true]) {
    it(`a change goes live only after its record: every decision of the new set comes after it in the chain, every decision of the old set before it${required ? ' (required mode)' : ''}`, async () => {
      const s = setup();
      const server = await serve(s, '', { required });
      const traffic = load(server.address);
      await waitFor('decisions under the first set', () => traffic.answers.length >= 50, 10_000);
      replaceFile(s.policies, 'document.yaml', POLICY_V2);
      await server.waitForLog('policy set reloaded', 10_000);
      const reloadedAt = traffic.answers.length;
      await waitFor('decisions under the new set', () => traffic.answers.length >= reloadedAt + 50, 10_000);
      await traffic.stop();
      const revisions = [...new Set(traffic.answers.map((a) => a.revision))];
      expect(revisions, 'answers under both sets').to.have.length(2);
      const [rev1, rev2] = revisions as [string, string];
      expect(await server.stop('SIGTERM')).to.equal(0);

      const stored = await readStream(await res.nats(NATS_URL), s.names.stream);
      const report = checkChains(stored);
      expect(report.broken).to.deep.equal([]);
      expect(report.unexplained).to.deep.equal([]);
      const records = policyRecords(stored);
      expect(records.map((m) => [seqOf(m), m.data.status, (m.data.trigger as { kind: string }).kind])).to.deep.equal([
        [1, 'applied', 'startup'],
        [seqOf(records[1]!), 'applied', 'file-change'],
      ]);
      expect(records.map((m) => m.subject)).to.deep.equal([`${s.names.prefix}._policy.${s.instanceId}.applied`, `${s.names.prefix}._policy.${s.instanceId}.applied`]);
      const change = records[1]!.data as Record<string, any>;
      const v1 = withDigest({ path: 'document.yaml', text: POLICY_V1 });
      const v2 = withDigest({ path: 'document.yaml', text: POLICY_V2 });
      expect(change).to.include({ previousRevision: rev1, revision: rev2, revisionSha256: revisionDigest([v2]), files: 1 });
      expect(change.changed).to.deep.equal([{ path: 'document.yaml', previousSha256: v1.sha256, sha256: v2.sha256 }]);
      expect(change.text).to.include({ status: 'stored', bucket: s.bucket });
      expect(records[0]!.data).to.include({ previousRevision: null, revision: rev1 });

      // The order: the record sits between the two sets' decisions, in the chain and in the stream.
      const at = seqOf(records[1]!);
      const events = decisionEvents(stored);
      expect(events).to.have.length(traffic.answers.length);
      const old = events.filter((m) => m.data.revision === rev1);
      const fresh = events.filter((m) => m.data.revision === rev2);
      expect(old.length).to.be.greaterThan(0);
      expect(fresh.length).to.be.greaterThan(0);
      expect(Math.max(...old.map(seqOf)), 'every decision of the old set before the record').to.be.lessThan(at);
      expect(Math.min(...fresh.map(seqOf)), 'every decision of the new set after it').to.be.greaterThan(at);
      expect(stored.indexOf(records[1]!)).to.be.lessThan(stored.indexOf(fresh[0]!));

      // The text of both revisions is in the Object Store, named by revision, verified.
      const nc = await connect({ servers: NATS_URL });
      try {
        const os = await nc.jetstream().views.os(s.bucket);
        for (const [rev, file] of [[rev1, v1], [rev2, v2]] as const) {
          const bundle = parseBundle((await os.getBlob(rev))!, undefined, { revision: rev });
          expect(bundle.files).to.deep.equal([{ path: 'document.yaml', sha256: file.sha256, size: Buffer.byteLength(file.text), text: file.text }]);
          expect(bundle.createdBy).to.equal(s.instanceId);
        }
      } finally {
        await nc.close();
      }
    });
  }

  it('a rejected change is recorded with every error; one with 3,000 errors is cut to the event budget with the list\'s size, count and digest', async () => {
    const s = setup();
    const server = await serve(s, '  maxEventBytes: 65536\n');
    const client = res.client(server.address);
    const before = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd1' } });
    replaceFile(s.policies, 'invoice.yaml', 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: invoice\nrules:\n  - name: broken\n    actions: [read]\n    effect: allow\n    when: subject.attributes.level >\n');
    await waitFor('the first rejection', () => server.logs.filter((l) => l.msg === 'policy change rejected; the last good policy set keeps serving').length >= 1, 10_000);
    const rules = Array.from({ length: 3000 }, (_, i) => `  - name: r${i}\n    actions: [read]\n    effect: allow\n    when: "1 +"\n`).join('');
    replaceFile(s.policies, 'invoice.yaml', `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: invoice\nrules:\n${rules}`);
    await waitFor('the second rejection', () => server.logs.filter((l) => l.msg === 'policy change rejected; the last good policy set keeps serving').length >= 2, 15_000);
    const after = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd2' } });
    expect(after.revision, 'the last good set keeps serving').to.equal(before.revision);
    expect(await server.stop('SIGTERM')).to.equal(0);

    const stored = await readStream(await res.nats(NATS_URL), s.names.stream);
    expect(checkChains(stored).broken).to.deep.equal([]);
    const rejected = policyRecords(stored).filter((m) => m.data.status === 'rejected');
    expect(rejected.map((m) => m.subject)).to.deep.equal([`${s.names.prefix}._policy.${s.instanceId}.rejected`, `${s.names.prefix}._policy.${s.instanceId}.rejected`]);
    const [one, many] = rejected.map((m) => m.data as Record<string, any>) as [Record<string, any>, Record<string, any>];
    expect(one).to.include({ previousRevision: before.revision, message: 'policy set rejected with 1 error' });
    expect(one.errors).to.deep.equal([{ code: 'CEL_SYNTAX', column: 37, file: 'invoice.yaml', line: 8, message: 'rule "broken": Unexpected token: EOF in "1 +"'.replace('1 +', 'subject.attributes.level >') }]);
    expect(one.added.map((f: { path: string }) => f.path)).to.deep.equal(['invoice.yaml']);
    expect(one).to.not.have.property('text');
    // 3,000 errors do not fit 64 KiB: the leading ones are kept, the cut entry says what the list held.
    expect(Buffer.byteLength(rejected[1]!.raw)).to.be.at.most(65_536);
    expect(many.errors.length).to.be.greaterThan(50).and.lessThan(3000);
    expect(many.errors[0]).to.include({ file: 'invoice.yaml', code: 'CEL_SYNTAX' });
    expect(many.cut.errors).to.include({ count: 3000 });
    expect(many.cut.errors.sha256).to.match(/^[0-9a-f]{64}$/);
    const logged = server.logs.filter((l) => l.msg === 'policy change rejected; the last good policy set keeps serving')[1]!.errors as string[];
    expect(logged).to.have.length(3000);
    expect(`${many.errors[0].file}:${many.errors[0].line}:${many.errors[0].column}: ${many.errors[0].code}: ${many.errors[0].message}`).to.equal(logged[0]);
  });

  it('explain shows the rule text of the revision each decision was made under, before and after a change; diff shows the change; verify covers policy records; a deleted or altered revision is reported by explain and verify', async () => {
    const s = setup();
    const server = await serve(s);
    const trail = res.tmpDir('trail');
    const keeper = await startConsumer(res, { natsUrl: NATS_URL, ...s.names, outDir: trail, durable: 'keeper' });
    const client = res.client(server.address);
    const first = await check(client, { subject: alice, action: 'read', resource: { type: 'document', id: 'd1' } });
    replaceFile(s.policies, 'document.yaml', POLICY_V2);
    await server.waitForLog('policy set reloaded', 10_000);
    const second = await check(client, { subject: alice, action: 'edit', resource: { type: 'document', id: 'd1' } });
    expect(first).to.include({ allowed: true, rule: 'employees-read' });
    expect(second).to.include({ allowed: true, rule: 'staff-read-and-edit' });
    expect(await server.stop('SIGTERM')).to.equal(0);
    await waitFor('the final checkpoint in the trail', () => readTrail(trail).some((r) => r.data.final === true), 10_000);
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    const files = trailFiles(trail);
    const store = ['--revisions', NATS_URL, '--revisions-bucket', s.bucket];

    const e1 = await runVerdict(['audit', 'explain', first.decisionId, ...files, ...store]);
    expect(e1.code, e1.stdout + e1.stderr).to.equal(0);
    expect(e1.stdout).to.include(`decision ${first.decisionId}: ALLOW by document.yaml#employees-read (RULE_ALLOW)`);
    expect(e1.stdout).to.include(`revision ${first.revision} went live on this chain at seq 1 (startup`);
    expect(e1.stdout).to.include(`policy text of ${first.revision}: verified (1 files, object store ${s.bucket}`);
    expect(e1.stdout).to.include('decided by rule employees-read (allow) at document.yaml:5');
    expect(e1.stdout).to.match(/^> +5 \| {3}- name: employees-read$/m);
    expect(e1.stdout).to.match(/^> +6 \| {5}actions: \[read\]$/m);
    expect(e1.stdout).to.match(/^ +9 \| {3}- name: deny-suspended$/m);
    expect(e1.stdout).to.include('replayed against this text: decides the same');
    const e2 = await runVerdict(['audit', 'explain', second.decisionId, ...files, ...store, '--json']);
    expect(e2.code, e2.stdout + e2.stderr).to.equal(0);
    const x2 = JSON.parse(e2.stdout);
    expect(x2.rule).to.include({ name: 'staff-read-and-edit', file: 'document.yaml', line: 5, effect: 'allow' });
    expect(x2.revision).to.include({ status: 'verified', revision: second.revision });
    expect(x2.live.record).to.include({ previousRevision: first.revision, revision: second.revision, status: 'applied' });
    expect(x2.documents[0].text).to.equal(POLICY_V2);
    expect(x2.replay).to.include({ status: 'same' });

    const d = await runVerdict(['audit', 'diff', first.revision, second.revision, ...store]);
    expect(d.code, d.stdout + d.stderr).to.equal(0);
    expect(d.stdout).to.include('0 added, 0 removed, 1 changed, 0 unchanged');
    expect(d.stdout).to.include('-  - name: employees-read\n-    actions: [read]\n+  - name: staff-read-and-edit\n+    actions: [read, edit]');

    // verify: policy records are chained records like events; one edited is ALTERED at its line.
    const ok = await runVerdict(['audit', 'verify', ...files, '--revisions', NATS_URL, '--revisions-bucket', s.bucket]);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('stored policy revisions: 2 checked, 2 verified');
    expect(ok.stdout).to.match(/verified 1 files, 4 events, \d+ checkpoints: OK/);
    const lines = readFileSync(files[0]!, 'utf8').split('\n').filter(Boolean);
    const at = lines.findIndex((l) => JSON.parse(l).data.schema === 'verdict.policy.v1' && JSON.parse(l).data.status === 'applied' && JSON.parse(l).data.previousRevision !== null);
    const edited = path.join(res.tmpDir('edited'), 'decisions-edited.jsonl');
    writeFileSync(edited, `${lines.map((l, i) => (i === at ? l.replace('"trigger":{"detail":"document.yaml","kind":"file-change"}', '"trigger":{"detail":"document.yaml","kind":"sighup"}') : l)).join('\n')}\n`);
    const bad = await runVerdict(['audit', 'verify', edited]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.split('\n')[0]).to.equal(`${edited}:${at + 1}: ALTERED: verdict.policy.v1 record (seq 3) does not match its hash: its content was altered`);

    // The first revision deleted from the store, the second replaced by other text.
    const nc = await connect({ servers: NATS_URL });
    try {
      const os = await nc.jetstream().views.os(s.bucket);
      await os.delete(first.revision);
      const text = new TextDecoder().decode((await os.getBlob(second.revision))!);
      await os.putBlob({ name: second.revision }, new TextEncoder().encode(text.replace('[read, edit]', '[read, edit, delete]')));
    } finally {
      await nc.close();
    }
    const m1 = await runVerdict(['audit', 'explain', first.decisionId, ...files, ...store]);
    expect(m1.code).to.equal(1);
    expect(m1.stdout).to.include(`POLICY TEXT MISSING: revision ${first.revision} is not in object store ${s.bucket}`);
    const m2 = await runVerdict(['audit', 'explain', second.decisionId, ...files, ...store]);
    expect(m2.code).to.equal(1);
    expect(m2.stdout).to.match(/POLICY TEXT ALTERED: the stored text of sha256:[0-9a-f]{16} does not verify: file "document\.yaml": its text hashes to/);
    const v = await runVerdict(['audit', 'verify', ...files, '--revisions', NATS_URL, '--revisions-bucket', s.bucket]);
    expect(v.code, v.stdout + v.stderr).to.equal(1);
    expect(v.stderr).to.match(new RegExp(`:1: REVISION-MISSING: revision ${first.revision} went live here, but object store ${s.bucket} at nats://[^ ]+ does not hold it: it was stored when it went live and has been deleted since`));
    expect(v.stderr).to.include(`REVISION-ALTERED: the stored text of ${second.revision} does not verify`);
    expect(v.stdout).to.include('stored policy revisions: 2 checked, 0 verified, 2 missing or altered');
    const r = await runVerdict(['audit', 'replay', ...files, ...store]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.include('replayed 0 decisions against 2 revisions: 0 same, 0 different, 2 not replayed (revision unavailable)');
  });

  it('replay: 3,000 recorded decisions of the example policies decide the same; decisions whose masked attribute decided them are flagged, with the attribute', async () => {
    const names = uniqueNames();
    const bucket = uniqueBucket();
    res.stream(NATS_URL, names.stream);
    res.stream(NATS_URL, `OBJ_${bucket}`);
    const policies = res.tmpDir('example-policies');
    cpSync(path.join(REPO_ROOT, 'policies'), policies, { recursive: true });
    const start = (instanceId: string, extra: string) =>
      startVerdict(res, { policies, natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId, configYaml: `events:\n  revisionsBucket: ${bucket}\n  includeAttributes: all\n${extra}` });
    const plain = await start('vt-plain', '');
    const masked = await start('vt-masked', '  maskAttributes: [subject.attributes.department]\n');
    const trail = res.tmpDir('trail');
    const keeper = await startConsumer(res, { natsUrl: NATS_URL, ...names, outDir: trail, durable: 'keeper' });

    const requests = exampleRequests(3000);
    const clients = [0, 1, 2, 3].map(() => res.client(plain.address));
    const answers: CheckResponse[] = [];
    for (let i = 0; i < requests.length; i += clients.length) answers.push(...(await Promise.all(clients.map((c, k) => (requests[i + k] ? check(c, requests[i + k]!) : undefined)))).filter((a): a is CheckResponse => a !== undefined));
    expect(answers).to.have.length(3000);
    expect(new Set(answers.map((a) => a.rule)).size, 'many rules decided').to.be.greaterThan(10);
    // A department editor edits a draft of her department: the department decides (masked in the event).
    const editor = { id: 'erin', roles: ['editor'], attributes: { department: 'eng', clearance: 1 } };
    const mc = res.client(masked.address);
    const deptEdit = await check(mc, { subject: editor, action: 'edit', resource: { type: 'document', id: 'x1', attributes: { owner: 'alice', department: 'eng', status: 'draft' } } });
    expect(deptEdit).to.include({ allowed: true, rule: 'department-editors-edit' });
    // The same editor on another department's draft: denied, and denied again in the replay, but the
    // (masked) department was read to decide it: consistent with the rules, not proven by the record.
    const otherDept = await check(mc, { subject: editor, action: 'edit', resource: { type: 'document', id: 'x2', attributes: { owner: 'alice', department: 'sales', status: 'draft' } } });
    expect(otherDept).to.include({ allowed: false, reason: 'NO_MATCHING_RULE' });
    for (const p of [plain, masked]) expect(await p.stop('SIGTERM')).to.equal(0);
    await waitFor('every decision in the trail', () => readTrail(trail).filter((r) => r.data.schema === 'verdict.decision.v1').length >= 3002, 20_000);
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);

    const run = await runVerdict(['audit', 'replay', ...trailFiles(trail), '--revisions', NATS_URL, '--revisions-bucket', bucket, '--json'], 60_000);
    expect(run.code, run.stderr).to.equal(1);
    const report = JSON.parse(run.stdout);
    expect(report).to.include({ replayed: 3002, differentCount: 1, unavailableCount: 0, alteredRecords: 0 });
    expect(report.same).to.equal(3001);
    const [diff] = report.different;
    expect(diff).to.include({ id: deptEdit.decisionId, recorded: 'ALLOW by documents/document.yaml#department-editors-edit (RULE_ALLOW)' });
    expect(diff.reasons).to.deep.equal(['masked']);
    expect(diff.masked).to.deep.equal(['subject.attributes.department']);
    expect(diff.why).to.equal('masked attribute subject.attributes.department (recorded as "***", events.maskAttributes)');
    expect(report.sameUnproven).to.equal(1);
    expect(report.unprovenPaths).to.deep.equal({ 'subject.attributes.department': 1 });
    // The 3,000 decisions of the instance that records every attribute unmasked: 0 differences, all proven.
    const plainOnly = await runVerdict(['audit', 'replay', '--to', new Date().toISOString(), ...trailFiles(trail), '--revisions', NATS_URL, '--revisions-bucket', bucket, '--id', answers[2999]!.decisionId]);
    expect(plainOnly.code, plainOnly.stdout + plainOnly.stderr).to.equal(0);
    expect(plainOnly.stdout).to.include('replayed 1 decisions against 1 revisions: 1 same, 0 different');
    const one = await runVerdict(['audit', 'explain', deptEdit.decisionId, ...trailFiles(trail), '--revisions', NATS_URL, '--revisions-bucket', bucket]);
    expect(one.stdout).to.include('subject.attributes.department = "***"   (masked)');
    expect(one.stdout).to.match(/replayed against this text: DECIDES DENY .*: masked attribute subject\.attributes\.department/);
  });

  it('a revision whose text cannot be stored is served: its record says why, the log and the metrics alarm', async () => {
    const s = setup();
    // A stream already named like the bucket's, capturing other subjects: every put fails.
    const nc = await res.nats(NATS_URL);
    await (await nc.jetstreamManager()).streams.add({ name: `OBJ_${s.bucket}`, subjects: [`vt.notobjects.${randomToken(3)}`] });
    const server = await serve(s, 'admin:\n  listen: 127.0.0.1:0\n', {});
    const check1 = await check(res.client(server.address), { subject: alice, action: 'read', resource: { type: 'document', id: 'd1' } });
    expect(check1).to.include({ allowed: true, rule: 'employees-read' });
    const logged = await server.waitForLog(/^policy revision text not stored/);
    expect(logged).to.include({ revision: check1.revision, bucket: s.bucket, level: 50 });
    const admin = String((await server.waitForLog('admin listener serving /metrics, /healthz, /readyz')).admin);
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    expect(metrics).to.match(/^verdict_policy_revision_text_total\{result="failed"\} 1$/m);
    expect(metrics).to.match(/^verdict_policy_revision_text_missing 1$/m);
    expect(await server.stop('SIGTERM')).to.equal(0);
    const [record] = policyRecords(await readStream(nc, s.names.stream));
    expect(record!.data.text).to.include({ status: 'failed', bucket: s.bucket });
    expect(String((record!.data.text as { error: string }).error)).to.equal(String(logged.err));
  });

  it('the same change is recorded in each cluster worker\'s own chain, ahead of that worker\'s decisions under it; a rejected change too', async () => {
    const s = setup();
    const args = [VERDICT_BIN, 'serve', '--policies', s.policies, '--listen', '127.0.0.1:0', '--workers', '2', '--nats', NATS_URL, '--spool-dir', res.tmpDir('spool'), '--instance-id', s.instanceId];
    const cfg = path.join(res.tmpDir('cfg'), 'verdict.yaml');
    writeFileSync(cfg, `events:\n  revisionsBucket: ${s.bucket}\n  checkpointIntervalMs: 20\nreload:\n  debounceMs: 20\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, VERDICT_EVENTS_STREAM: s.names.stream, VERDICT_EVENTS_SUBJECT_PREFIX: s.names.prefix };
    const server = res.track(new Proc('verdict serve --workers 2', spawn(process.execPath, [...args, '--config', cfg], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })));
    const serving = await server.waitForLog('verdict serving', 20_000);
    const address = String(serving.listen);
    const ask = async (action: string) => {
      const out: CheckResponse[] = [];
      for (let i = 0; i < 6; i++) {
        const c = freshClient(address);
        try {
          out.push(await check(c, { subject: alice, action, resource: { type: 'document', id: `d${i}` } }));
        } finally {
          c.close();
        }
      }
      return out;
    };
    const before = await ask('read');
    replaceFile(s.policies, 'document.yaml', POLICY_V2);
    await server.waitForLog('policy set reloaded', 15_000);
    const after = await ask('edit');
    expect(after.every((a) => a.allowed && a.rule === 'staff-read-and-edit')).to.equal(true);
    replaceFile(s.policies, 'broken.yaml', 'apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: x\nrules: 7\n');
    await server.waitForLog(/^policy change rejected/, 15_000);
    await ask('read');
    expect(await server.stop('SIGTERM')).to.equal(0);

    const stored = await readStream(await res.nats(NATS_URL), s.names.stream);
    expect(checkChains(stored).broken).to.deep.equal([]);
    const chains = [...new Set(stored.filter((m) => m.data.chain && typeof m.data.chain === 'object').map(chainOf))];
    expect(chains.map((c) => c.slice(0, c.lastIndexOf('/'))).sort()).to.deep.equal([`${s.instanceId}-w0`, `${s.instanceId}-w1`]);
    for (const chain of chains) {
      const mine = stored.filter((m) => m.data.chain && typeof m.data.chain === 'object' && chainOf(m) === chain);
      const records = policyRecords(mine);
      expect(records.map((m) => [m.data.status, (m.data.trigger as { kind: string }).kind]), chain).to.deep.equal([
        ['applied', 'startup'],
        ['applied', 'file-change'],
        ['rejected', 'file-change'],
      ]);
      expect(seqOf(records[0]!)).to.equal(1);
      expect(records[1]!.data).to.include({ previousRevision: before[0]!.revision, revision: after[0]!.revision });
      expect(records[1]!.data.text).to.include({ bucket: s.bucket }).and.satisfy((t: { status: string }) => t.status === 'stored' || t.status === 'present');
      expect((records[2]!.data.errors as { file: string }[])[0]).to.include({ file: 'broken.yaml' });
      const fresh = decisionEvents(mine).filter((m) => m.data.revision === after[0]!.revision);
      expect(fresh.length, `${chain} decided under the new set`).to.be.greaterThan(0);
      expect(Math.min(...fresh.map(seqOf))).to.be.greaterThan(seqOf(records[1]!));
      expect(Math.max(...decisionEvents(mine).filter((m) => m.data.revision === before[0]!.revision).map(seqOf))).to.be.lessThan(seqOf(records[1]!));
    }
  });
});
