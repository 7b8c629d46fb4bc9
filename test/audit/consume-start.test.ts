import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, NATS_URL, Resources, uniqueNames, waitFor, type Proc } from '../support/events-harness.js';
import { startKeeper } from './support.js';

/** Runs a keeper that is expected to fail at start: returns its exit code, output and how long it took. */
async function failingStart(res: Resources, args: string[]): Promise<{ code: number | null; out: string; ms: number; proc: Proc }> {
  const t0 = Date.now();
  const proc = await startKeeper(res, args, false);
  const code = await Promise.race([proc.exit, new Promise<'hang'>((r) => setTimeout(() => r('hang'), 15_000))]);
  if (code === 'hang') throw new Error(`the keeper did not exit: ${proc.tail()}`);
  return { code, out: `${proc.stdout}${proc.stderr}`, ms: Date.now() - t0, proc };
}

describe('evidence: `verdict audit consume` exits 1 with the reason on every start failure (real NATS)', function () {
  this.timeout(60_000);
  const res = new Resources();
  let names: { stream: string; prefix: string };
  let nc: Awaited<ReturnType<Resources['nats']>>;

  beforeEach(async () => {
    names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    nc = await res.nats(NATS_URL);
    await (await nc.jetstreamManager()).streams.add({ name: names.stream, subjects: [`${names.prefix}.>`] });
  });
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  const base = () => ['--nats', NATS_URL, '--stream', names.stream, '--subject-prefix', names.prefix];

  it('unknown stream', async () => {
    const r = await failingStart(res, ['--nats', NATS_URL, '--stream', `${names.stream}_NOPE`, '--stdout']);
    expect(r.code).to.equal(1);
    expect(r.out).to.include(`stream ${names.stream}_NOPE does not exist`);
    expect(r.ms).to.be.below(8000);
  });

  it('the two commands of the README on one durable: the second exits 1 instead of hanging; a second keeper on a busy durable too', async () => {
    const first = await startKeeper(res, [...base(), '--out', res.tmpDir('trail')]);
    const second = await failingStart(res, [...base(), '--stdout', '--only-denials']);
    expect(second.code).to.equal(1);
    expect(second.out).to.include('durable consumer "verdict-audit" exists with filter (none)');
    expect(second.ms).to.be.below(8000);
    // Same durable, same filter, while the first one is reading it.
    const third = await failingStart(res, [...base(), '--stdout']);
    expect(third.code).to.equal(1);
    expect(third.out).to.include('is in use by another keeper');
    expect(first.running).to.equal(true);
    // With its own durable name, the denials keeper runs beside the first.
    const denials = await startKeeper(res, [...base(), '--stdout', '--only-denials', '--durable', 'verdict-denials']);
    expect(denials.running).to.equal(true);
    expect(await first.stop('SIGTERM')).to.equal(0);
    expect(await denials.stop('SIGTERM')).to.equal(0);
  });

  it('NATS unreachable: retries for --connect-timeout (default 5 s), then exits 1', async () => {
    const port = await freePort();
    const r = await failingStart(res, ['--nats', `nats://127.0.0.1:${port}`, '--stream', names.stream, '--stdout']);
    expect(r.code).to.equal(1);
    expect(r.out).to.include(`cannot reach NATS at nats://127.0.0.1:${port} within 5 s`);
    expect(r.ms).to.be.within(4000, 12_000);
    const quick = await failingStart(res, ['--nats', `nats://127.0.0.1:${port}`, '--stream', names.stream, '--stdout', '--connect-timeout', '1']);
    expect(quick.code).to.equal(1);
    expect(quick.ms).to.be.below(5000);
  });

  it('a trail directory without receipts, and receipts of another keeper, are refused', async () => {
    const out = res.tmpDir('trail');
    writeFileSync(path.join(out, 'decisions-20260101-0001.jsonl'), '{"seq":1,"subject":"x","data":{}}\n');
    const r = await failingStart(res, [...base(), '--out', out]);
    expect(r.code).to.equal(1);
    expect(r.out).to.include('holds trail files but there are no keeper receipts');

    const other = res.tmpDir('trail');
    const keeper = await startKeeper(res, [...base(), '--out', other, '--durable', 'one']);
    expect(await keeper.stop('SIGTERM')).to.equal(0);
    const s = await failingStart(res, [...base(), '--stdout', '--durable', 'two', '--receipts', path.join(other, 'keeper-receipts.json')]);
    expect(s.code).to.equal(1);
    expect(s.out).to.include('belong to stream');
  });

  it('--exit-on-finding: the keeper stops by itself with exit 1 at the first finding', async () => {
    const keeper = await startKeeper(res, [...base(), '--stdout', '--exit-on-finding']);
    nc.publish(`${names.prefix}.document.allow`, 'not json');
    await nc.flush();
    await waitFor('the keeper to exit', () => !keeper.running, 10_000);
    expect(await keeper.exit).to.equal(1);
    expect(keeper.log('AUDIT TRAIL PROBLEM')).to.include({ kind: 'rejected', level: 50 });
    expect(keeper.stderr).to.include('stopped at the first finding (rejected)');
    // Its trail on stdout holds the placeholder of the refused message.
    expect(keeper.stdout).to.match(/\{"seq":1,"subject":"[^"]+","rejected":\{"bytes":8,"reason":"not JSON/);
  });
});
