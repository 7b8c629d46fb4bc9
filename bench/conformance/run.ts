/**
 * cel-spec conformance ("simple" tests) through Verdict's CEL environment.
 *
 *   npm run build && npm run conformance [-- --min-pass-rate 85] [--no-doc] [--failures]
 *
 * Every test runs in a clone of celBaseEnvironment() with the test's declarations registered, the
 * way Verdict compiles a policy condition: parse, type-check (unless the test disables checking),
 * evaluate with the bindings, compare with the expected value or error. For comparison (to explain
 * differences with measurements of cel-js on its default settings) the same tests also run in a
 * plain `new Environment()`. Results go to stdout and to docs/conformance.md.
 *
 * Exit code: 0, unless --min-pass-rate X is given and the core pass rate is below X
 * (X in percent, e.g. 85; a value <= 1 is read as a fraction, e.g. 0.85).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Environment } from '@marcbachmann/cel-js';
import { tests as conformanceData } from '@bufbuild/cel-spec/testdata/conformance.js';
import { celBaseEnvironment, lintExpression } from '../../src/cel/environment.js';
import { categorize, CATEGORY_NOTES, type Category } from './categories.js';
import {
  celTypeString,
  mismatch,
  NeedsProto,
  normalizeTypeName,
  show,
  showExpected,
  toCel,
  typeNeedsProto,
  Unsupported,
  valueNeedsProto,
  type JsonValue,
} from './values.js';

// ---------------------------------------------------------------------------------------------
// Test data

interface SerializedTest {
  original: Record<string, unknown> & { name?: string; expr: string };
}
interface SerializedSuite {
  name: string;
  suites?: SerializedSuite[];
  tests?: SerializedTest[];
}

/** Files about protobuf messages, enums, wrappers and their conversions: skipped as a whole. */
const PROTOBUF_FILES = new Set(['proto2', 'proto3', 'proto2_ext', 'enums', 'wrappers', 'dynamic']);
/** Files for CEL extension libraries (cel-go `ext`, optional types, two-variable comprehensions). */
const EXTENSION_FILES = new Set(['bindings_ext', 'block_ext', 'encoders_ext', 'math_ext', 'string_ext', 'optionals', 'macros2']);

type Group = 'core' | 'extension' | 'protobuf';
function groupOf(file: string): Group {
  if (PROTOBUF_FILES.has(file)) return 'protobuf';
  if (EXTENSION_FILES.has(file)) return 'extension';
  return 'core';
}

/** Expression text that needs protobuf message types (TestAllTypes, enums, wrapper messages, Any...). */
const PROTO_EXPR = /\b(?:TestAllTypes|NestedTestAllTypes|GlobalEnum|NestedEnum|cel\.expr\.conformance)\b|\bgoogle\.protobuf\.(?!Duration\b|Timestamp\b)[A-Z]\w*/;

// ---------------------------------------------------------------------------------------------
// Running one test

export type Outcome = 'pass' | 'fail' | 'skip';
export type Stage = 'setup' | 'parse' | 'check' | 'eval' | 'compare';

export interface TestResult {
  readonly file: string;
  readonly section: string;
  readonly name: string;
  readonly expr: string;
  readonly outcome: Outcome;
  /** Why it failed or was skipped ('' for a pass). */
  readonly reason: string;
  /** Where a failure (or, for expected errors, the error) happened. */
  readonly stage?: Stage;
  /** cel-js error code, when an error decided the result. */
  readonly code?: string;
  /** For passes: an unchecked test expected an evaluation error and cel-js reported a parse error. */
  readonly earlyError?: boolean;
  /** For passes in the Verdict profile: Verdict's policy linter would refuse the expression. */
  readonly lint?: string;
}

interface CelErrorLike {
  name?: string;
  code?: string;
  summary?: string;
  message?: string;
}

function errorText(err: unknown): { code: string; text: string } {
  const e = (err ?? {}) as CelErrorLike;
  const text = (e.summary ?? (e.message ?? String(err)).split('\n')[0] ?? '').trim();
  return { code: e.code ?? e.name ?? 'error', text: `${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''}: ${text}` };
}

