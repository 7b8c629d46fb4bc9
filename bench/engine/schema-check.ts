/**
 * Per-check cost of run-time schema checking (mode warn) on the example set: the same requests
 * decided by `policies/` with its declarations and without them (the `_declarations.yaml` left
 * out), alternating rounds in one process; medians of ns/decision and their ratio.
 *
 *   node dist/bench/engine/schema-check.js [--rounds 7] [--seconds 0.5]
 */
import { decide, type CheckRequest, type CompiledPolicySet } from '../../src/engine/index.js';
import { compilePolicySet, readPolicySources } from '../../src/policy/index.js';
import { median, parseFlags, fmtInt, fmtNum } from '../util.js';
import { exampleRequests } from '../workloads.js';

const OPTIONS = { now: new Date('2026-11-28T12:00:00Z') };

function nsPerDecision(set: CompiledPolicySet, requests: readonly CheckRequest[], seconds: number): number {
  let n = 0;
  let allowed = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() - start < budget) {
    for (const r of requests) if (decide(set, r, OPTIONS).effect === 'ALLOW') allowed++;
    n += requests.length;
  }
  if (allowed < 0) process.stdout.write(' ');
  return Number(process.hrtime.bigint() - start) / n;
}

const flags = parseFlags(process.argv.slice(2), []);
const rounds = flags.int('rounds', 7);
const seconds = flags.num('seconds', 0.5);
const files = await readPolicySources('policies');
const declared = compilePolicySet(files);
const plain = compilePolicySet(files.filter((f) => !f.path.startsWith('_declarations')));
if (!declared.declarations || plain.declarations) throw new Error('policies/ should have _declarations.yaml');
const requests = exampleRequests();
nsPerDecision(declared, requests, seconds);
nsPerDecision(plain, requests, seconds);
const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < rounds; r++) {
  a.push(nsPerDecision(plain, requests, seconds));
  b.push(nsPerDecision(declared, requests, seconds));
}
process.stdout.write(`example set, ${requests.length} requests, median of ${rounds}: without declarations ${fmtInt(median(a))} ns/decision, with schemas (mode ${declared.declarations.mode}) ${fmtInt(median(b))} ns/decision: ${fmtNum(median(b) / median(a), 2)}×\n`);
