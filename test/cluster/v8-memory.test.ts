/**
 * heapGrowthPercent: each serving process sets V8's old-generation growth for itself (V8 reads the
 * flag at every full collection), and an operator's own --heap-growing-percent stands. Measured on
 * a process that churns garbage outliving young collections, as a server's closed streams do.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, DEFAULT_CONFIG, loadConfig, validateConfig } from '../../src/config/load.js';
import { applyHeapGrowth, workerExecArgv } from '../../src/server/v8-memory.js';

const CHURN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'heap-churn.js');

interface Churn {
  applied: { from: string; percent?: number };
  maxOldMB: number;
  liveAfterFullMB: number;
}

async function churn(percent: number, execArgv: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Churn> {
  const { stdout } = await promisify(execFile)(process.execPath, [...execArgv, CHURN, String(percent), '3000'], { env: { ...process.env, NODE_OPTIONS: '', ...env } });
  return JSON.parse(stdout) as Churn;
}

describe('V8 memory settings (heapGrowthPercent, workerSemiSpaceMB)', function () {
  this.timeout(60_000);

  it('heapGrowthPercent bounds how far the old generation grows past what is live; 300 lets it grow 4x', async () => {
    const tight = await churn(50);
    const loose = await churn(300);
    expect(tight.applied).to.deep.equal({ percent: 50, from: 'config' });
    expect(loose.applied).to.deep.equal({ percent: 300, from: 'config' });
    // ~40 MB live; V8 adds its minimum step and the young generation's size to the limit
    expect(tight.liveAfterFullMB, JSON.stringify(tight)).to.be.within(25, 70);
    expect(tight.maxOldMB, JSON.stringify(tight)).to.be.below(tight.liveAfterFullMB * 1.5 + 40);
    expect(loose.maxOldMB, JSON.stringify(loose)).to.be.above(tight.maxOldMB + 40);
  });

  it("an operator's own --heap-growing-percent on the node command line stands; 0 leaves V8's", async () => {
    const onCommandLine = await churn(50, ['--heap-growing-percent=300']);
    expect(onCommandLine.applied).to.deep.equal({ from: 'operator flag' });
    expect(onCommandLine.maxOldMB, JSON.stringify(onCommandLine)).to.be.above(onCommandLine.liveAfterFullMB * 1.5 + 40);
    expect(applyHeapGrowth(50, ['--heap_growing_percent', '300'])).to.deep.equal({ from: 'operator flag' });
    expect(applyHeapGrowth(0, [])).to.deep.equal({ from: 'V8 default' });
  });

  it('heapGrowthPercent: 50 by default, VERDICT_HEAP_GROWTH_PERCENT sets it, and a value out of 0-1000 is refused with its name and range', () => {
    expect(loadConfig({}, {}).heapGrowthPercent).to.equal(50);
    expect(loadConfig({}, { VERDICT_HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).to.equal(0);
    for (const bad of [-1, 1001, 2.5, 'half']) {
      let problems: readonly string[] = [];
      try {
        validateConfig({ ...(JSON.parse(JSON.stringify(DEFAULT_CONFIG)) as Record<string, unknown>), heapGrowthPercent: bad });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems = err.problems;
      }
      expect(problems).to.deep.equal([`heapGrowthPercent: must be an integer from 0 to 1000 (got ${JSON.stringify(bad)})`]);
    }
  });

  it("workers get workerSemiSpaceMB as --max-semi-space-size unless it is 0 or the operator set it", () => {
    expect(workerExecArgv(8, ['--enable-source-maps'], '')).to.deep.equal(['--enable-source-maps', '--max-semi-space-size=8']);
    expect(workerExecArgv(0, [], '')).to.deep.equal([]);
    expect(workerExecArgv(8, ['--max_semi_space_size=32'], '')).to.deep.equal(['--max_semi_space_size=32']);
    expect(workerExecArgv(8, [], '--max-semi-space-size 32')).to.deep.equal([]);
  });
});
