import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eventHash } from '../../src/events/chain.js';
import { CHECKPOINT_SCHEMA_V2 as CHECKPOINT_SCHEMA } from '../../src/events/checkpoint.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import {
  check, checkBatch, countEvents, NATS_URL, randomToken, readTrail, Resources, runVerdict, startConsumer, startVerdict, trailFiles, uniqueNames, waitFor, writePolicies,
  type AuthzClient, type CheckResponse, type Proc, type ServerProc,
} from '../support/events-harness.js';

/** `n` checks: every third one is denied (a suspended subject), the rest allowed. */
async function decide(client: AuthzClient, n: number, tag: string): Promise<CheckResponse[]> {
  const out: CheckResponse[] = [];
  for (let i = 0; i < n; i++) {
    const suspended = i % 3 === 2;
    out.push(await check(client, { subject: { id: `u${i}`, roles: ['employee'], attributes: { suspended } }, action: 'read', resource: { type: 'document', id: `${tag}-${i}` } }, `${tag}-${i}`));
  }
  const batch = await checkBatch(client, { id: 'batcher', roles: ['employee'] }, [
    { action: 'read', resource: { type: 'document', id: `${tag}-b1` } },
    { action: 'edit', resource: { type: 'document', id: `${tag}-b2` } },
  ], `${tag}-batch`);
  return [...out, ...batch.results];
}

const eventsOf = (dir: string) => readTrail(dir).filter((r) => r.data.schema === EVENT_SCHEMA);