function checkedTypeOf(result: { valid: boolean; type?: string }): string {
  return normalizeTypeName(result.type ?? 'dyn');
}

interface Decl {
  name: string;
  ident?: { type?: Record<string, unknown> };
  function?: { overloads?: { overloadId?: string; params?: Record<string, unknown>[]; resultType?: Record<string, unknown>; isInstanceFunction?: boolean }[] };
}

function needsProto(o: SerializedTest['original']): string | undefined {
  const container = typeof o.container === 'string' ? o.container : '';
  if (/^(cel\.expr\.conformance|google\.protobuf)\b/.test(container)) return `container ${container}`;
  if (PROTO_EXPR.test(o.expr)) return 'expression uses protobuf message types';
  for (const d of (o.typeEnv as Decl[] | undefined) ?? []) {
    if (typeNeedsProto(d.ident?.type) || typeNeedsProto(d.function)) return `declaration of ${d.name} uses protobuf types`;
  }
  for (const b of Object.values((o.bindings as Record<string, unknown> | undefined) ?? {})) {
    if (valueNeedsProto(b)) return 'binding holds a protobuf message';
  }
  if (valueNeedsProto(o.value) || valueNeedsProto(o.typedResult)) return 'expected value is a protobuf message';
  if (typeNeedsProto(o.typedResult)) return 'expected type is a protobuf type';
  return undefined;
}

function declare(env: Environment, o: SerializedTest['original']): void {
  const declared = new Set<string>();
  for (const d of (o.typeEnv as Decl[] | undefined) ?? []) {
    if (d.ident) {
      env.registerVariable(d.name, d.ident.type ? celTypeString(d.ident.type) : 'dyn');
      declared.add(d.name);
    } else if (d.function) {
      for (const ov of d.function.overloads ?? []) {
        const params = (ov.params ?? []).map(celTypeString);
        const result = ov.resultType ? celTypeString(ov.resultType) : 'dyn';
        const signature = ov.isInstanceFunction
          ? `${params[0]}.${d.name}(${params.slice(1).join(', ')}): ${result}`
          : `${d.name}(${params.join(', ')}): ${result}`;
        env.registerFunction(signature, () => {
          throw new Error(`no implementation for ${ov.overloadId ?? d.name}`);
        });
      }
    }
  }
  // Bindings without a declaration (tests that run unchecked): the closest cel-js has is `dyn`.
  for (const name of Object.keys((o.bindings as Record<string, unknown> | undefined) ?? {})) {
    if (!declared.has(name)) env.registerVariable(name, 'dyn');
  }
}

function activation(o: SerializedTest['original']): Record<string, unknown> {
  const act: Record<string, unknown> = {};
  for (const [name, ev] of Object.entries((o.bindings as Record<string, { value?: JsonValue }> | undefined) ?? {})) {
    if (!ev.value) throw new Unsupported(`binding ${name} is an error or unknown value`);
    Object.defineProperty(act, name, { value: toCel(ev.value), enumerable: true });
  }
  return act;
}

interface Profile {
  readonly id: string;
  readonly label: string;
  readonly base: Environment;
  readonly lint: boolean;
}

