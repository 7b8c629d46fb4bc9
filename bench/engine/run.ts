/**
 * In-process engine benchmark (`make bench-engine`): decisions per second and ns per decision for
 * the example policy set and for a generated 1,000-type set, compile (load) time of the big set,
 * heap held by each set, and the per-check ratio big/small. Several runs, medians reported.
 *
 *   node dist/bench/engine/run.js [--runs 5] [--seconds 1] [--types 1000] [--compile-runs 3] [--policies policies]
 *                                 [--json] [--write-docs]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decide, type CheckRequest, type CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet, loadPolicyDirectory } from '../../src/policy/index.js';
import { generateLargePolicySet, writePolicyFiles, type PolicyFile } from '../generate/large-policy-set.js';
import { writeDocs } from '../report.js';
import { ROOT } from '../servers.js';
import { median, parseFlags, fmtInt, fmtNum } from '../util.js';
import { exampleRequests, largeRequests } from '../workloads.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** A small document policy, used only if policies/ is missing or empty (written by another team). */
const FALLBACK_DOCUMENT_POLICY: PolicyFile = {
  path: 'document.yaml',
  text: `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
variables:
  classification: >-
    has(resource.attributes.classification) ? resource.attributes.classification : 1
  clearance: >-
    has(subject.attributes.clearance) ? subject.attributes.clearance : 0
derivedRoles:
  - name: owner
    parentRoles: [employee]
    when: has(resource.attributes.owner) && resource.attributes.owner == subject.id
  - name: listed_viewer
    when: has(resource.attributes.viewers) && subject.id in resource.attributes.viewers
rules:
  - name: deny-above-clearance
    actions: ["*"]
    effect: deny
    when: variables.classification > variables.clearance
  - name: deny-delete-on-legal-hold
    actions: [delete]
    effect: deny
    when: has(resource.attributes.legalHold) && resource.attributes.legalHold
  - name: owners-manage
    actions: [read, edit, share, publish, delete]
    effect: allow
    roles: [owner]
  - name: listed-viewers-read
    actions: [read]
    effect: allow
    roles: [listed_viewer]
  - name: department-reads-published
    actions: [read]
    effect: allow
    roles: [employee]
    when: >-
      has(resource.attributes.status) && resource.attributes.status == "published" &&
      has(subject.attributes.department) && subject.attributes.department == resource.attributes.department
  - name: admins-manage
    actions: ["*"]
    effect: allow
    roles: [admin]
  - name: auditors-read
    actions: [read, history]
    effect: allow
    roles: [auditor]
`,
};

async function loadExampleSet(dir: string): Promise<{ set: CompiledPolicySet; source: string }> {
  try {
    const set = await loadPolicyDirectory(dir);
    return { set, source: dir };
  } catch (err) {
    process.stderr.write(`note: cannot load ${dir} (${(err as Error).message.split('\n')[0]}); using the inline fallback document policy\n`);
    return { set: compilePolicySet([FALLBACK_DOCUMENT_POLICY]), source: 'inline fallback' };
  }
}

interface Case {
  readonly name: string;
  readonly set: CompiledPolicySet;
  readonly requests: readonly CheckRequest[];
}

const NOW = new Date('2026-11-28T12:00:00Z');
const OPTIONS = { now: NOW };
let sink = 0;

/** Runs `iterations` decisions round-robin over the requests; returns elapsed ns. */
function timeDecisions(c: Case, iterations: number): number {
  const { set, requests } = c;
  const n = requests.length;
  let allowed = 0;
  const start = process.hrtime.bigint();
  for (let k = 0, i = 0; k < iterations; k++) {
    if (decide(set, requests[i]!, OPTIONS).effect === 'ALLOW') allowed++;
    if (++i === n) i = 0;
  }
  const ns = Number(process.hrtime.bigint() - start);
  sink += allowed;
  return ns;
}

/** Iterations that take about `seconds`, from a short calibration (also the warm-up). */
function calibrate(c: Case, seconds: number): number {
  let iterations = 1000;
  for (;;) {
    const ns = timeDecisions(c, iterations);
    if (ns > 200e6) return Math.max(1000, Math.round((iterations * seconds * 1e9) / ns));
    iterations *= 4;
  }
}

