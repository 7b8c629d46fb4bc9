/**
 * Policy evidence without NATS: the policy record and its byte budgets, its subject, how the keeper
 * classifies it, the stored-text checks, replay's reasons, and the evidence hooks' ordering and
 * failure handling (with an in-memory sink and writer).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { classifyRecord, subjectProblem } from '../../src/audit/records.js';
import { buildBundle } from '../../src/bundles/format.js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash } from '../../src/events/chain.js';
import { EventBuilder } from '../../src/events/event-builder.js';
import { decisionSubject, policySubject } from '../../src/events/subjects.js';
import { PolicyEvidence, type RevisionWriter } from '../../src/evidence/policy-evidence.js';
import { fitPolicyRecord, policyRecordBody, type PolicyRecordBody } from '../../src/evidence/policy-record.js';
import { RevisionCache, replayEvent, type CompiledRevision } from '../../src/evidence/replay.js';
import { revisionDigest } from '../../src/evidence/revision-digest.js';
import { DirectoryRevisionReader } from '../../src/evidence/revision-store.js';
import type { DecisionEventView } from '../../src/evidence/trail-reader.js';
import { withDigest } from '../../src/policy/index.js';
import { createLogger } from '../../src/server/logger.js';
import type { PolicyChange, PolicyFile } from '../../src/service/policy-source.js';

const silent = createLogger('silent');

function change(overrides: Partial<PolicyChange> = {}): PolicyChange {
  const files: PolicyFile[] = [withDigest({ path: 'a.yaml', text: 'x: 1\n' })];
  return {
    trigger: { kind: 'file-change', detail: 'a.yaml' },
    at: new Date('2026-12-07T10:00:00.000Z'),
    previousRevision: 'sha256:0000000000000000',
    revision: 'sha256:1111111111111111',
    added: [],
    changed: [{ path: 'a.yaml', sha256: files[0]!.sha256, previousSha256: 'f'.repeat(64) }],
    removed: [],
    result: { status: 'applied' },
    files,
    ...overrides,
  };
}

function rejectedWith(n: number, messageBytes: number): PolicyChange {
  const issues = Array.from({ length: n }, (_, i) => ({ file: `p${i % 50}.yaml`, line: i + 1, column: 3, code: 'CEL_SYNTAX', message: `rule "r${i}": ${'x'.repeat(messageBytes)}` }));
  return change({ result: { status: 'rejected', message: `policy set rejected with ${n} errors:\n  …`, issues } });
}

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('policy evidence: the record, its budgets and its subject', () => {
  it('an applied change: what changed, both revisions, the full digest and where the text is', () => {
    const c = change();
    const body = policyRecordBody(c, 'pdp-1', new Date('2026-12-07T10:00:01.000Z'), { status: 'stored', bucket: 'B', digest: 'd'.repeat(64) });
    expect(body).to.include({ schema: 'verdict.policy.v1', status: 'applied', instance: 'pdp-1', previousRevision: 'sha256:0000000000000000', revision: 'sha256:1111111111111111', files: 1, time: '2026-12-07T10:00:01.000Z' });
    expect(body.revisionSha256).to.equal(revisionDigest(c.files!));
    expect(body.changed).to.deep.equal([{ path: 'a.yaml', previousSha256: 'f'.repeat(64), sha256: c.files![0]!.sha256 }]);
    expect(body.text).to.deep.equal({ status: 'stored', bucket: 'B', digest: 'd'.repeat(64) });
    expect(body.errors).to.equal(undefined);
  });

  it('a change rejected with 20,000 errors is still publishable: strings cut with the marker, the list cut with its size, count and digest', () => {
    const c = rejectedWith(20_000, 200);
    const body = policyRecordBody(c, 'pdp-1', new Date());
    const original = canonicalJson(body.errors);
    for (const eventBytes of [921_600, 65_536, 16_384]) {
      const fitted = fitPolicyRecord(body, { fieldBytes: 1024, eventBytes });
      const size = Buffer.byteLength(canonicalJson(fitted));
      expect(size, `fits ${eventBytes}`).to.be.at.most(eventBytes - 1000);
      expect(fitted.errors!.length).to.be.greaterThan(0).and.lessThan(20_000);
      expect(fitted.errors).to.deep.equal(body.errors!.slice(0, fitted.errors!.length), 'the leading errors, as they were');
      expect(fitted.cut!.errors).to.deep.equal({ bytes: Buffer.byteLength(original), count: 20_000, sha256: sha(original) });
    }
    // Long strings are cut to the field budget with the marker; the list's digest covers the originals.
    const long = rejectedWith(3, 5000);
    const fitted = fitPolicyRecord(policyRecordBody(long, 'pdp-1', new Date()), { fieldBytes: 1024, eventBytes: 921_600 });
    expect(fitted.errors).to.have.length(3);
    for (const e of fitted.errors!) {
      expect(Buffer.byteLength(e.message)).to.be.at.most(1024);
      expect(e.message.endsWith('…[cut]')).to.equal(true);
    }
    expect(fitted.cut!.errors!.count).to.equal(3);
    // Nothing over: the body itself.
    const small = policyRecordBody(change(), 'pdp-1', new Date());
    expect(fitPolicyRecord(small, { fieldBytes: 1024, eventBytes: 921_600 })).to.equal(small);
  });

  it('the publisher chains it on <prefix>._policy.<instance>.<status> within its budget, and the keeper accepts it', () => {
    const builder = new EventBuilder({ ...DEFAULT_CONFIG.events, subjectPrefix: 'vt.p', instanceId: 'pdp-1', maxEventBytes: 65_536 });
    const entry = builder.policy(policyRecordBody(rejectedWith(5000, 100), 'pdp-1', new Date()));
    expect(entry.subject).to.equal('vt.p._policy.pdp-1.rejected');
    expect(Buffer.byteLength(entry.payload)).to.be.at.most(65_536);
    const record = JSON.parse(entry.payload) as Record<string, unknown>;
    expect(eventHash(record)).to.equal(entry.hash);
    const c = classifyRecord(record);
    expect(c.type).to.equal('chained');
    expect(c.type === 'chained' && c.known).to.equal(true);
    expect(subjectProblem(entry.subject, c)).to.equal(undefined);
    expect(subjectProblem('vt.p._policy.pdp-1.applied', c)).to.match(/published on "<prefix>\._policy\.pdp-1\.rejected"/);
    // A malformed policy record is not kept.
    const bad = { ...record, status: 'maybe' };
    expect(classifyRecord(bad)).to.deep.include({ type: 'invalid' });
    expect(classifyRecord({ ...record, added: [{ path: 1 }] })).to.deep.include({ type: 'invalid' });
  });

  it('no resource type makes a decision subject that is a policy subject', () => {
    for (const type of ['policy', '_policy', 'pdp-1', '_policy.pdp-1', 'applied', '*', '>', '_policy.pdp-1.applied']) {
      for (const effect of ['ALLOW', 'DENY'] as const) {
        const d = decisionSubject('verdict.decisions', type, effect);
        expect(d.split('.')).to.have.length(4); // prefix (2 tokens) + type + effect
        for (const status of ['applied', 'rejected'] as const) expect(d).to.not.equal(policySubject('verdict.decisions', 'pdp-1', status));
      }
    }
    expect(policySubject('verdict.decisions', 'pdp.eu 1', 'applied')).to.equal('verdict.decisions._policy.pdp_eu_1.applied');
  });
});

describe('policy evidence: stored text and replay', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-revisions-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: department-edits
    actions: [edit]
    effect: allow
    roles: [employee]
    when: subject.attributes.department == resource.attributes.department
  - name: office-hours-read
    actions: [read]
    effect: allow
    roles: [employee]
    when: now.getHours("UTC") < 18
`;

  function store(files: PolicyFile[]): string {
    const built = buildBundle(files, { createdAt: new Date(), createdBy: 'unit', message: '', tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } });
    writeFileSync(path.join(dir, `${built.bundle.revision}.json`), built.bytes);
    return built.bundle.revision;
  }

  function event(revision: string, overrides: Partial<DecisionEventView>): DecisionEventView {
    return {
      schema: 'verdict.decision.v1', id: 'e1', time: '2026-12-07T10:00:00.000Z', instance: 'pdp-1', source: 'check', requestId: '', caller: { id: '', kind: 'anonymous' },
      subject: { id: 'alice', roles: ['employee'], type: 'user' }, action: 'edit', resource: { id: 'd1', type: 'document' },
      decision: 'ALLOW', reason: 'RULE_ALLOW', policy: 'document.yaml', rule: 'department-edits', revision, ...overrides,
    };
  }

  async function compiled(revision: string): Promise<CompiledRevision> {
    const r = await new RevisionCache(new DirectoryRevisionReader(dir), undefined).get(revision);
    if (r.status !== 'ok') throw new Error(r.detail);
    return r.compiled;
  }

  it('a stored copy is checked: missing, a changed file, another set under the name, a digest the chain does not have', async () => {
    const files = [withDigest({ path: 'document.yaml', text: POLICY })];
    const revision = store(files);
    const reader = new DirectoryRevisionReader(dir);
    expect((await reader.get(revision)).status).to.equal('found');
    expect((await reader.get(revision, { revisionSha256: revisionDigest(files) })).status).to.equal('found');
    const lying = await reader.get(revision, { revisionSha256: 'e'.repeat(64) });
    expect(lying).to.deep.include({ status: 'altered' });
    expect((await reader.get('sha256:0123456789abcdef')).status).to.equal('missing');
    // One character of the text changed (the bundle's own hash no longer matches).
    const file = path.join(dir, `${revision}.json`);
    const bytes = (await import('node:fs')).readFileSync(file, 'utf8');
    writeFileSync(file, bytes.replace('department-edits', 'department-edit5'));
    const altered = await reader.get(revision);
    expect(altered.status).to.equal('altered');
    expect(altered.status === 'altered' && altered.detail).to.match(/document\.yaml.*hashes to/);
    // Another, valid set stored under this revision's name.
    const other = buildBundle([withDigest({ path: 'document.yaml', text: POLICY.replace('18', '17') })], { createdAt: new Date(), createdBy: 'x', message: '', tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } });
    writeFileSync(file, other.bytes);
    expect((await reader.get(revision)).status).to.equal('altered');
  });

  it('replay: the same with every attribute recorded; a masked attribute that decided; an unrecorded one; a record that does not match its rules; the clock', async () => {
    const revision = store([withDigest({ path: 'document.yaml', text: POLICY })]);
    const c = await compiled(revision);
    const all = { subject: { attributes: { department: 'eng' } }, resource: { attributes: { department: 'eng' } }, context: {} };
    const same = replayEvent(event(revision, { attributes: all }), c);
    expect(same).to.deep.include({ status: 'same', masked: [], unrecorded: [], reasons: [], attributesComplete: true });

    const masked = replayEvent(event(revision, { attributes: { ...all, subject: { attributes: { department: '***' } } } }), c);
    expect(masked.status).to.equal('different');
    expect(masked.reasons).to.deep.equal(['masked']);
    expect(masked.masked).to.deep.equal(['subject.attributes.department']);
    expect(masked.replayed).to.include({ effect: 'DENY', reason: 'NO_MATCHING_RULE' });

    const unrecorded = replayEvent(event(revision, {}), c);
    expect(unrecorded.status).to.equal('different');
    expect(unrecorded.reasons).to.include('unrecorded');
    expect(unrecorded.unrecorded).to.include('subject.attributes.department');

    // The record says DENY where the rules allow, with every input recorded: the engine or the record.
    const forged = replayEvent(event(revision, { attributes: all, decision: 'DENY', reason: 'NO_MATCHING_RULE', policy: '', rule: '' }), c);
    expect(forged.reasons).to.deep.equal(['engine']);

    // Clock: replayed at the recorded time, so a rule on `now` decides as then.
    const evening = event(revision, { action: 'read', rule: 'office-hours-read', time: '2026-12-07T20:00:00.000Z', attributes: all });
    const read = replayEvent(evening, c);
    expect(read.status).to.equal('different'); // 20:00 is after office hours: the record (ALLOW) disagrees
    expect(read.reasons).to.include('clock').and.include('engine');
    expect(replayEvent({ ...evening, time: '2026-12-07T09:00:00.000Z' }, c).status).to.equal('same');
  });
});

describe('policy evidence: the hooks around a change', () => {
  class Sink {
    readonly bodies: PolicyRecordBody[] = [];
    answer: (body: PolicyRecordBody) => Promise<boolean> = async () => true;
    recordPolicyChange(body: PolicyRecordBody): Promise<boolean> {
      this.bodies.push(body);
      return this.answer(body);
    }
  }
  class Writer implements RevisionWriter {
    readonly bucket = 'B';
    fail: string | undefined = 'NATS is down';
    puts = 0;
    async put(files: readonly PolicyFile[]) {
      this.puts++;
      if (this.fail) throw new Error(this.fail);
      return { status: 'stored' as const, digest: sha(files.map((f) => f.text).join('')) };
    }
    async close() {}
  }
  const options = { instance: 'pdp-1', textTimeoutMs: 200, recordTimeoutMs: 200, retryMs: 50 };

  it('text not stored: the change goes live, its record says why, and the text is stored later in the background', async () => {
    const sink = new Sink();
    const writer = new Writer();
    const evidence = new PolicyEvidence(options, silent, sink, writer);
    const c = change();
    await evidence.beforeSwap(c);
    evidence.atSwap(c);
    expect(sink.bodies[0]!.text).to.deep.include({ status: 'failed', bucket: 'B', error: 'NATS is down' });
    expect(evidence.textMissing).to.equal(1);
    expect(evidence.stats.textFailed).to.equal(1);
    writer.fail = undefined;
    const deadline = Date.now() + 2000;
    while (evidence.textMissing > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(evidence.textMissing).to.equal(0);
    expect(evidence.stats.textStored).to.equal(1);
    await evidence.close();
  });

  it('the record is built before the swap and handed over at it (not before); a store that hangs is waited for at most textTimeoutMs', async () => {
    const sink = new Sink();
    const writer = new Writer();
    writer.put = () => new Promise(() => undefined);
    const evidence = new PolicyEvidence(options, silent, sink, writer);
    const c = change();
    const started = Date.now();
    await evidence.beforeSwap(c);
    expect(Date.now() - started).to.be.lessThan(1500);
    expect(sink.bodies, 'nothing handed over before the swap').to.deep.equal([]);
    evidence.atSwap(c);
    expect(sink.bodies).to.have.length(1);
    expect(sink.bodies[0]!.text!.status).to.equal('failed');
    await evidence.close();

    // A record the spool does not take is logged and counted; the change stays live.
    sink.answer = async () => false;
    const failing = new PolicyEvidence(options, silent, sink, undefined);
    await failing.beforeSwap(c);
    failing.atSwap(c);
    await new Promise((r) => setTimeout(r, 20));
    expect(failing.stats.recordFailures).to.equal(1);
    // A process's first set: the record waits for the publisher to start, however long.
    const first = new PolicyEvidence(options, silent, { recordPolicyChange: () => new Promise(() => undefined) }, undefined);
    const startup = change({ previousRevision: null });
    await first.beforeSwap(startup);
    first.atSwap(startup);
    await new Promise((r) => setTimeout(r, 300));
    expect(first.stats.recordFailures).to.equal(0);
  });

  it('rejected changes are recorded after the fact; unchanged ones not at all', () => {
    const sink = new Sink();
    const evidence = new PolicyEvidence(options, silent, sink, undefined);
    evidence.afterChange(change({ result: { status: 'unchanged' } }));
    evidence.afterChange(change({ result: { status: 'applied' } }));
    evidence.afterChange(rejectedWith(2, 10));
    expect(sink.bodies.map((b) => b.status)).to.deep.equal(['rejected']);
    expect(sink.bodies[0]!.errors).to.have.length(2);
    expect(sink.bodies[0]!.message).to.equal('policy set rejected with 2 errors');
  });
});
