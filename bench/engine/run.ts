/**
 * In-process engine benchmark (`make bench-engine`): decisions per second and ns per decision for
 * the example policy set, a generated 10-type set and generated 1,000- and 10,000-type sets of the same shape;
 * load (compile) time, heap held by each set, and the per-check ratio big/small. Each set is
 * measured alone in a fresh child process, as a server holds one set; several runs, medians.
 *
 *   node dist/bench/engine/run.js [--runs 5] [--seconds 1] [--types 1000] [--policies policies] [--json] [--write-docs]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { decide, type CheckRequest, type CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet, loadPolicyDirectory } from '../../src/policy/index.js';
import { generateLargePolicySet, writePolicyFiles, type PolicyFile } from '../generate/large-policy-set.js';
import { writeDocs } from '../report.js';
import { ROOT, median, parseFlags, fmtInt, fmtNum } from '../util.js';
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


type CaseName = 'example' | 'shape' | 'big' | 'huge';

interface Case {
  readonly set: CompiledPolicySet;
  readonly requests: readonly CheckRequest[];
}

/** What one child process measures for one policy set. */
interface CaseResult {
  readonly name: string;
  readonly source: string;
  readonly resourceTypes: number;
  readonly ruleCount: number;
  readonly requests: number;
  /** The first load in a fresh process (read + parse + compile), as at server start. */
  readonly coldLoadMs: number;
  /** The same again in the same process, as on a hot reload. */
  readonly warmLoadMs: number;
  /** Heap retained by the compiled set (after GC). */
  readonly heapMB: number;
  readonly heapUsedMB: number;
  readonly nsPerDecision: number;
  /**
   * 10,000-type case only: ns per decision with the 1,000-type case's requests (the same first
   * 1,000 types), i.e. what the size of the set alone costs a check.
   */
  readonly nsPerDecisionSameTypes?: number;
  /**
   * 10,000-type case only: the larger set against the 1,000-type set loaded in the same process,
   * the same requests timed in alternating blocks, median of the blocks' ratios. Both sets see the
   * same machine noise and the same compiled code, so this is what the size of the set costs a
   * check, without the noise of comparing two processes. `few`: requests over 10 types only, whose
   * rules stay in the CPU caches whatever the set's size (any difference there is the code's).
   */
  readonly paired?: { readonly sameTypes: number; readonly fewTypes: number };
  readonly outcomes: string;
}

const NOW = new Date('2026-11-28T12:00:00Z');
const OPTIONS = { now: NOW };
let sink = 0;

/** Runs `iterations` decisions round-robin over the requests; returns elapsed ns. */
function timeDecisions(c: Case, iterations: number): number {
  const { set, requests } = c;
  const n = requests.length;
  let allowed = 0;
  // CPU time of the process (every thread: GC helpers count), not wall time: on a shared machine
  // the time this process waits for a CPU is not the cost of a decision.
  const start = process.cpuUsage();
  for (let k = 0, i = 0; k < iterations; k++) {
    if (decide(set, requests[i]!, OPTIONS).effect === 'ALLOW') allowed++;
    if (++i === n) i = 0;
  }
  const used = process.cpuUsage(start);
  const ns = (used.user + used.system) * 1000;
  sink += allowed;
  return ns;
}

/**
 * The requests as a server receives them: decoded from the wire, so every string is flat. (Built
 * with template literals, they are rope strings, which V8 compares the slow way in every Map lookup
 * of a type or action; no request off the wire is one.)
 */
function received(requests: readonly CheckRequest[]): CheckRequest[] {
  return JSON.parse(JSON.stringify(requests)) as CheckRequest[];
}

/** Median of the ratios `a`/`b` over alternating blocks of about `seconds` / 10 each (see CaseResult.paired). */
function pairedRatio(a: CompiledPolicySet, b: CompiledPolicySet, requests: readonly CheckRequest[], seconds: number): number {
  const ca: Case = { set: a, requests };
  const cb: Case = { set: b, requests };
  const n = Math.max(1000, Math.round(calibrate(ca, seconds / 10) / 2 + calibrate(cb, seconds / 10) / 2));
  const ratios: number[] = [];
  for (let k = 0; k < 11; k++) {
    // Alternate which set goes first, so a slowdown that lasts a block hurts both alike.
    const first = k % 2 === 0 ? timeDecisions(ca, n) : timeDecisions(cb, n);
    const second = k % 2 === 0 ? timeDecisions(cb, n) : timeDecisions(ca, n);
    ratios.push(k % 2 === 0 ? first / second : second / first);
  }
  return median(ratios);
}

