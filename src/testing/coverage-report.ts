import type { BranchRecord, CoverageRecorder, SiteRecord } from './coverage.js';

/** Covered and total, and the percentage (100 when there is nothing to cover). */
export interface Ratio {
  readonly covered: number;
  readonly total: number;
  readonly percent: number;
}

export interface PolicyCoverage {
  readonly policy: string;
  readonly file: string;
  readonly rules: readonly { name: string; line: number; column: number; applied: number; notApplied: number; conditionTrue: number; conditionFalse: number; errors: number }[];
  readonly derivedRoles: readonly { name: string; line: number; column: number; true: number; false: number; errors: number }[];
  readonly variables: readonly { name: string; line: number; column: number; true: number; false: number; other: number; errors: number }[];
  readonly branches: readonly { in: string; line: number; column: number; text: string; true: number; false: number; errors: number }[];
  readonly summary: Summary;
}

export interface Summary {
  readonly rules: Ratio;
  readonly derivedRoles: Ratio;
  readonly variables: Ratio;
  /** Outcomes (true, false) of every branch point. */
  readonly branches: Ratio;
}

export interface CoverageReport {
  readonly policies: readonly PolicyCoverage[];
  readonly summary: Summary;
}

/** What is not covered, one line each: `file:line:column: what`. */
export interface Uncovered {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

function ratio(covered: number, total: number): Ratio {
  return { covered, total, percent: total === 0 ? 100 : Math.floor((covered / total) * 10000) / 100 };
}

function add(a: Ratio, b: Ratio): Ratio {
  return ratio(a.covered + b.covered, a.total + b.total);
}

const byPosition = (a: { line: number; column?: number }, b: { line: number; column?: number }) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0);

function label(site: SiteRecord['site']): string {
  return site.kind === 'rule' ? `rule "${site.name}"` : site.kind === 'derivedRole' ? `derived role "${site.name}"` : `variables.${site.name}`;
}

export function coverageReport(recorder: CoverageRecorder): CoverageReport {
  const byPolicy = new Map<string, SiteRecord[]>();
  for (const r of recorder.sites.values()) {
    const list = byPolicy.get(r.site.policy) ?? [];
    list.push(r);
    byPolicy.set(r.site.policy, list);
  }
  const policies: PolicyCoverage[] = [];
  for (const [policy, records] of [...byPolicy].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const of = (kind: SiteRecord['site']['kind']) => records.filter((r) => r.site.kind === kind).sort((a, b) => byPosition(a.site.position, b.site.position));
    const rules = of('rule').map((r) => ({ name: r.site.name, line: r.site.position.line, column: r.site.position.column, applied: r.applied, notApplied: r.notApplied, conditionTrue: r.trueCount, conditionFalse: r.falseCount, errors: r.errorCount }));
    const derivedRoles = of('derivedRole').map((r) => ({ name: r.site.name, line: r.site.position.line, column: r.site.position.column, true: r.trueCount, false: r.falseCount, errors: r.errorCount }));
    const variables = of('variable').map((r) => ({ name: r.site.name, line: r.site.position.line, column: r.site.position.column, true: r.trueCount, false: r.falseCount, other: r.otherCount, errors: r.errorCount }));
    const branches = records
      .flatMap((r) => r.branches.map((b: BranchRecord) => ({ in: label(r.site), line: b.line, column: b.column, text: b.text, true: b.trueCount, false: b.falseCount, errors: b.errorCount })))
      .sort(byPosition);
    const summary: Summary = {
      rules: ratio(rules.filter((r) => r.applied > 0).length, rules.length),
      derivedRoles: ratio(derivedRoles.filter((d) => d.true > 0 && d.false > 0).length, derivedRoles.length),
      variables: ratio(variables.filter((v) => (v.true > 0 && v.false > 0) || v.other > 0).length, variables.length),
      branches: ratio(branches.reduce((n, b) => n + (b.true > 0 ? 1 : 0) + (b.false > 0 ? 1 : 0), 0), branches.length * 2),
    };
    policies.push({ policy, file: records[0]!.site.file, rules, derivedRoles, variables, branches, summary });
  }
  const zero = ratio(0, 0);
  const summary = policies.reduce<Summary>(
    (s, p) => ({ rules: add(s.rules, p.summary.rules), derivedRoles: add(s.derivedRoles, p.summary.derivedRoles), variables: add(s.variables, p.summary.variables), branches: add(s.branches, p.summary.branches) }),
    { rules: zero, derivedRoles: zero, variables: zero, branches: zero },
  );
  return { policies, summary };
}