function outcomeMix(c: Case): string {
  const counts = new Map<string, number>();
  for (const r of c.requests) {
    const d = decide(c.set, r, OPTIONS);
    counts.set(d.reason, (counts.get(d.reason) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${Math.round((100 * v) / c.requests.length)}%`)
    .join(', ');
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const runs = flags.int('runs', 5);
  const seconds = flags.num('seconds', 1);
  const types = flags.int('types', 1000);
  const compileRuns = flags.int('compile-runs', 3);
  const policiesDir = flags.str('policies', 'policies');

  const heap0 = heapUsed();
  const example = await loadExampleSet(policiesDir);
  const heapExample = heapUsed() - heap0;

  const big = generateLargePolicySet({ types });
  const shape = generateLargePolicySet({ types: 10 });
  const compileMs: number[] = [];
  for (let i = 0; i < compileRuns; i++) {
    const t = process.hrtime.bigint();
    compilePolicySet(big.files);
    compileMs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  // The same from disk (read + compile), as a server does at start and on reload.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-'));
  const diskMs: number[] = [];
  try {
    await writePolicyFiles(tmp, big.files);
    for (let i = 0; i < compileRuns; i++) {
      const t = process.hrtime.bigint();
      await loadPolicyDirectory(tmp);
      diskMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  const heap1 = heapUsed();
  const bigSet = compilePolicySet(big.files);
  const heapBig = heapUsed() - heap1;
  const shapeSet = compilePolicySet(shape.files);

  const cases: Case[] = [
    { name: `example set (${example.source})`, set: example.set, requests: exampleRequests() },
    { name: 'generated, 10 types (same shape)', set: shapeSet, requests: largeRequests(4096, { types: 10 }) },
    { name: `generated, ${types} types`, set: bigSet, requests: largeRequests(4096, { types }) },
  ];
  const ns: number[][] = cases.map(() => []);
  const iterations = cases.map((c) => calibrate(c, seconds));
  for (let r = 0; r < runs; r++) {
    // Rotate the order so a noisy neighbour hurts every case alike.
    for (let j = 0; j < cases.length; j++) {
      const i = (j + r) % cases.length;
      ns[i]!.push(timeDecisions(cases[i]!, iterations[i]!) / iterations[i]!);
    }
  }
  const med = ns.map(median);
  const heapTotal = heapUsed();

  const result = {
    runs,
    secondsPerRun: seconds,
    node: process.version,
    cases: cases.map((c, i) => ({
      name: c.name,
      ruleCount: c.set.ruleCount,
      resourceTypes: c.set.resourceTypes.length,
      requests: c.requests.length,
      nsPerDecision: med[i]!,
      decisionsPerSecond: 1e9 / med[i]!,
      minNs: Math.min(...ns[i]!),
      maxNs: Math.max(...ns[i]!),
      outcomes: outcomeMix(c),
    })),
    bigSet: {
      types,
      rules: bigSet.ruleCount,
      compileMs: median(compileMs),
      loadFromDiskMs: median(diskMs),
      heapMB: heapBig / 2 ** 20,
    },
    exampleHeapMB: heapExample / 2 ** 20,
    heapUsedMB: heapTotal / 2 ** 20,
    ratioBigOverExample: med[2]! / med[0]!,
    ratioBigOverSameShape: med[2]! / med[1]!,
  };
  if (flags.bool('json')) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `Engine benchmark: ${runs} runs of ~${seconds} s per case, medians (Node ${process.version}, ${os.cpus().length} CPUs)`,
    '',
    '| policy set | types | rules | ns/decision | decisions/s | spread (min–max ns) |',
    '|---|---:|---:|---:|---:|---|',
    ...result.cases.map((c) => `| ${c.name} | ${c.resourceTypes} | ${c.ruleCount} | ${fmtInt(c.nsPerDecision)} | ${fmtInt(c.decisionsPerSecond)} | ${fmtInt(c.minNs)}–${fmtInt(c.maxNs)} |`),
    '',
    ...result.cases.map((c) => `- ${c.name}: ${c.requests} requests; outcomes ${c.outcomes}`),
    '',
    `- ${types}-type set (${fmtInt(bigSet.ruleCount)} rules): compile ${fmtNum(result.bigSet.compileMs, 0)} ms, read + compile from disk ${fmtNum(result.bigSet.loadFromDiskMs, 0)} ms (medians of ${compileRuns}); heap held by the compiled set ${fmtNum(result.bigSet.heapMB, 1)} MB`,
    `- example set heap ${fmtNum(result.exampleHeapMB, 2)} MB; heap used now (all sets live, after GC) ${fmtNum(result.heapUsedMB, 1)} MB`,
    `- per-check ratio ${types} types / example set: ${fmtNum(result.ratioBigOverExample, 2)} (target ≤ 1.5); ${types} types / 10 types of the same shape: ${fmtNum(result.ratioBigOverSameShape, 2)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (flags.bool('write-docs')) {
    const command = `node dist/bench/engine/run.js ${process.argv.slice(2).filter((a) => a !== '--write-docs').join(' ')}`.trim();
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    await writeDocs(path.join(ROOT, 'docs/performance.md'), `Measured ${when} UTC. Command: \`${command}\`\n\n${lines.join('\n')}`, 'bench-engine');
    process.stderr.write('bench-engine: updated docs/performance.md\n');
  }
  if (sink < 0) process.stdout.write('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-engine: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
