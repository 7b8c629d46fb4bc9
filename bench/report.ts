/** Rendering of benchmark results: the markdown table of medians and the docs/performance.md block. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LoadResult } from './grpc/driver.js';
import type { MethodName } from './grpc/protocols.js';
import { fmtInt, fmtMs, fmtNum, median } from './util.js';
import type { WorkloadName } from './workloads.js';

export interface Scenario {
  readonly id: string;
  readonly label: string;
  readonly workload: WorkloadName;
  readonly method: MethodName;
  readonly inFlight: number;
  /** Only servers speaking this protocol run it; without, every server whose protocol is not dedicated to other scenarios. */
  readonly protocol?: string;
}

export interface Row {
  readonly scenario: Scenario;
  readonly server: { readonly name: string; readonly baseline?: boolean };
  readonly runs: LoadResult[];
}

function medianOf(rows: readonly LoadResult[], f: (r: LoadResult) => number | undefined): number {
  return median(rows.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
}

function labelFor(scenario: Scenario, types: number): string {
  return scenario.label.replace('1,000 types', `${fmtInt(types)} types`);
}

/** The markdown table of medians, baseline server first within each scenario. */
export function renderTable(rows: readonly Row[], types: number): string {
  const out = [
    '| scenario | server | checks/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/check | server cores | RSS MB | load-gen cores | other procs cores | checks/s vs empty |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const group = rows.filter((r) => r.scenario === scenario);
    const base = group.find((r) => r.server.baseline);
    const baseRate = base ? medianOf(base.runs, (r) => r.checksPerSecond) : Number.NaN;
    for (const row of group) {
      const rate = medianOf(row.runs, (r) => r.checksPerSecond);
      const ratio = row === base ? '1.00' : fmtNum(rate / baseRate, 2);
      out.push(
        `| ${labelFor(scenario, types)} | ${row.server.name} | ${fmtInt(rate)} | ${fmtMs(medianOf(row.runs, (r) => r.latencyMs.p50))} | ${fmtMs(medianOf(row.runs, (r) => r.latencyMs.p99))} | ${fmtMs(
          medianOf(row.runs, (r) => r.latencyMs.p999),
        )} | ${fmtNum(medianOf(row.runs, (r) => r.server?.cpuMicrosPerCheck), 1)} | ${fmtNum(medianOf(row.runs, (r) => r.server?.cores), 2)} | ${fmtNum(
          medianOf(row.runs, (r) => r.server?.peakRssMB),
          0,
        )} | ${fmtNum(medianOf(row.runs, (r) => r.generatorCores.reduce((s, c) => s + c, 0)), 2)} | ${fmtNum(Math.max(0, medianOf(row.runs, (r) => r.machine.otherCores)), 2)} | ${ratio} |`,
      );
    }
  }
  return [out.join('\n'), renderCerbosRatios(rows, types), renderAuthzenRatios(rows)].filter(Boolean).join('\n\n');
}

/**
 * When Cerbos ran too (bench/cerbos): Verdict ÷ Cerbos per scenario, from the same medians. A
 * Verdict server with decision events on (events, audit or required in its name: verdict-events,
 * verdict-required) is compared with `cerbos-audit` when that ran, every other one with `cerbos`.
 * Empty when no Cerbos or no Verdict server ran.
 */
export function renderCerbosRatios(rows: readonly Row[], types: number): string {
  const out = [
    'Verdict ÷ Cerbos, same scenario and run (medians). checks/s above 1: Verdict answers more; server CPU per check, latency and RSS below 1: Verdict needs less.',
    '',
    '| scenario | server | vs | checks/s | server CPU µs/check | p50 | p99 | RSS |',
    '|---|---|---|---:|---:|---:|---:|---:|',
  ];
  const ratio = (a: Row, b: Row, f: (r: LoadResult) => number | undefined) => fmtNum(medianOf(a.runs, f) / medianOf(b.runs, f), 2);
  for (const scenario of [...new Set(rows.map((r) => r.scenario))]) {
    const group = rows.filter((r) => r.scenario === scenario);
    // Over AuthZEN, Cerbos answers on its own AuthZEN endpoints (cerbos-authzen).
    const plain = group.find((r) => r.server.name === 'cerbos' || r.server.name === 'cerbos-authzen');
    const audit = group.find((r) => r.server.name === 'cerbos-audit');
    for (const row of group.filter((r) => r.server.name.startsWith('verdict'))) {
      const ref = /events|audit|required/.test(row.server.name) ? (audit ?? plain) : (plain ?? audit);
      if (!ref) continue;
      out.push(
        `| ${labelFor(scenario, types)} | ${row.server.name} | ${ref.server.name} | ${ratio(row, ref, (r) => r.checksPerSecond)} | ${ratio(row, ref, (r) => r.server?.cpuMicrosPerCheck)} | ${ratio(row, ref, (r) => r.latencyMs.p50)} | ${ratio(
          row,
          ref,
          (r) => r.latencyMs.p99,
        )} | ${ratio(row, ref, (r) => r.server?.peakRssMB)} |`,
      );
    }
  }
  return out.length > 4 ? out.join('\n') : '';
}

const DOC_TEMPLATE = `# Performance

How fast Verdict decides, and what it costs, measured by the benchmark harness under \`bench/\`.
`;

/**
 * Replaces the text between \`<!-- NAME:begin -->\` and \`<!-- NAME:end -->\` in a markdown file
 * (docs/performance.md), appending the markers if absent and creating the file if needed, so every
 * other section of the file survives. \`make bench\` owns "bench", \`make bench-engine\` "bench-engine".
 */
export async function writeDocs(file: string, block: string, name = 'bench'): Promise<void> {
  const BEGIN = `<!-- ${name}:begin -->`;
  const END = `<!-- ${name}:end -->`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = DOC_TEMPLATE;
  }
  const b = text.indexOf(BEGIN);
  const e = text.indexOf(END);
  if (b < 0 || e < b) text = `${text.trimEnd()}\n\n${BEGIN}\n${END}\n`;
  const start = text.indexOf(BEGIN) + BEGIN.length;
  const end = text.indexOf(END);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${text.slice(0, start)}\n${block.trim()}\n${text.slice(end)}`);
}

/**
 * AuthZEN over HTTP ÷ gRPC, Verdict against itself: each AuthZEN scenario row (server
 * `<name>-authzen`) over the gRPC scenario with the same workload, method and calls in flight on
 * the server `<name>` (same process shape). Empty when either did not run.
 */
export function renderAuthzenRatios(rows: readonly Row[]): string {
  const out = [
    'Verdict over AuthZEN (HTTP/1.1, JSON) ÷ the same Verdict over gRPC, same run (medians): AuthZEN evaluation against `Check`, evaluations against `CheckBatch`.',
    '',
    '| AuthZEN scenario | server | vs gRPC scenario | server | checks/s | server CPU µs/check | p50 | p99 |',
    '|---|---|---|---|---:|---:|---:|---:|',
  ];
  const ratio = (a: Row, b: Row, f: (r: LoadResult) => number | undefined) => fmtNum(medianOf(a.runs, f) / medianOf(b.runs, f), 2);
  for (const row of rows.filter((r) => r.scenario.protocol === 'authzen.v1' && r.server.name.endsWith('-authzen') && r.server.name.startsWith('verdict'))) {
    const grpcName = row.server.name.slice(0, -'-authzen'.length);
    const ref = rows.find((r) => !r.scenario.protocol && r.scenario.workload === row.scenario.workload && r.scenario.method === row.scenario.method && r.scenario.inFlight === row.scenario.inFlight && r.server.name === grpcName);
    if (!ref) continue;
    out.push(
      `| ${row.scenario.label} | ${row.server.name} | ${ref.scenario.label} | ${ref.server.name} | ${ratio(row, ref, (r) => r.checksPerSecond)} | ${ratio(row, ref, (r) => r.server?.cpuMicrosPerCheck)} | ${ratio(row, ref, (r) => r.latencyMs.p50)} | ${ratio(row, ref, (r) => r.latencyMs.p99)} |`,
    );
  }
  return out.length > 4 ? out.join('\n') : '';
}