function runTest(profile: Profile, file: string, section: string, t: SerializedTest): TestResult {
  const o = t.original;
  const name = o.name ?? o.expr;
  const base = { file, section, name, expr: o.expr };
  const skip = (reason: string): TestResult => ({ ...base, outcome: 'skip', reason });
  const fail = (stage: Stage, reason: string, code?: string): TestResult => ({ ...base, outcome: 'fail', stage, reason, ...(code ? { code } : {}) });

  if (groupOf(file) === 'protobuf') return skip('protobuf file');
  const proto = needsProto(o);
  if (proto) return skip(`needs protobuf: ${proto}`);
  if ('unknown' in o || 'anyUnknowns' in o) return skip('unknown-set results are not supported by cel-js');

  const typed = o.typedResult as { result?: JsonValue; deducedType?: Record<string, unknown> } | undefined;
  const expectError = 'evalError' in o || 'anyEvalErrors' in o;
  const expected: JsonValue | undefined = expectError ? undefined : ((o.value as JsonValue | undefined) ?? typed?.result ?? (typed ? undefined : { boolValue: true }));
  const expectedText = expectError ? `error (${JSON.stringify((o.evalError as { errors?: { message?: string }[] } | undefined)?.errors?.[0]?.message ?? '')})` : expected ? showExpected(expected) : '';

  let env: Environment;
  let act: Record<string, unknown>;
  let expectedType: string | undefined;
  try {
    env = profile.base.clone();
    declare(env, o);
    act = activation(o);
    expectedType = typed?.deducedType ? normalizeTypeName(celTypeString(typed.deducedType)) : undefined;
  } catch (err) {
    if (err instanceof NeedsProto) return skip(`needs protobuf: ${err.message}`);
    return fail('setup', `test environment cannot be expressed: ${(err as Error).message}`);
  }

  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(o.expr);
  } catch (err) {
    const e = errorText(err);
    // An unchecked test may fail anywhere; a checked one expects the expression to be valid.
    if (expectError && o.disableCheck) return { ...base, outcome: 'pass', reason: '', stage: 'parse', code: e.code, earlyError: true };
    return fail('parse', `${e.text} (expected ${expectError ? `evaluation ${expectedText}` : expectedText})`, e.code);
  }

  /** A pass, noting (Verdict profile only) when Verdict's policy linter would refuse the expression. */
  const passed = (): TestResult => {
    const issues = profile.lint ? lintExpression(parsed.ast) : [];
    return { ...base, outcome: 'pass', reason: '', ...(issues.length > 0 ? { lint: issues[0]!.message } : {}) };
  };

  if (!o.disableCheck || o.checkOnly || expectedType) {
    const checked = parsed.check();
    if (!checked.valid) {
      const e = errorText(checked.error);
      // The test expects a valid expression (that may fail at run time): a check error is a failure,
      // or an unimplemented function would count as an expected error.
      return fail('check', `${e.text} (expected ${expectedType ? `type ${expectedType}` : expectError ? `evaluation ${expectedText}` : expectedText})`, e.code);
    }
    if (expectedType && checkedTypeOf(checked) !== expectedType) {
      return fail('check', `type-checks as ${checkedTypeOf(checked)}, expected ${expectedType}`, 'deduced_type');
    }
    if (o.checkOnly) return passed();
  }

  let value: unknown;
  try {
    value = parsed(act);
    if (value instanceof Promise) return fail('eval', 'evaluation returned a Promise');
  } catch (err) {
    const e = errorText(err);
    if (expectError) return { ...base, outcome: 'pass', reason: '', stage: 'eval', code: e.code };
    return fail('eval', `${e.text} (expected ${expectedText})`, e.code);
  }
  if (expectError) return fail('compare', `expected ${expectedText}, got ${show(value)}`, 'no_error');
  if (!expected) return passed();
  try {
    const why = mismatch(expected, value);
    if (why) return fail('compare', why, 'wrong_value');
  } catch (err) {
    if (err instanceof NeedsProto) return skip(`needs protobuf: ${err.message}`);
    return fail('compare', `cannot compare: ${(err as Error).message}`);
  }
  return passed();
}

function* allTests(): Generator<{ file: string; section: string; test: SerializedTest }> {
  const root = conformanceData as unknown as SerializedSuite;
  for (const file of root.suites ?? []) {
    for (const section of file.suites ?? []) {
      for (const test of section.tests ?? []) yield { file: file.name, section: section.name, test };
    }
    for (const test of file.tests ?? []) yield { file: file.name, section: '', test };
  }
}