describe('audit: consumer trail files and offline verify (real NATS, real processes)', function () {
  this.timeout(40_000);
  const res = new Resources();
  let names: { stream: string; prefix: string };
  let server: ServerProc;
  let client: AuthzClient;

  beforeEach(async () => {
    names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    server = await startVerdict(res, { policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}` });
    await server.waitForLog(/^NATS available/);
    client = res.client(server.address);
  });
  afterEach(() => res.cleanup());
  after(() => res.cleanup()); // also when a beforeEach hook failed

  const consumer = (outDir: string, durable: string, onlyDenials = false, rotateBytes?: number): Promise<Proc> =>
    startConsumer(res, { natsUrl: NATS_URL, ...names, outDir, durable, onlyDenials, ...(rotateBytes ? { rotateBytes } : {}) });

  async function verify(files: string[], ...flags: string[]) {
    return runVerdict(['audit', 'verify', ...flags, ...files]);
  }

  it('writes every decision once, resumes after a stop and after a crash without duplicates, and verifies OK', async () => {
    const all = res.tmpDir('trail-all');
    const denials = res.tmpDir('trail-deny');
    // Small files: the trail spans several, and resuming continues in the newest.
    let keeper = await consumer(all, 'keeper', false, 4096);
    const denyKeeper = await consumer(denials, 'deny-keeper', true);

    const first = await decide(client, 12, 'a');
    const denied = () => [...first, ...second, ...third].filter((r) => !r.allowed);
    let second: CheckResponse[] = [];
    let third: CheckResponse[] = [];
    await waitFor('the trail to hold the first decisions', () => eventsOf(all).length >= first.length, 10_000);

    // SIGTERM: a clean stop, exit 0 (no findings).
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    expect(keeper.log('audit consumer stopped')?.stats).to.include({ findings: 0 });

    // Decisions made while the keeper is away are picked up when it resumes.
    second = await decide(client, 9, 'b');
    keeper = await consumer(all, 'keeper', false, 4096);
    await waitFor('the resumed trail to hold all decisions', () => eventsOf(all).length >= first.length + second.length, 10_000);

    // A crash (SIGKILL, no chance to ack) and a restart: redelivered messages are skipped. The
    // worst case is a durable that lost all its acks: here it is deleted, so everything is
    // delivered again and the keeper must skip what its files already hold (what its receipts say).
    const receipted = () => JSON.parse(readFileSync(path.join(all, 'keeper-receipts.json'), 'utf8')).streamSeq as number;
    await waitFor('the receipts of the whole trail', () => receipted() >= readTrail(all).at(-1)!.seq, 10_000);
    await keeper.stop('SIGKILL');
    await (await (await res.nats(NATS_URL)).jetstreamManager()).consumers.delete(names.stream, 'keeper');
    third = await decide(client, 6, 'c');
    keeper = await consumer(all, 'keeper', false, 4096);
    const made = [...first, ...second, ...third];
    await waitFor('the trail after a crash to hold all decisions', () => eventsOf(all).length >= made.length, 10_000);

    // Stop the server gracefully: its final checkpoint closes the chain in the trail.
    expect(await server.stop('SIGTERM')).to.equal(0);
    await waitFor('the final checkpoint in the trail', () => readTrail(all).some((r) => r.data.schema === CHECKPOINT_SCHEMA && r.data.final === true), 10_000);
    await waitFor('the denials in the denials trail', () => eventsOf(denials).length >= denied().length, 10_000);
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    const stats = keeper.log('audit consumer stopped')?.stats as { skippedDuplicates: number; findings: number };
    expect(stats.findings).to.equal(0);
    expect(stats.skippedDuplicates, 'redelivered messages were skipped').to.be.at.least(first.length + second.length);
    expect(await denyKeeper.stop('SIGTERM'), denyKeeper.tail()).to.equal(0);

    // Every decision exactly once, matching what the callers were told.
    const trail = readTrail(all);
    const seqs = trail.map((r) => r.seq);
    expect(seqs, 'stream sequences strictly increasing, none twice').to.deep.equal([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).to.equal(seqs.length);
    const events = trail.filter((r) => r.data.schema === EVENT_SCHEMA);
    expect(events.map((r) => r.data.id)).to.deep.equal(made.map((r) => r.decisionId));
    events.forEach((r, i) => {
      const d = r.data as Record<string, any>;
      expect(d.decision).to.equal(made[i]!.allowed ? 'ALLOW' : 'DENY');
      expect(d.reason).to.equal(made[i]!.reason);
      expect(d.chain.seq).to.equal(i + 2); // seq 1: the policy set that went live at start
      expect(eventHash(d)).to.equal(d.chain.hash);
      expect(r.subject).to.equal(`${names.prefix}.document.${made[i]!.allowed ? 'allow' : 'deny'}`);
    });

    expect(trailFiles(all).length).to.be.greaterThan(2);
    const ok = await verify(trailFiles(all));
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(new RegExp(`verified ${trailFiles(all).length} files, ${made.length + 1} events, \\d+ checkpoints: OK`));
    expect(ok.stdout).to.include('closed by a final checkpoint');
    expect(ok.stderr).to.equal('');

    // --only-denials: deny events only, every one of them; verifiable as a partial view.
    const denyTrail = readTrail(denials);
    expect(denyTrail.length).to.equal(denied().length);
    expect(denyTrail.map((r) => r.data.id)).to.deep.equal(denied().map((r) => r.decisionId));
    for (const r of denyTrail) {
      expect(r.data.decision).to.equal('DENY');
      expect(r.subject).to.match(/\.deny$/);
    }
    const partial = await verify(trailFiles(denials), '--partial');
    expect(partial.code, partial.stdout + partial.stderr).to.equal(0);
    expect(partial.stdout).to.match(/: OK$/m);
  });

  it('a keeper that crashed after writing but before its receipt (a torn line too) cuts the unreceipted tail, fetches it again and reports no false problem', async () => {
    const outDir = res.tmpDir('trail');
    let keeper = await consumer(outDir, 'keeper');
    const made = await decide(client, 6, 'r');
    await waitFor('the trail', () => eventsOf(outDir).length >= made.length, 10_000);
    const receiptsFile = path.join(outDir, 'keeper-receipts.json');
    const lastLine = () => readTrail(outDir).at(-1)!.seq;
    await waitFor('the receipts of the whole trail', () => JSON.parse(readFileSync(receiptsFile, 'utf8')).streamSeq >= lastLine(), 10_000);
    expect(await keeper.stop('SIGKILL')).to.equal(null);
    // Rebuild the state of a crash: the receipts end right after an event whose checkpoint
    // follows it (the keeper resumes between the two); the lines after it were written and
    // fsynced but never receipted nor acknowledged, and the last one is torn.
    const [file] = trailFiles(outDir);
    const text = readFileSync(file!, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    const cut = lines.findIndex((l, i) => JSON.parse(l).data.schema === EVENT_SCHEMA && i + 1 < lines.length && JSON.parse(lines[i + 1]!).data.schema === CHECKPOINT_SCHEMA && i > 2);
    expect(cut).to.be.greaterThan(0);
    const receipted = `${lines.slice(0, cut + 1).join('\n')}\n`;
    const receipts = JSON.parse(readFileSync(receiptsFile, 'utf8'));
    const lastSeq = JSON.parse(lines[cut]!).seq as number;
    receipts.streamSeq = lastSeq;
    receipts.position = { ...receipts.position, bytes: Buffer.byteLength(receipted), sha256: createHash('sha256').update(receipted).digest('hex'), lastSeq };
    receipts.chains = [];
    writeFileSync(receiptsFile, JSON.stringify(receipts));
    const rest = lines.slice(cut + 1).join('\n');
    writeFileSync(file!, receipted + rest.slice(0, rest.length - 7));
    await (await (await res.nats(NATS_URL)).jetstreamManager()).consumers.delete(names.stream, 'keeper');

    keeper = await consumer(outDir, 'keeper');
    const more = await decide(client, 3, 's');
    await waitFor('the repaired trail', () => eventsOf(outDir).length >= made.length + more.length, 10_000);
    expect(await keeper.stop('SIGTERM'), keeper.tail()).to.equal(0);
    expect(keeper.logs.filter((l) => l.msg === 'AUDIT TRAIL PROBLEM')).to.deep.equal([]);
    expect(String(keeper.log('trail file repaired')?.detail)).to.match(/bytes after the keeper's last receipt/);
    const trail = readTrail(outDir);
    expect(trail.map((r) => r.seq)).to.deep.equal(trail.map((_, i) => i + 1));
    expect(eventsOf(outDir).map((r) => r.data.id)).to.deep.equal([...made, ...more].map((r) => r.decisionId));
    const ok = await verify(trailFiles(outDir), '--receipts', receiptsFile);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
  });

  it('verify names the altered line, reports a deleted line as a gap and swapped lines as a gap/broken link', async () => {
    const outDir = res.tmpDir('trail');
    const keeper = await consumer(outDir, 'keeper');
    const made = await decide(client, 10, 't');
    await waitFor('the trail', () => eventsOf(outDir).length >= made.length, 10_000);
    expect(await keeper.stop('SIGTERM')).to.equal(0);
    const [file] = trailFiles(outDir);
    expect(trailFiles(outDir)).to.have.length(1);
    const lines = readFileSync(file!, 'utf8').split('\n').filter(Boolean);
    const eventLines = lines.map((l, i) => ({ i, d: JSON.parse(l).data })).filter((x) => x.d.schema === EVENT_SCHEMA);
    expect(eventLines.length).to.equal(made.length);
    expect((await verify([file!])).code).to.equal(0);

    const work = res.tmpDir('tamper');
    const variant = (name: string, edit: (ls: string[]) => string[]): string => {
      const f = path.join(work, name);
      writeFileSync(f, `${edit([...lines]).join('\n')}\n`);
      return f;
    };

    // 1. One event's decision flipped ALLOW → DENY on line k: ALTERED at exactly file:k, first.
    const target = eventLines.find((x, n) => n >= 3 && x.d.decision === 'ALLOW')!;
    const k = target.i + 1;
    const altered = variant('altered.jsonl', (ls) => {
      ls[target.i] = ls[target.i]!.replace('"decision":"ALLOW"', '"decision":"DENY"');
      return ls;
    });
    expect(readFileSync(altered, 'utf8')).to.not.equal(readFileSync(file!, 'utf8'));
    const a = await verify([altered]);
    expect(a.code).to.equal(1);
    const firstProblem = a.stderr.split('\n')[0]!;
    expect(firstProblem).to.match(new RegExp(`^${altered.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${k}: ALTERED: `));
    expect(firstProblem).to.include(String(target.d.id));
    expect(a.stdout).to.include(`FAILED: `).and.include(`first at ${altered}:${k}`);

    // 1b. The same, re-hashed by a forger: the next event no longer links to it.
    const forged = variant('forged.jsonl', (ls) => {
      const line = JSON.parse(ls[target.i]!);
      line.data.decision = 'DENY';
      line.data.chain.hash = eventHash(line.data);
      line.subject = line.subject.replace(/\.allow$/, '.deny'); // a careful forger moves it to its subject too
      ls[target.i] = JSON.stringify(line);
      return ls;
    });
    const next = eventLines.find((x) => x.i > target.i)!;
    const b = await verify([forged]);
    expect(b.code).to.equal(1);
    expect(b.stderr).to.include(`${forged}:${next.i + 1}: BROKEN-LINK`);
    // A checkpoint between the two (timing) names the original hash: it disagrees first.
    const between = lines.slice(target.i + 1, next.i).findIndex((l) => JSON.parse(l).data.seq === target.d.chain.seq);
    const firstAt = between === -1 ? `${forged}:${next.i + 1}: BROKEN-LINK` : `${forged}:${target.i + 2 + between}: CONFLICT`;
    expect(b.stderr.split('\n')[0], b.stderr).to.include(firstAt);

    // 2. A middle event line deleted: a gap.
    const gone = eventLines[5]!;
    const deleted = variant('deleted.jsonl', (ls) => ls.filter((_, i) => i !== gone.i));
    const c = await verify([deleted]);
    expect(c.code).to.equal(1);
    expect(c.stderr).to.include(': GAP: ').and.include(`record ${gone.d.chain.seq} of chain ${gone.d.chain.id} is missing`);
    expect(c.stderr, 'the deleted line also leaves a hole in the stream sequence').to.include(': STREAM-GAP: ');

    // 3. Two event lines swapped: gap / broken link.
    const [x, y] = [eventLines[3]!, eventLines[4]!];
    const swapped = variant('swapped.jsonl', (ls) => {
      [ls[x.i], ls[y.i]] = [ls[y.i]!, ls[x.i]!];
      return ls;
    });
    const d = await verify([swapped]);
    expect(d.code).to.equal(1);
    expect(d.stderr).to.match(/: (GAP|BROKEN-LINK): /);

    // 4. The original still verifies, also as JSON.
    const json = await verify([file!], '--json');
    expect(json.code).to.equal(0);
    const report = JSON.parse(json.stdout);
    expect(report).to.include({ files: 1, events: made.length + 1 }); // and the policy record at seq 1
    expect(report.findings).to.deep.equal([]);
    // Sanity: the server counted what the stream holds.
    expect(await countEvents(await res.nats(NATS_URL), names.stream, names.prefix)).to.equal(made.length);
  });
});
