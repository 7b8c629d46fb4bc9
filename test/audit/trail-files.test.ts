import { expect } from 'chai';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCanonical } from '../../src/audit/records.js';
import { verifyFiles } from '../../src/audit/verify-files.js';
import { loadReceipts, RECEIPT_LIMITS, ReceiptsFile } from '../../src/audit/receipts.js';
import { describeRejected, MAX_REJECTED_PAYLOAD, rejectsLine } from '../../src/audit/rejects.js';
import { createHash } from 'node:crypto';
import { chainOfInstance, checkpointOf } from './support.js';
import { formatRejectedLine, formatTrailLine, parseTrailLine, TrailWriter } from '../../src/audit/trail-file.js';

describe('evidence: trail files are opened where the receipts say, and read byte for byte', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-trailfile-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function written(lines: [number, string][]): { writer: TrailWriter; position: ReturnType<TrailWriter['position']> & object } {
    const writer = new TrailWriter(dir, 1 << 20);
    writer.open(undefined, []);
    for (const [seq, payload] of lines) writer.add(seq, 'p.document.allow', payload);
    writer.flush(new Date('2026-01-02T00:00:00Z'));
    const position = writer.position()!;
    writer.close();
    return { writer, position };
  }

  it('files but no receipts at all: refused; receipts without a position yet: the files are set aside', () => {
    writeFileSync(path.join(dir, 'decisions-20260102-0001.jsonl'), formatTrailLine(1, 's', '{}'));
    expect(() => new TrailWriter(dir, 4096).open(undefined, undefined)).to.throw(/no keeper receipts/);
    // A crash after the first file was created, before the first receipt named it.
    const problems = new TrailWriter(dir, 4096).open(undefined, []);
    expect(problems.map((p) => p.kind)).to.deep.equal(['unreceipted']);
    expect(readdirSync(dir)).to.deep.equal(['decisions-20260102-0001.jsonl.unreceipted']);
  });

  it('bytes after the receipted end are cut off and handed back; the file goes on from there', () => {
    const { position } = written([[1, '{"a":1}'], [2, '{"a":2}']]);
    const file = path.join(dir, position.file);
    appendFileSync(file, '{"seq":999999999,"subject":"x","data":{}}\n{"seq":3,"subj');
    const writer = new TrailWriter(dir, 1 << 20);
    const problems = writer.open(position, []);
    expect(problems).to.have.length(1);
    expect(problems[0]!.kind).to.equal('unreceipted');
    expect(problems[0]!.cut!.bytes.toString()).to.include('999999999');
    writer.add(3, 'p.document.allow', '{"a":3}');
    writer.flush(new Date('2026-01-02T00:00:01Z'));
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).seq)).to.deep.equal([1, 2, 3]);
    expect(writer.position()!.lastSeq).to.equal(3);
  });

  it('a receipted file cut short or changed is reported, keeps its receipt, and writing goes on in a new file', () => {
    const { position } = written([[1, '{"a":1}'], [2, '{"a":2}']]);
    const file = path.join(dir, position.file);
    writeFileSync(file, readFileSync(file, 'utf8').split('\n')[0] + '\n');
    const writer = new TrailWriter(dir, 1 << 20);
    const problems = writer.open(position, []);
    expect(problems.map((p) => p.kind)).to.deep.equal(['truncated']);
    expect(problems[0]!.message).to.match(/its end was cut \(it ended at stream sequence 2\)/);
    expect(writer.takeClosed()).to.deep.equal([{ name: position.file, bytes: position.bytes, sha256: position.sha256, firstSeq: 1, lastSeq: 2 }]);
    writer.add(3, 'p.document.allow', '{"a":3}');
    writer.flush(new Date('2026-01-02T00:00:01Z'));
    expect(writer.position()!.file).to.equal('decisions-20260102-0002.jsonl');

    const changed = written([[1, '{"a":1}']]);
    const f2 = path.join(dir, changed.position.file);
    writeFileSync(f2, readFileSync(f2, 'utf8').replace('"a":1', '"a":7'));
    expect(new TrailWriter(dir, 1 << 20).open(changed.position, []).map((p) => p.kind)).to.deep.equal(['altered']);
    expect(existsSync(f2)).to.equal(true);
  });

  it('parses only lines in the exact form the keeper writes', () => {
    const line = formatTrailLine(5, 'p.document.allow', '{"a":1}').trimEnd();
    expect(parseTrailLine(line)).to.deep.equal({ type: 'record', seq: 5, subject: 'p.document.allow', payload: '{"a":1}' });
    const rejected = formatRejectedLine(6, 's', { bytes: 3, reason: 'not JSON', sha256: 'ab'.repeat(32) }).trimEnd();
    expect(parseTrailLine(rejected).type).to.equal('rejected');
    for (const bad of [
      '{"seq": 5,"subject":"p.document.allow","data":{"a":1}}',
      '{"seq":5,"subject":"p.document.allow","data":{"a":1},"x":1}',
      '{"seq":5,"data":{"a":1},"subject":"p.document.allow"}',
      '{"seq":-5,"subject":"p","data":{}}',
      rejected.replace('"bytes":3', '"bytes": 3'),
    ]) {
      expect(parseTrailLine(bad).type, bad).to.equal('invalid');
    }
    expect(parseTrailLine('{"chain":{}}').type).to.equal('bare');
    // Whitespace inside the payload part leaves a payload that is not canonical: verify refuses it there.
    const spaced = parseTrailLine('{"seq":5,"subject":"p.document.allow","data":{"a":1} }');
    expect(spaced.type === 'record' && parseCanonical(spaced.payload).ok).to.equal(false);
  });
});