function runProfile(profile: Profile): TestResult[] {
  const results: TestResult[] = [];
  for (const { file, section, test } of allTests()) {
    let r: TestResult;
    try {
      r = runTest(profile, file, section, test);
    } catch (err) {
      // Anything escaping runTest is a harness or engine crash: count it, never abort the run.
      r = { file, section, name: test.original.name ?? test.original.expr, expr: test.original.expr, outcome: 'fail', stage: 'eval', reason: `crash: ${(err as Error).message}` };
    }
    results.push(r);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Tallies and report

interface Tally {
  total: number;
  passed: number;
  failed: number;
  skipped: number;
}
const emptyTally = (): Tally => ({ total: 0, passed: 0, failed: 0, skipped: 0 });
function add(t: Tally, r: TestResult): void {
  t.total++;
  if (r.outcome === 'pass') t.passed++;
  else if (r.outcome === 'fail') t.failed++;
  else t.skipped++;
}
function tally(results: readonly TestResult[], pick: (r: TestResult) => boolean = () => true): Tally {
  const t = emptyTally();
  for (const r of results) if (pick(r)) add(t, r);
  return t;
}
/** Pass rate over the tests that ran (skipped tests excluded), in percent. */
const rate = (t: Tally): number => (t.passed + t.failed === 0 ? 0 : (100 * t.passed) / (t.passed + t.failed));
const pct = (t: Tally): string => (t.passed + t.failed === 0 ? '-' : `${rate(t).toFixed(1)}%`);

function perFile(results: readonly TestResult[]): Map<string, Tally> {
  const m = new Map<string, Tally>();
  for (const r of results) {
    const t = m.get(r.file) ?? emptyTally();
    add(t, r);
    m.set(r.file, t);
  }
  return m;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function consoleTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => pad(c, widths[i]!, i > 1)).join('  ')).join('\n');
}

interface Args {
  minPassRate?: number;
  writeDoc: boolean;
  listFailures: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { writeDoc: true, listFailures: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--min-pass-rate') {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0 || v > 100) throw new Error('--min-pass-rate needs a number in percent (0-100), or a fraction <= 1');
      args.minPassRate = v <= 1 ? v * 100 : v;
    } else if (a.startsWith('--min-pass-rate=')) {
      return parseArgs([...argv.slice(0, i), '--min-pass-rate', a.slice('--min-pass-rate='.length), ...argv.slice(i + 1)]);
    } else if (a === '--no-doc') args.writeDoc = false;
    else if (a === '--failures') args.listFailures = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run conformance [-- --min-pass-rate X] [--no-doc] [--failures]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function packageVersion(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function celSpecRef(): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot, 'node_modules', '@bufbuild/cel-spec', 'package.json'), 'utf8')) as { upstreamCelSpecRef?: string }).upstreamCelSpecRef ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Plain text in a list item: no line breaks, no accidental code spans. */
function mdEscape(s: string): string {
  return s.replace(/\n/g, ' ').replace(/`/g, "'");
}

/** An inline code span (for list items, not tables), using a double-backtick fence when needed. */
function code(s: string, max = 90): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  const cut = flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
  return cut.includes('`') ? `\`\` ${cut} \`\`` : `\`${cut}\``;
}

interface Report {
  readonly verdict: TestResult[];
  readonly defaults: TestResult[];
  /** Verdict's environment with `enableOptionalTypes: true` (informational). */
  readonly optionals: TestResult[];
  readonly elapsedMs: number;
}

function groupTotals(results: readonly TestResult[]): Record<Group | 'all-run', Tally> {
  return {
    core: tally(results, (r) => groupOf(r.file) === 'core'),
    extension: tally(results, (r) => groupOf(r.file) === 'extension'),
    protobuf: tally(results, (r) => groupOf(r.file) === 'protobuf'),
    'all-run': tally(results, (r) => groupOf(r.file) !== 'protobuf'),
  };
}

function categoryTable(failures: readonly TestResult[]): Map<Category, TestResult[]> {
  const byCat = new Map<Category, TestResult[]>();
  for (const r of failures) {
    const c = categorize(r);
    const list = byCat.get(c) ?? [];
    list.push(r);
    byCat.set(c, list);
  }
  return new Map([...byCat].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0])));
}

