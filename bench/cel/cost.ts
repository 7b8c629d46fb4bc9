/**
 * Calibration of the CEL cost model (src/cel/cost-model.ts): for conditions of every expensive
 * shape (loops, membership, string building, regular expressions, deep comparisons, ...), run over
 * the largest request the default limits allow, how much CPU time one cost unit stands for. The
 * model is right when no shape is much above the others: the decision budget (limits.maxDecisionCost)
 * times the worst ns/unit is the most CPU a decision can take.
 *
 *   node dist/bench/cel/cost.js [--reps 5] [--json]
 */
import { decideMetered, type CheckRequest } from '../../src/engine/index.js';
import { DEFAULT_REQUEST_LIMITS } from '../../src/engine/limits.js';
import { compilePolicySet } from '../../src/policy/index.js';
import { fmtInt, fmtNum, median, parseFlags } from '../util.js';

const limits = DEFAULT_REQUEST_LIMITS;
const N = limits.maxAttributeItems;

/** A list attribute as large as the limits allow: N strings within maxAttributeBytes. */
function names(prefix: string, n = N): string[] {
  const each = Math.floor(limits.maxAttributeBytes / n) - 2;
  const list = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(Math.max(1, each - prefix.length), '0')}`.slice(-each));
  // Flat strings, as decoded requests hold (template strings are V8 cons strings, slower to compare).
  return JSON.parse(JSON.stringify(list)) as string[];
}

interface Shape {
  readonly name: string;
  readonly when: string;
  readonly subject?: Record<string, unknown>;
  readonly resource?: Record<string, unknown>;
}

const L = names('u');
const G = names('g');
// 30 lists of 32 items (990 items with the lists), each equal to the target up to its last item
const nested = JSON.parse(JSON.stringify(Array.from({ length: 30 }, () => Array.from({ length: 32 }, (_, j) => `item-${j}`)))) as string[][];
const SHAPES: Shape[] = [
  { name: 'membership in a loop', when: 'resource.attributes.l.exists(v, v in subject.attributes.g)' },
  { name: 'nested loops, ==', when: 'resource.attributes.l.exists(x, subject.attributes.g.exists(y, x == y))' },
  { name: 'nested map() building strings', when: 'size(resource.attributes.l.map(x, resource.attributes.l.map(y, x + y))) > 0' },
  { name: 'filter + startsWith', when: 'size(resource.attributes.l.filter(x, x.startsWith("u9"))) > 1000000' },
  { name: 'matches() per element', when: 'resource.attributes.l.exists(t, t.matches("^[a-z]+[0-9]+z$"))' },
  { name: 'case mapping + concat', when: 'size(resource.attributes.l.map(x, x.lowerAscii() + x.upperAscii())) < 0' },
  { name: 'contains() per element', when: 'resource.attributes.l.exists(x, x.contains("zzz"))' },
  { name: 'size(string) per element', when: 'resource.attributes.l.exists(x, size(x) > 100)' },
  { name: 'split per element', when: 'resource.attributes.l.exists(x, x.split("").size() > 100)' },
  { name: 'list literal per element', when: 'size(resource.attributes.l.map(x, [x, x, x])) < 0' },
  { name: 'deep == per element', when: 'resource.attributes.n.exists(x, x == resource.attributes.t)', resource: { n: nested, t: [...nested[0]!.slice(0, 31), 'zz'] } },
  { name: 'time zone per element', when: 'resource.attributes.l.exists(x, now.getHours("Europe/Berlin") > 99)' },
  { name: 'inCidr per element', when: 'resource.attributes.l.exists(x, inCidr(x, "10.0.0.0/8"))' },
  { name: 'duration() per element', when: 'resource.attributes.l.exists(x, duration("1h") > duration("2h"))' },
  { name: 'timestamp() per element', when: 'resource.attributes.l.exists(x, timestamp("2026-01-01T00:00:00Z") > now)' },
  { name: 'string ops on a long string', when: 'resource.attributes.l.exists(x, resource.attributes.s.contains(x))', resource: { s: 'ab'.repeat(2048) } },
]; // each shape runs until its natural end; none relies on the meter stopping it

function policyFor(when: string) {
  return compilePolicySet(
    [{ path: 'p.yaml', text: `apiVersion: verdict/v1\nkind: ResourcePolicy\nresource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: '${when}'\n` }],
    { limits: { ...limits, maxConditionCost: 1e15 } },
  );
}

function main(): void {
  const flags = parseFlags(process.argv.slice(2));
  const reps = flags.int('reps', 5);
  const rows: { shape: string; units: number; cpuMs: number; nsPerUnit: number }[] = [];
  for (const shape of SHAPES) {
    const set = policyFor(shape.when);
    const request: CheckRequest = {
      subject: { type: 'user', id: 'u', roles: [], attributes: { g: G, ...shape.subject } },
      action: 'read',
      resource: { type: 'doc', id: 'd', attributes: { l: L, ...shape.resource } },
      context: {},
    };
    const cpu: number[] = [];
    const { cost: units } = decideMetered(set, request, { now: new Date(), costLimit: 1e15 });
    // Each sample runs about 2 million units' worth of decisions, so timer resolution does not matter.
    const inner = Math.max(1, Math.round(2e6 / units));
    for (let i = 0; i < reps + 1; i++) {
      const before = process.cpuUsage();
      for (let j = 0; j < inner; j++) {
        const { decision } = decideMetered(set, request, { now: new Date(), costLimit: 1e15 });
        if (decision.errors.length > 0) throw new Error(`${shape.name}: ${decision.errors[0]!.message}`);
      }
      const used = process.cpuUsage(before);
      if (i > 0) cpu.push((used.user + used.system) / 1000 / inner);
    }
    const cpuMs = median(cpu);
    rows.push({ shape: shape.name, units, cpuMs, nsPerUnit: (cpuMs * 1e6) / units });
  }
  if (flags.bool('json')) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log(`CEL cost calibration: largest request of the default limits, median of ${reps} runs (process CPU)`);
  console.log('| shape | cost units | CPU ms | ns per unit |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.shape} | ${fmtInt(r.units)} | ${fmtNum(r.cpuMs, 2)} | ${fmtNum(r.nsPerUnit, 1)} |`);
}

main();