describe('evidence: heads compared with a trail', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-heads-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a head of a chain the files do not hold counts for their own stream only', async () => {
    const { events } = chainOfInstance('pdp-1', 2);
    const file = path.join(dir, 'decisions-20260102-0001.jsonl');
    writeFileSync(file, events.map((e, i) => formatTrailLine(i + 1, 'p.document.allow', e.payload)).join(''));
    const other = chainOfInstance('pdp-2', 1).events[0]!;
    const head = (stream: string) => ({ source: `KV head ${stream}`, checkpoint: checkpointOf(other, 'pdp-2', undefined) as unknown as Record<string, unknown>, streamSeq: 5, stream });
    const mine = await verifyFiles([file], { heads: [head('MINE')], stream: 'MINE' });
    expect(mine.findings.map((f) => f.kind)).to.deep.equal(['truncated']);
    expect(mine.findings[0]!.message).to.include('these files hold none of the chain');
    const theirs = await verifyFiles([file], { heads: [head('THEIRS')], stream: 'MINE' });
    expect(theirs.findings).to.deep.equal([]);
    // A head of a chain the files hold is compared whatever its stream says.
    const ahead = { ...head('THEIRS'), checkpoint: { ...checkpointOf(events[1]!, 'pdp-1', undefined), seq: 3 } as unknown as Record<string, unknown> };
    expect((await verifyFiles([file], { heads: [ahead], stream: 'MINE' })).findings.map((f) => f.kind)).to.deep.equal(['truncated']);
  });
});

describe('evidence: the keeper\'s receipts and rejects stay bounded', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-receipts-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('receipts keep the latest checkpoint of at most 1,024 chains and at most 10,000 file receipts, and load back', () => {
    const file = path.join(dir, 'r', 'receipts.json');
    const receipts = new ReceiptsFile(file, { stream: 'S', durable: 'd', filter: null }, undefined, undefined);
    for (let i = 0; i < RECEIPT_LIMITS.chains + 100; i++) receipts.noteCheckpoint(`pdp/${i}`, { chain: `pdp/${i}`, seq: 1 }, i + 1);
    const files = Array.from({ length: RECEIPT_LIMITS.files + 5 }, (_, i) => ({ name: `decisions-20260101-${String(i).padStart(5, '0')}.jsonl`, bytes: 1, sha256: 'ab'.repeat(32), firstSeq: i, lastSeq: i }));
    receipts.commit(42, undefined, files);
    const doc = loadReceipts(file)!;
    expect(doc.chains).to.have.length(RECEIPT_LIMITS.chains);
    expect(doc.chains[0]!.chain, 'the least recently updated are dropped').to.equal('pdp/100');
    expect(doc.files).to.have.length(RECEIPT_LIMITS.files);
    expect(doc).to.include({ filesDropped: 5, streamSeq: 42, position: null });
  });

  it('a rejected payload is kept as one line, cut at 64 KiB, with the digest of all of it', () => {
    const big = Buffer.from(`line one\n${'x'.repeat(MAX_REJECTED_PAYLOAD * 2)}`);
    const r = describeRejected(7, 'p.document.allow', big, 'not JSON');
    const line = rejectsLine(r, big);
    expect(line.indexOf('\n')).to.equal(line.length - 1);
    const parsed = JSON.parse(line);
    expect(parsed).to.include({ seq: 7, bytes: big.length, payloadCut: true, sha256: createHash('sha256').update(big).digest('hex') });
    expect(parsed.payload).to.have.length(MAX_REJECTED_PAYLOAD);
  });
});