export function uncovered(report: CoverageReport): Uncovered[] {
  const out: Uncovered[] = [];
  for (const p of report.policies) {
    const at = (line: number, column: number, message: string) => out.push({ file: p.file, line, column, message });
    for (const r of p.rules) if (r.applied === 0) at(r.line, r.column, `rule "${r.name}" never applied${r.notApplied === 0 ? ' (never considered: no test has its resource type and action)' : ''}`);
    for (const d of p.derivedRoles) {
      if (d.true === 0 || d.false === 0) at(d.line, d.column, `derived role "${d.name}" condition never ${d.true === 0 && d.false === 0 ? 'evaluated' : d.true === 0 ? 'true' : 'false'}`);
    }
    for (const v of p.variables) {
      if (v.other > 0 || (v.true > 0 && v.false > 0)) continue;
      at(v.line, v.column, `variables.${v.name} never ${v.true === 0 && v.false === 0 ? 'evaluated' : v.true === 0 ? 'true' : 'false'}`);
    }
    for (const b of p.branches) {
      if (b.true > 0 && b.false > 0) continue;
      at(b.line, b.column, `${b.in}: branch \`${b.text}\` never ${b.true === 0 && b.false === 0 ? 'evaluated' : b.true === 0 ? 'true' : 'false'}`);
    }
  }
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}

function pct(r: Ratio): string {
  return `${r.percent.toFixed(r.percent % 1 === 0 ? 0 : 2)}% (${r.covered}/${r.total})`;
}

export function summaryLines(report: CoverageReport): string[] {
  const lines = ['coverage:'];
  const row = (name: string, s: Summary) => `  ${name.padEnd(32)} rules ${pct(s.rules).padEnd(14)} derived roles ${pct(s.derivedRoles).padEnd(14)} variables ${pct(s.variables).padEnd(14)} branches ${pct(s.branches)}`;
  for (const p of report.policies) lines.push(row(p.policy, p.summary));
  lines.push(row('all policies', report.summary));
  return lines;
}

/**
 * LCOV tracefile (geninfo format): one record per policy file, `root` prefixed to its path so
 * tools find the file. Rules, derived roles and variables are functions (FN/FNDA: rules count the
 * times they applied, the others the times their condition was true or, for non-bool variables,
 * evaluated); each branch point is a block with two branches, true (0) and false (1); DA lines are
 * rules, hit when considered.
 */
export function lcov(report: CoverageReport, root: string): string {
  const byFile = new Map<string, PolicyCoverage[]>();
  for (const p of report.policies) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p]);
  const out: string[] = [];
  for (const [file, docs] of byFile) {
    out.push('TN:', `SF:${root ? `${root.replace(/\/+$/, '')}/${file}` : file}`);
    const fns: { line: number; name: string; hits: number }[] = [];
    const lines = new Map<number, number>();
    const blocks: { line: number; t: number; f: number; seen: boolean }[] = [];
    for (const p of docs) {
      // Names are unique per document; a file of several documents prefixes them with the policy id.
      const q = docs.length > 1 ? `${p.policy}:` : '';
      for (const r of p.rules) {
        fns.push({ line: r.line, name: `${q}rule:${r.name}`, hits: r.applied });
        lines.set(r.line, (lines.get(r.line) ?? 0) + r.applied + r.notApplied + r.errors);
      }
      for (const d of p.derivedRoles) fns.push({ line: d.line, name: `${q}derivedRole:${d.name}`, hits: d.true });
      for (const v of p.variables) fns.push({ line: v.line, name: `${q}variable:${v.name}`, hits: v.true + v.other });
      for (const b of p.branches) blocks.push({ line: b.line, t: b.true, f: b.false, seen: b.true + b.false + b.errors > 0 });
    }
    for (const f of fns) out.push(`FN:${f.line},${f.name}`);
    for (const f of fns) out.push(`FNDA:${f.hits},${f.name}`);
    out.push(`FNF:${fns.length}`, `FNH:${fns.filter((f) => f.hits > 0).length}`);
    blocks.forEach((b, i) => {
      out.push(`BRDA:${b.line},${i},0,${b.seen ? b.t : '-'}`, `BRDA:${b.line},${i},1,${b.seen ? b.f : '-'}`);
    });
    out.push(`BRF:${blocks.length * 2}`, `BRH:${blocks.reduce((n, b) => n + (b.t > 0 ? 1 : 0) + (b.f > 0 ? 1 : 0), 0)}`);
    for (const [line, hits] of [...lines].sort((a, b) => a[0] - b[0])) out.push(`DA:${line},${hits}`);
    out.push(`LF:${lines.size}`, `LH:${[...lines.values()].filter((h) => h > 0).length}`, 'end_of_record');
  }
  return `${out.join('\n')}\n`;
}
