/**
 * Child process for the spool tests: appends three groups of events to a DecisionLog in the
 * directory given as argv[2] and prints what happened as one JSON line. Run under a file-size limit
 * (`ulimit -f`, SIGXFSZ is ignored by Node) or on a small file system, the second, large group
 * fails part-way: a short write followed by EFBIG/ENOSPC.
 */
import { DecisionLog, WalError } from '../../src/events/wal.js';
import { chainOf, walEntry } from './fixtures.js';

const dir = process.argv[2]!;
const sizes = (process.argv[3] ?? '3,10,2').split(',').map(Number);
const all = chainOf(sizes.reduce((a, b) => a + b, 0), 'spool-writer').events.map(walEntry);
const log = new DecisionLog(dir, 64 * 1024 * 1024, 1024 * 1024 * 1024);
log.open();
const groups: { seqs: number[]; ok: boolean; reason?: string }[] = [];
let at = 0;
for (const n of sizes) {
  const group = all.slice(at, at + n);
  at += n;
  try {
    log.append(group, true);
    groups.push({ seqs: group.map((e) => e.seq), ok: true });
  } catch (err) {
    groups.push({ seqs: group.map((e) => e.seq), ok: false, reason: err instanceof WalError ? err.reason : String(err) });
  }
}
const readBack = log.read(log.committedPosition(), 1000);
const end = log.end();
log.close();
// A fresh process opening the same spool (a restart) must read the same.
const again = new DecisionLog(dir, 64 * 1024 * 1024, 1024 * 1024 * 1024);
again.open();
const reread = again.read(again.committedPosition(), 1000);
again.close();
console.log(JSON.stringify({ groups, read: readBack.entries.map((e) => e.seq), end, reread: reread.entries.map((e) => e.seq), intact: readBack.entries.every((e, i) => e.payload === all[e.seq - 1]!.payload && i >= 0) }));
