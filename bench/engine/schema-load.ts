/**
 * Load time of the generated 1,000-type set with declarations (roles and a JSON Schema per type,
 * `--schemas` of the generator) against the same set without, each load in a fresh process (as at
 * server start), alternating, several runs; medians and their ratio. Target: within 20%.
 *
 * Besides wall time, each load's CPU time (user + system of the child, from before reading to the
 * compiled set) is reported: on a machine shared with other work the wall ratio swings widely, the
 * CPU ratio much less. `--single-threaded` runs the children with V8's --single-threaded (GC and
 * compilation on the main thread), so the CPU time is all the load's work and none is hidden on
 * other threads.
 *
 *   node dist/bench/engine/schema-load.js [--runs 7] [--types 1000] [--single-threaded]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicyCompiler, readPolicySources, withDigest } from '../../src/policy/index.js';
import { generateLargePolicySet, writePolicyFiles } from '../generate/large-policy-set.js';
import { median, parseFlags, fmtNum } from '../util.js';

interface ChildResult {
  readonly ms: number;
  readonly cpuMs: number;
  readonly rules: number;
  readonly declared: boolean;
}

async function child(dir: string): Promise<ChildResult> {
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const candidate = new PolicyCompiler().compileNow((await readPolicySources(dir)).map(withDigest));
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const used = process.cpuUsage(cpu);
  if (!candidate.set) throw new Error(`set rejected: ${candidate.issues[0]?.message}`);
  return { ms, cpuMs: (used.user + used.system) / 1000, rules: candidate.set.ruleCount, declared: candidate.set.declarations !== undefined };
}

function runChild(dir: string, nodeFlags: readonly string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeFlags, fileURLToPath(import.meta.url), '--child', dir], (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as ChildResult);
    });
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), ['single-threaded']);
  const childDir = flags.optStr('child');
  if (childDir) {
    process.stdout.write(JSON.stringify(await child(childDir)));
    return;
  }
  const runs = flags.int('runs', 7);
  const types = flags.int('types', 1000);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-schemas-'));
  try {
    const plain = await writePolicyFiles(path.join(tmp, 'plain'), generateLargePolicySet({ types }).files);
    const declared = await writePolicyFiles(path.join(tmp, 'declared'), generateLargePolicySet({ types, schemas: true }).files);
    const nodeFlags = flags.bool('single-threaded') ? ['--single-threaded'] : [];
    const without: ChildResult[] = [];
    const withSchemas: ChildResult[] = [];
    for (let r = 0; r < runs; r++) {
      // Alternate which goes first, so a noisy neighbour hurts both alike.
      const order = r % 2 === 0 ? [plain, declared] : [declared, plain];
      for (const dir of order) {
        const res = await runChild(dir, nodeFlags);
        if (res.declared !== (dir === declared)) throw new Error('declarations not loaded as expected');
        (dir === declared ? withSchemas : without).push(res);
        process.stderr.write(`schema-load: run ${r + 1}/${runs} ${dir === declared ? 'with schemas' : 'without'}: ${fmtNum(res.ms, 0)} ms (CPU ${fmtNum(res.cpuMs, 0)} ms)\n`);
      }
    }
    const a = median(without.map((x) => x.ms));
    const b = median(withSchemas.map((x) => x.ms));
    const ca = median(without.map((x) => x.cpuMs));
    const cb = median(withSchemas.map((x) => x.cpuMs));
    const how = nodeFlags.length > 0 ? 'fresh process, --single-threaded' : 'fresh process';
    process.stdout.write(
      `${types} types, cold load (read + compile, ${how}), median of ${runs}: without declarations ${fmtNum(a, 0)} ms, with roles and ${types} schemas ${fmtNum(b, 0)} ms: ${fmtNum(b / a, 2)}× (target ≤ 1.20×); ` +
        `CPU ${fmtNum(ca, 0)} ms and ${fmtNum(cb, 0)} ms: ${fmtNum(cb / ca, 2)}×\n`,
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