function renderMarkdown(rep: Report): string {
  const { verdict, defaults, optionals } = rep;
  const g = groupTotals(verdict);
  const gd = groupTotals(defaults);
  const go = groupTotals(optionals);
  const files = perFile(verdict);
  const filesDefaults = perFile(defaults);
  const date = new Date().toISOString().slice(0, 10);
  const lines: string[] = [];
  const push = (...l: string[]): void => void lines.push(...l);

  push(
    '# CEL conformance of Verdict\'s CEL environment',
    '',
    '_Generated by `npm run conformance` (bench/conformance/run.ts); edit the runner, not this file._',
    '',
    `- Date: ${date}`,
    `- Engine: @marcbachmann/cel-js ${packageVersion('@marcbachmann/cel-js')}`,
    `- Test data: @bufbuild/cel-spec ${packageVersion('@bufbuild/cel-spec')} (cel-spec ${celSpecRef()}, the "simple" conformance tests)`,
    `- Node.js ${process.versions.node}`,
    '- Command: `npx tsc -p . && npm run conformance` (options: `-- --min-pass-rate X` fails the run below X% core pass rate; `--failures` lists every failure; `--no-doc` leaves this file alone)',
    `- Run time: ${(rep.elapsedMs / 1000).toFixed(1)} s for the three configurations below`,
    '',
    '## Totals',
    '',
    'Pass rate = passed / (passed + failed); skipped tests are not counted.',
    '',
    '| Group | Tests | Passed | Failed | Skipped | Pass rate |',
    '|---|---:|---:|---:|---:|---:|',
    `| **Core** (standard CEL, non-protobuf files) | ${g.core.total} | ${g.core.passed} | ${g.core.failed} | ${g.core.skipped} | **${pct(g.core)}** |`,
    `| Extensions (ext libraries, optionals, two-variable macros) | ${g.extension.total} | ${g.extension.passed} | ${g.extension.failed} | ${g.extension.skipped} | ${pct(g.extension)} |`,
    `| Core + extensions | ${g['all-run'].total} | ${g['all-run'].passed} | ${g['all-run'].failed} | ${g['all-run'].skipped} | ${pct(g['all-run'])} |`,
    `| Protobuf files (not run) | ${g.protobuf.total} | - | - | ${g.protobuf.skipped} | - |`,
    '',
    'The same tests in other configurations, for comparison:',
    '',
    '| Configuration | Core passed | Core failed | Core pass rate | Extensions pass rate |',
    '|---|---:|---:|---:|---:|',
    `| Verdict's \`celBaseEnvironment()\` (the figures above) | ${g.core.passed} | ${g.core.failed} | ${pct(g.core)} | ${pct(g.extension)} |`,
    `| cel-js defaults: plain \`new Environment()\` | ${gd.core.passed} | ${gd.core.failed} | ${pct(gd.core)} | ${pct(gd.extension)} |`,
    `| Verdict's environment + \`enableOptionalTypes: true\` | ${go.core.passed} | ${go.core.failed} | ${pct(go.core)} | ${pct(go.extension)} (optionals file: ${pct(perFile(optionals).get('optionals') ?? emptyTally())}) |`,
    '',
  );

  push(
    '## How the tests run',
    '',
    '- The test data is the JSON form of `cel.expr.conformance.test.SimpleTest` that @bufbuild/cel-spec ships in `testdata/conformance.js`; it is read directly, without @bufbuild/protobuf.',
    '- Each test gets `celBaseEnvironment().clone()` (Verdict\'s settings: `unlistedVariablesAreDyn: false`, `homogeneousAggregateLiterals: false`, optional types off, Verdict\'s limits, types and `inCidr`), with the test\'s declarations registered (`x: int` becomes `registerVariable(\'x\', \'int\')`; declared functions get a stub). A binding without a declaration is registered as `dyn`.',
    '- Values: int as BigInt, uint as cel-js `UnsignedInt`, double as number, bytes as Uint8Array, timestamp as Date, duration as cel-js `Duration`, list as Array, map as a plain object (string keys) or Map.',
    '- Like a policy load, the expression is parsed and type-checked (`parse(...).check()`), unless the test sets `disable_check` (cel-js still checks internally while evaluating). A check error fails a test that expects a value. Then it is evaluated with the bindings.',
    '- A test expecting an error passes on any cel-js evaluation error; messages are not compared (they are implementation-specific). If the test is checked, the expression must still parse and type-check (otherwise an unimplemented function would count as the expected error); an unchecked test may fail at any stage.',
    '- A result must have the right CEL type (an int is not a uint or double) and value. NaN matches NaN. Map literals with non-string keys come back from cel-js as plain objects with stringified keys; they are compared by key text.',
    '- Skipped: the protobuf files (' + [...PROTOBUF_FILES].sort().join(', ') + ') and, elsewhere, every test whose expression, container, declarations, bindings or expected value needs protobuf message types (TestAllTypes, enums, wrappers, Struct/Value/Any). Timestamp and Duration are native in cel-js and do run.',
    '',
  );

  push('## Per file', '', '| File | Group | Tests | Passed | Failed | Skipped | Pass rate | cel-js defaults |', '|---|---|---:|---:|---:|---:|---:|---:|');
  const order: Group[] = ['core', 'extension', 'protobuf'];
  const names = [...files.keys()].sort((a, b) => order.indexOf(groupOf(a)) - order.indexOf(groupOf(b)) || a.localeCompare(b));
  for (const f of names) {
    const t = files.get(f)!;
    const td = filesDefaults.get(f) ?? emptyTally();
    push(`| ${f} | ${groupOf(f)} | ${t.total} | ${t.passed} | ${t.failed} | ${t.skipped} | ${pct(t)} | ${pct(td)} |`);
  }
  push('');

  // Per section for the core files: where failures concentrate.
  push('## Per section (core files with failures)', '', '| File / section | Passed | Failed | Skipped |', '|---|---:|---:|---:|');
  const sections = new Map<string, Tally>();
  for (const r of verdict) {
    if (groupOf(r.file) !== 'core') continue;
    const k = `${r.file} / ${r.section}`;
    const t = sections.get(k) ?? emptyTally();
    add(t, r);
    sections.set(k, t);
  }
  for (const [k, t] of [...sections].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (t.failed > 0) push(`| ${k} | ${t.passed} | ${t.failed} | ${t.skipped} |`);
  }
  push('');

  const describeCategories = (group: Group, title: string): void => {
    const failures = verdict.filter((r) => r.outcome === 'fail' && groupOf(r.file) === group);
    const cats = categoryTable(failures);
    push(`## ${title}`, '', `${failures.length} failures.`, '');
    for (const [cat, list] of cats) {
      const note = CATEGORY_NOTES[cat];
      push(`### ${cat} (${list.length})`, '');
      if (note) push(note, '');
      const where = [...new Set(list.map((r) => r.file))].sort().join(', ');
      push(`Files: ${where}.`, '');
      for (const r of list.slice(0, 3)) push(`- ${r.file}/${r.section} \`${mdEscape(r.name)}\`: ${code(r.expr)} — ${mdEscape(r.reason.length > 200 ? `${r.reason.slice(0, 197)}...` : r.reason)}`);
      push('');
    }
  };
  describeCategories('core', 'Core failures by category');
  describeCategories('extension', 'Extension failures by category');

  // Differences between the profiles.
  push('## Verdict settings vs cel-js defaults', '');
  const byKey = new Map(defaults.map((r) => [`${r.file}/${r.section}/${r.name}`, r]));
  const better: TestResult[] = [];
  const worse: TestResult[] = [];
  for (const r of verdict) {
    if (groupOf(r.file) === 'protobuf') continue;
    const d = byKey.get(`${r.file}/${r.section}/${r.name}`);
    if (!d) continue;
    if (r.outcome === 'pass' && d.outcome === 'fail') better.push(r);
    if (r.outcome === 'fail' && d.outcome === 'pass') worse.push(r);
  }
  const causes = (list: readonly TestResult[], pickFailure: (r: TestResult) => TestResult): string => {
    const counts = new Map<string, number>();
    for (const r of list) {
      const f = pickFailure(r);
      const k = f.code ?? f.stage ?? 'other';
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ');
  };
  const keyOf = (r: TestResult): string => `${r.file}/${r.section}/${r.name}`;
  const limitFailures = verdict.filter((r) => r.outcome === 'fail' && r.code === 'limit_exceeded').length;
  push(
    `Core: ${pct(g.core)} with Verdict's settings vs ${pct(gd.core)} in a plain \`new Environment()\`. ` +
      `${better.length} tests (core and extensions) pass only with Verdict's settings, ${worse.length} only with the defaults.`,
    '',
    "The settings that differ are `homogeneousAggregateLiterals: false` (cel-js default: true), Verdict's tighter structural limits (`maxDepth` 64, `maxAstNodes` 2000, `maxCallArguments` 16), and Verdict's registered types, variables and `inCidr` function. " +
      (limitFailures === 0
        ? 'The limits cost no test (the cel-spec parse tests for nesting and repetition stay within them). '
        : `The limits cost ${limitFailures} tests (category "Verdict's structural limits"). `) +
      "The difference is the aggregate-literal setting: with homogeneous literals (the default) cel-js rejects mixed-type list and map literals such as `[1, 'dos', 3]` or `{'k': 1, 'j': null}` at check time, which CEL allows (they type as `list(dyn)` / `map(dyn, dyn)`); Verdict's setting follows the spec.",
    '',
  );
  if (better.length > 0) {
    push(`Pass only with Verdict's settings (${better.length}); the defaults fail them with: ${causes(better, (r) => byKey.get(keyOf(r))!)}.`, '');
    for (const r of better.slice(0, 5)) push(`- ${r.file}/${r.section} \`${mdEscape(r.name)}\`: ${code(r.expr)} — defaults: ${mdEscape(byKey.get(keyOf(r))!.reason.slice(0, 150))}`);
    if (better.length > 5) push(`- ... and ${better.length - 5} more`);
    push('');
  }
  if (worse.length > 0) {
    push(
      `Pass only with the defaults (${worse.length}). These expect an error; the defaults raise one for another reason (${causes(worse, (r) => byKey.get(keyOf(r))!)}), ` +
        "typically because the mixed-type literal in the test is rejected before the faulty part is reached, while Verdict's environment reaches it and returns a value:",
      '',
    );
    for (const r of worse.slice(0, 5)) push(`- ${r.file}/${r.section} \`${mdEscape(r.name)}\`: ${code(r.expr)} — Verdict: ${mdEscape(r.reason.slice(0, 150))}`);
    if (worse.length > 5) push(`- ... and ${worse.length - 5} more`);
    push('');
  }
  push(
    '**Reference figure.** An earlier measurement put @marcbachmann/cel-js at 88.8% of core tests on default settings. ' +
      `This run gives ${pct(gd.core)} for cel-js defaults and ${pct(g.core)} for Verdict's environment. ` +
      "Verdict's figure is higher than the defaults because of `homogeneousAggregateLiterals: false` (above). " +
      'The earlier harness is not available, so the remaining gap to 88.8% cannot be attributed test by test; it depends on what counts as "core" and how results are judged. This runner ' +
      'takes the standard-library files as core and counts the extension files separately, skips (rather than fails) every test that needs protobuf messages, ' +
      'and requires results of the exact CEL type (an int where a uint or double is expected fails). ' +
      'Skipping the explicit type check for tests without `disable_check` changes nothing here, because cel-js type-checks while evaluating anyway.',
    '',
  );

  // Verdict-only restrictions.
  const linted = verdict.filter((r) => r.outcome === 'pass' && r.lint);
  const early = verdict.filter((r) => r.outcome === 'pass' && r.earlyError && groupOf(r.file) !== 'protobuf');
  push(
    '## Notes for Verdict',
    '',
    ...(early.length > 0
      ? [`- ${early.length} passing unchecked tests expect an evaluation error and got a parse error instead (a policy with such an expression fails to load instead of failing at decision time).`]
      : []),
    linted.length === 0
      ? "- No passing test uses an expression that Verdict's policy linter (`lintExpression`: `matches()` needs a literal, linear-time pattern) would refuse at load."
      : `- ${linted.length} passing tests use expressions that Verdict's policy linter (\`lintExpression\`: \`matches()\` needs a literal, linear-time pattern) would refuse at load; they pass in the engine but could not appear in a policy. Example: ${code(linted[0]!.expr, 60)} (${mdEscape(linted[0]!.lint!)}).`,
    `- Optional types (\`optional.of\`, \`.?field\`, \`[?key]\`) are off in Verdict's environment (\`enableOptionalTypes\` not set), so the optionals file fails by configuration; with the option on it passes ${pct(perFile(optionals).get('optionals') ?? emptyTally())}.`,
    '',
  );
  return lines.join('\n');
}

function main(): void {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: npm run conformance [-- --min-pass-rate X] [--no-doc] [--failures]`);
    process.exitCode = 2;
    return;
  }
  const started = performance.now();
  const profiles: Profile[] = [
    { id: 'verdict', label: "Verdict's celBaseEnvironment()", base: celBaseEnvironment(), lint: true },
    { id: 'defaults', label: 'cel-js defaults (new Environment())', base: new Environment(), lint: false },
    { id: 'optionals', label: 'Verdict + enableOptionalTypes', base: celBaseEnvironment().clone({ enableOptionalTypes: true }), lint: false },
  ];
  const [verdict, defaults, optionals] = profiles.map(runProfile) as [TestResult[], TestResult[], TestResult[]];
  const elapsedMs = performance.now() - started;

  const files = perFile(verdict);
  const filesDefaults = perFile(defaults);
  const order: Group[] = ['core', 'extension', 'protobuf'];
  const names = [...files.keys()].sort((a, b) => order.indexOf(groupOf(a)) - order.indexOf(groupOf(b)) || a.localeCompare(b));
  const rows: string[][] = [['file', 'group', 'tests', 'passed', 'failed', 'skipped', 'rate', 'cel-js defaults']];
  for (const f of names) {
    const t = files.get(f)!;
    rows.push([f, groupOf(f), `${t.total}`, `${t.passed}`, `${t.failed}`, `${t.skipped}`, pct(t), pct(filesDefaults.get(f) ?? emptyTally())]);
  }
  const g = groupTotals(verdict);
  const gd = groupTotals(defaults);
  rows.push(['', '', '', '', '', '', '', '']);
  for (const [label, key] of [['CORE', 'core'], ['EXTENSIONS', 'extension'], ['CORE+EXT', 'all-run'], ['PROTOBUF', 'protobuf']] as const) {
    const t = g[key];
    rows.push([label, '', `${t.total}`, `${t.passed}`, `${t.failed}`, `${t.skipped}`, pct(t), pct(gd[key])]);
  }
  console.log(`cel-spec conformance through Verdict's CEL environment (@marcbachmann/cel-js ${packageVersion('@marcbachmann/cel-js')}, @bufbuild/cel-spec ${packageVersion('@bufbuild/cel-spec')})`);
  console.log(`rate = passed / (passed + failed); columns: ${profiles[0]!.label}, last column: ${profiles[1]!.label}\n`);
  console.log(consoleTable(rows));
  console.log(`\ncore pass rate ${pct(g.core)} (${g.core.passed}/${g.core.passed + g.core.failed}, ${g.core.skipped} skipped); cel-js defaults ${pct(gd.core)}; ${(elapsedMs / 1000).toFixed(1)} s`);

  const coreFailures = categoryTable(verdict.filter((r) => r.outcome === 'fail' && groupOf(r.file) === 'core'));
  console.log('\ncore failure categories:');
  for (const [cat, list] of coreFailures) console.log(`  ${String(list.length).padStart(4)}  ${cat}`);

  if (args.listFailures) {
    console.log('\nfailures:');
    for (const r of verdict) if (r.outcome === 'fail') console.log(`  [${groupOf(r.file)}] ${r.file}/${r.section}/${r.name} [${categorize(r)}]: ${r.expr.replace(/\s+/g, ' ')}\n      ${r.reason}`);
  }

  if (args.writeDoc) {
    const out = join(projectRoot, 'docs', 'conformance.md');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, renderMarkdown({ verdict, defaults, optionals, elapsedMs }) + '\n');
    console.log(`\nwrote ${out}`);
  }

  if (args.minPassRate !== undefined && rate(g.core) < args.minPassRate) {
    console.error(`\ncore pass rate ${pct(g.core)} is below --min-pass-rate ${args.minPassRate}%`);
    process.exitCode = 1;
  }
}

main();
