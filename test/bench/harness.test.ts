import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram } from '../../bench/grpc/histogram.js';
import { writeDocs } from '../../bench/report.js';

/** Repository root (this file runs from dist/test/bench/). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('bench: harness smoke test', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-bench-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs --quick against the empty server and prints a table with a positive checks/s', async () => {
    const json = path.join(dir, 'result.json');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['dist/bench/run.js', '--quick', '--servers', 'empty', '--out', json], { cwd: ROOT, timeout: 25_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(code, stderr).to.equal(0);
    const lines = stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('| scenario | server | checks/s |'));
    expect(header, stdout).to.be.greaterThan(-1);
    const row = lines.slice(header + 2).find((l) => l.startsWith('|') && l.includes('| empty |'));
    expect(row, stdout).to.be.a('string');
    const cells = row!.split('|').map((c) => c.trim());
    const checksPerSecond = Number(cells[3]!.replace(/,/g, ''));
    expect(checksPerSecond, row).to.be.greaterThan(0);
    const saved = JSON.parse(readFileSync(json, 'utf8')) as { rows: { server: string; runs: { calls: number; errors: number }[] }[] };
    expect(saved.rows[0]!.server).to.equal('empty');
    expect(saved.rows[0]!.runs[0]!.calls).to.be.greaterThan(0);
    expect(saved.rows[0]!.runs[0]!.errors).to.equal(0);
  });

  it('merges latency histograms from several generators into percentiles within 1%', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).record(i * 10); // 10 µs .. 10 ms
    const merged = LatencyHistogram.from(JSON.parse(JSON.stringify(a.toJSON()))).merge(b.toJSON());
    expect(merged.count).to.equal(1000);
    expect(merged.percentile(0.5)).to.be.closeTo(5000, 50);
    expect(merged.percentile(0.99)).to.be.closeTo(9900, 99);
    expect(merged.maxMicros).to.equal(10_000);
  });

  it('writes the results between the markers of docs/performance.md and keeps the rest', async () => {
    const file = path.join(dir, 'performance.md');
    writeFileSync(file, '# Performance\n\nIntro by hand.\n\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\n\n## Notes by hand\n');
    await writeDocs(file, '| new | table |');
    const text = readFileSync(file, 'utf8');
    expect(text).to.equal('# Performance\n\nIntro by hand.\n\n<!-- bench:begin -->\n| new | table |\n<!-- bench:end -->\n\n## Notes by hand\n');
  });
});