/** Iterations that take about `seconds`, from a short calibration (also the warm-up). */
function calibrate(c: Case, seconds: number): number {
  let iterations = 1000;
  for (;;) {
    const ns = timeDecisions(c, iterations);
    if (ns > 300e6) return Math.max(1000, Math.round((iterations * seconds * 1e9) / ns));
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

const msSince = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

/**
 * Child process: one policy set alone in a fresh V8, as in a server (so one set's JIT feedback and
 * cache footprint do not colour another's). Loads it from disk (timed cold, then warm), measures
 * the heap it holds, then decisions.
 */
async function child(name: CaseName, seconds: number, types: number, policiesDir: string): Promise<CaseResult> {
  let dir = policiesDir;
  let tmp: string | undefined;
  if (name !== 'example') {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-engine-'));
    dir = await writePolicyFiles(tmp, generateLargePolicySet({ types: typesOf(name, types) }).files);
  }
  try {
    const heap0 = heapUsed();
    let t = process.hrtime.bigint();
    let set: CompiledPolicySet;
    let source = dir;
    try {
      set = await loadPolicyDirectory(dir);
    } catch (err) {
      if (name !== 'example') throw err;
      process.stderr.write(`note: cannot load ${dir} (${(err as Error).message.split('\n')[0]}); using the inline fallback document policy\n`);
      set = compilePolicySet([FALLBACK_DOCUMENT_POLICY]);
      source = 'inline fallback';
    }
    const coldLoadMs = msSince(t);
    const heapMB = (heapUsed() - heap0) / 2 ** 20;
    const requests = received(name === 'example' ? exampleRequests() : largeRequests(4096, { types: typesOf(name, types) }));
    const c: Case = { set, requests };
    const iterations = calibrate(c, seconds);
    const nsPerDecision = timeDecisions(c, iterations) / iterations;
    let nsPerDecisionSameTypes: number | undefined;
    let paired: CaseResult['paired'];
    if (name === 'huge') {
      const same: Case = { set, requests: received(largeRequests(4096, { types })) };
      const n = calibrate(same, seconds);
      nsPerDecisionSameTypes = timeDecisions(same, n) / n;
      const smallDir = await mkdtemp(path.join(os.tmpdir(), 'verdict-bench-engine-'));
      try {
        const small = await loadPolicyDirectory(await writePolicyFiles(smallDir, generateLargePolicySet({ types }).files));
        paired = {
          sameTypes: pairedRatio(set, small, same.requests, seconds),
          fewTypes: pairedRatio(set, small, received(largeRequests(4096, { types: 10 })), seconds),
        };
      } finally {
        await rm(smallDir, { recursive: true, force: true });
      }
    }
    t = process.hrtime.bigint();
    if (source === dir) await loadPolicyDirectory(dir);
    const warmLoadMs = source === dir ? msSince(t) : Number.NaN;
    return {
      name: name === 'example' ? `example set (${source === dir ? path.relative(process.cwd(), dir) || dir : source})` : name === 'shape' ? 'generated, 10 types (same shape)' : `generated, ${fmtInt(typesOf(name, types))} types`,
      source,
      resourceTypes: set.resourceTypes.length,
      ruleCount: set.ruleCount,
      requests: requests.length,
      coldLoadMs,
      warmLoadMs,
      heapMB,
      heapUsedMB: heapUsed() / 2 ** 20,
      nsPerDecision,
      nsPerDecisionSameTypes,
      paired,
      outcomes: outcomeMix(c),
    };
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** Types in a generated case: "big" is --types, "huge" ten times that. */
function typesOf(name: CaseName, types: number): number {
  return name === 'big' ? types : name === 'huge' ? types * 10 : 10;
}

function runChild(name: CaseName, seconds: number, types: number, policiesDir: string): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', name, '--seconds', String(seconds), '--types', String(types), '--policies', policiesDir],
      { maxBuffer: 16 * 2 ** 20 },
      (err, stdout, stderr) => {
        if (stderr) process.stderr.write(stderr);
        if (err) return reject(new Error(`engine bench child "${name}" failed: ${err.message}`));
        resolve(JSON.parse(stdout) as CaseResult);
      },
    );
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), ['json', 'write-docs', 'no-huge']);
  const runs = flags.int('runs', 5);
  const seconds = flags.num('seconds', 1);
  const types = flags.int('types', 1000);
  const policiesDir = flags.str('policies', 'policies');
  const childCase = flags.optStr('child') as CaseName | undefined;
  if (childCase) {
    process.stdout.write(JSON.stringify(await child(childCase, seconds, types, policiesDir)));
    if (sink < 0) process.stdout.write(' ');
    return;
  }

  const names: CaseName[] = flags.bool('no-huge') ? ['example', 'shape', 'big'] : ['example', 'shape', 'big', 'huge'];
  const byCase = new Map<CaseName, CaseResult[]>(names.map((n) => [n, []]));
  for (let r = 0; r < runs; r++) {
    // Rotate the order so a noisy neighbour hurts every case alike.
    for (let j = 0; j < names.length; j++) {
      const name = names[(j + r) % names.length]!;
      const result = await runChild(name, seconds, types, policiesDir);
      byCase.get(name)!.push(result);
      process.stderr.write(`bench-engine: run ${r + 1}/${runs} ${result.name}: ${fmtInt(result.nsPerDecision)} ns/decision, load ${fmtInt(result.coldLoadMs)} ms cold\n`);
    }
  }
  const summary = names.map((n) => {
    const rs = byCase.get(n)!;
    const m = (f: (r: CaseResult) => number) => median(rs.map(f));
    return {
      ...rs[0]!,
      nsPerDecision: m((r) => r.nsPerDecision),
      nsPerDecisionSameTypes: rs[0]!.nsPerDecisionSameTypes === undefined ? undefined : m((r) => r.nsPerDecisionSameTypes!),
      paired: rs[0]!.paired === undefined ? undefined : { sameTypes: m((r) => r.paired!.sameTypes), fewTypes: m((r) => r.paired!.fewTypes) },
      minNs: Math.min(...rs.map((r) => r.nsPerDecision)),
      maxNs: Math.max(...rs.map((r) => r.nsPerDecision)),
      coldLoadMs: m((r) => r.coldLoadMs),
      warmLoadMs: m((r) => r.warmLoadMs),
      heapMB: m((r) => r.heapMB),
      heapUsedMB: m((r) => r.heapUsedMB),
    };
  });
  const [ex, shape, big] = summary as [(typeof summary)[number], (typeof summary)[number], (typeof summary)[number]];
  const huge = summary[3];
  const result = {
    runs,
    secondsPerRun: seconds,
    node: process.version,
    cases: summary,
    ratioBigOverExample: big.nsPerDecision / ex.nsPerDecision,
    ratioBigOverSameShape: big.nsPerDecision / shape.nsPerDecision,
  };
  if (flags.bool('json')) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [
    `${runs} runs; each run measures every set in its own fresh process for ~${seconds} s after a warm-up; ns per decision is CPU time of the process (user + system, all threads), so other load on the machine does not count. Medians; Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}.`,
    '',
    '| policy set | types | rules | ns/decision | decisions/s | spread (min–max ns) | load, cold / warm | heap held by the set |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
    ...summary.map(
      (c) =>
        `| ${c.name} | ${fmtInt(c.resourceTypes)} | ${fmtInt(c.ruleCount)} | ${fmtInt(c.nsPerDecision)} | ${fmtInt(1e9 / c.nsPerDecision)} | ${fmtInt(c.minNs)}–${fmtInt(c.maxNs)} | ${fmtInt(c.coldLoadMs)} / ${fmtInt(c.warmLoadMs)} ms | ${fmtNum(c.heapMB, 1)} MB |`,
    ),
    '',
    ...summary.map((c) => `- ${c.name}: ${c.requests} requests; outcomes ${c.outcomes}.`),
    `- Per-check ratio, ${fmtInt(types)} types / example set: **${fmtNum(result.ratioBigOverExample, 2)}** (target ≤ 1.5); ${fmtInt(types)} types / 10 types of the same shape: **${fmtNum(result.ratioBigOverSameShape, 2)}**.`,
    ...(huge
      ? [
          `- ${fmtInt(types * 10)} against ${fmtInt(types)} types: per check, the same requests (over the same ${fmtInt(types)} types) against the larger set **${fmtNum(huge.nsPerDecisionSameTypes! / big.nsPerDecision, 2)}×** (${fmtInt(huge.nsPerDecisionSameTypes!)} ns; target within 10%: what the size of the set costs a check); requests spread over all ${fmtInt(types * 10)} types ${fmtNum(huge.nsPerDecision / big.nsPerDecision, 2)}× (10× as many types' rules and indexes touched, which no longer stay in the CPU caches); cold load **${fmtNum(huge.coldLoadMs / big.coldLoadMs, 1)}×** (target ≤ 10×), heap held ${fmtNum(huge.heapMB / big.heapMB, 1)}×.`,
          `- The same, both sets in one process, the same requests timed in alternating blocks (median of the blocks' ratios; both see the same machine noise and run the same compiled code): requests over the same ${fmtInt(types)} types **${fmtNum(huge.paired!.sameTypes, 2)}×**; requests over 10 types, whose rules stay in the CPU caches, **${fmtNum(huge.paired!.fewTypes, 2)}×** (what is left at ${fmtInt(types)} types is memory: the larger set's hash tables and objects, spread over a 10× larger heap, miss the CPU caches more often).`,
        ]
      : []),
    `- Load = read the directory, parse, type-check and compile every expression, index (\`loadPolicyDirectory\`): cold is the first load in a fresh process (server start), warm the second (a hot reload). Heap used by the whole ${fmtInt(types)}-type process after GC: ${fmtNum(big.heapUsedMB, 0)} MB.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (flags.bool('write-docs')) {
    const command = `node dist/bench/engine/run.js ${process.argv.slice(2).filter((a) => a !== '--write-docs').join(' ')}`.trim();
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    await writeDocs(path.join(ROOT, 'docs/performance.md'), `Measured ${when} UTC. Command: \`${command}\`\n\n${lines.join('\n')}`, 'bench-engine');
    process.stderr.write('bench-engine: updated docs/performance.md\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-engine: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
