import { expect } from 'chai';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { comparePositions, DecisionLog, WalError } from '../../src/events/wal.js';
import { chainOf, walEntry } from './fixtures.js';

const MB = 1024 * 1024;

describe('events: write-ahead spool (DecisionLog)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-wal-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const entries = (n: number, boot = 'b') => chainOf(n, boot).events.map(walEntry);

  it('appends entries in order and reads them back exactly, with each end position', () => {
    const log = new DecisionLog(dir, 64 * MB, 64 * MB);
    log.open();
    const written = entries(5);
    const ends = log.append(written.slice(0, 3), true);
    ends.push(...log.append(written.slice(3), false));
    expect(ends).to.have.length(5);
    for (let i = 1; i < ends.length; i++) expect(comparePositions(ends[i]!, ends[i - 1]!)).to.be.greaterThan(0);
    expect(log.end()).to.deep.equal(ends[4]);
    const read = log.read(log.committedPosition(), 100);
    expect(read.entries).to.deep.equal(written);
    expect(read.ends).to.deep.equal(ends);
    expect(read.next).to.deep.equal(ends[4]);
    expect(log.pendingBytes()).to.equal(ends[4]!.offset);
    // Reads are bounded by `max` and resume from a position.
    const two = log.read({ segment: 1, offset: 0 }, 2);
    expect(two.entries).to.deep.equal(written.slice(0, 2));
    expect(log.read(two.next, 100).entries).to.deep.equal(written.slice(2));
    log.close();
  });

  it('commit moves the committed position; a reopened log resumes from the persisted commit', () => {
    const written = entries(6);
    const log = new DecisionLog(dir, 64 * MB, 64 * MB);
    log.open();
    const ends = log.append(written, true);
    log.commit(ends[2]!, true);
    expect(log.committedPosition()).to.deep.equal(ends[2]);
    expect(log.pendingBytes()).to.equal(ends[5]!.offset - ends[2]!.offset);
    log.commit(ends[1]!, true); // never backwards
    expect(log.committedPosition()).to.deep.equal(ends[2]);
    log.close();

    const again = new DecisionLog(dir, 64 * MB, 64 * MB);
    again.open();
    expect(again.committedPosition()).to.deep.equal(ends[2]);
    expect(again.read(again.committedPosition(), 100).entries).to.deep.equal(written.slice(3));
    // New entries go after the old ones.
    const more = entries(2, 'c');
    again.append(more, true);
    expect(again.read(again.committedPosition(), 100).entries).to.deep.equal([...written.slice(3), ...more]);
    again.close();
  });

  it('without a persisted commit (a crash before the first one) everything is replayed', () => {
    const written = entries(3);
    const log = new DecisionLog(dir, 64 * MB, 64 * MB);
    log.open();
    const ends = log.append(written, true);
    log.commit(ends[1]!, false); // committed in memory only, then the process dies
    const again = new DecisionLog(dir, 64 * MB, 64 * MB);
    again.open();
    expect(again.read(again.committedPosition(), 100).entries).to.deep.equal(written);
  });

  it('skips a torn last line left by a crash, and appends after it intact', () => {
    const written = entries(4);
    const log = new DecisionLog(dir, 64 * MB, 64 * MB);
    log.open();
    log.append(written.slice(0, 3), true);
    log.close();
    const segment = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.wal'))!);
    const line = `${written[3]!.subject}\t${written[3]!.msgId}\t${written[3]!.chain}\t${written[3]!.seq}\t${written[3]!.hash}\t${written[3]!.payload}\n`;
    appendFileSync(segment, line.slice(0, Math.floor(line.length / 2))); // the crash: half a line

    const again = new DecisionLog(dir, 64 * MB, 64 * MB);
    again.open();
    expect(again.read(again.committedPosition(), 100).entries).to.deep.equal(written.slice(0, 3));
    // A restarted publisher appends (the next chain's events): they must read back intact,
    // not glued to the torn fragment.
    const next = entries(2, 'next-boot');
    const ends = again.append(next, true);
    const read = again.read(again.committedPosition(), 100);
    expect(read.entries).to.deep.equal([...written.slice(0, 3), ...next]);
    expect(read.next).to.deep.equal(ends[1]);
    again.close();
    for (const l of readFileSync(segment, 'utf8').split('\n').filter(Boolean)) expect(l.split('\t')).to.have.length(6);
  });

  it('a torn tail with nothing after it is passed over by read', () => {
    const written = entries(2);
    const log = new DecisionLog(dir, 64 * MB, 64 * MB);
    log.open();
    const ends = log.append(written, true);
    log.close();
    const segment = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.wal'))!);
    appendFileSync(segment, 'vt.unit.document.allow\tsome-id\tunit/b\t3');
    const again = new DecisionLog(dir, 64 * MB, 64 * MB);
    again.open();
    const first = again.read(ends[1]!, 100);
    expect(first.entries).to.deep.equal([]);
    // Either the torn bytes are gone, or read skips past them: nothing is ever returned from them.
    expect(comparePositions(first.next, again.end())).to.equal(0);
  });

  it('refuses appends with WalError once more than spoolMaxBytes are unconfirmed', () => {
    const written = entries(3);
    const log = new DecisionLog(dir, 64 * MB, 1);
    log.open();
    const [end] = log.append(written.slice(0, 1), true); // nothing unconfirmed yet: accepted
    expect(() => log.append(written.slice(1, 2), true)).to.throw(WalError, /full/);
    log.commit(end!, false); // confirmed: room again
    expect(() => log.append(written.slice(1, 2), true)).to.not.throw();
    log.close();
  });

  it('rotates segments, reads across them, and deletes fully committed segments', () => {
    const written = entries(12);
    const lineBytes = Buffer.byteLength(`${written[0]!.subject}\t`) + 200; // roughly: force several segments
    const log = new DecisionLog(dir, lineBytes * 2, 64 * MB);
    log.open();
    const ends: { segment: number; offset: number }[] = [];
    for (const e of written) ends.push(...log.append([e], false));
    const segments = () => readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();
    expect(segments().length).to.be.greaterThan(2);
    // Read everything from the start across segment boundaries.
    const all: unknown[] = [];
    let pos = log.committedPosition();
    for (let i = 0; i < 50; i++) {
      const r = log.read(pos, 3);
      all.push(...r.entries);
      pos = r.next;
      if (r.entries.length === 0 && comparePositions(pos, log.end()) >= 0) break;
    }
    expect(all).to.deep.equal(written);
    // Commit into the last segment: all earlier segments are deleted.
    const before = segments().length;
    log.commit(ends[ends.length - 1]!, true);
    expect(segments()).to.have.length(1);
    expect(before).to.be.greaterThan(1);
    log.close();
    const again = new DecisionLog(dir, lineBytes * 2, 64 * MB);
    again.open();
    expect(again.read(again.committedPosition(), 100).entries).to.deep.equal([]);
    expect(statSync(path.join(dir, 'committed.json')).size).to.be.greaterThan(0);
  });

  it('fails with a WalError naming events.spoolDir when the directory is unusable', () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const log = new DecisionLog(file, 64 * MB, 64 * MB);
    expect(() => log.open()).to.throw(WalError, /events\.spoolDir/);
  });
});
