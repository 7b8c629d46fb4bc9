import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PolicyCompiler, formatIssue, readPolicySources, withDigest } from '../../policy/index.js';
import { loadSuites, runTest, type PolicyTestResult } from '../../testing/suite.js';
import { CoverageRecorder } from '../../testing/coverage.js';
import { coverageReport, lcov, summaryLines, uncovered } from '../../testing/coverage-report.js';
import type { RuleTrace } from '../../engine/decision.js';
import { watchTree } from '../../files/watch-tree.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';

/** `verdict test --min-coverage N`: every test passed, but rule coverage is under N percent. */
export const EXIT_COVERAGE = 4;

function percent(value: string): string | undefined {
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) && n >= 0 && n <= 100 ? undefined : 'must be a number from 0 to 100';
}

export const testCommand: CommandSpec = {
  name: 'test',
  summary: 'run the *_test.yaml suites under DIR against the policies in DIR',
  positionals: [{ name: 'DIR', description: 'policy directory with its test suites, read recursively (default: policies)' }],
  flags: [
    { name: 'verbose', type: 'boolean', description: 'also print every test that passed' },
    { name: 'coverage', type: 'boolean', description: 'report which rules, derived roles, variables and condition branches the tests exercised; print the uncovered ones with file:line; write coverage.json and lcov.info' },
    { name: 'coverage-dir', type: 'string', value: 'DIR', description: 'where --coverage writes coverage.json and lcov.info', default: 'coverage' },
    { name: 'min-coverage', type: 'string', value: 'PERCENT', description: `exit ${EXIT_COVERAGE} when rule coverage (rules that applied in some test) is under PERCENT; implies --coverage`, validate: percent },
    { name: 'watch', type: 'boolean', description: 'run again whenever a file under DIR changes (Ctrl-C stops)' },
  ],
  examples: [
    { what: 'run the example policy suites; failures print every rule considered', command: 'verdict test policies/' },
    { what: 'list every test, passed or not', command: 'verdict test policies/ --verbose' },
    { what: 'coverage report, failing under 100% rule coverage', command: 'verdict test policies/ --coverage --min-coverage 100' },
    { what: 'run again on every change while editing', command: 'verdict test policies/ --watch' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'every test passed' },
    { code: EXIT.FAILURE, meaning: 'a test failed, a suite has an error, the policy set is rejected, DIR has no suites, or a report could not be written' },
    { code: EXIT.USAGE, meaning: 'usage error' },
    { code: EXIT_COVERAGE, meaning: 'every test passed, but rule coverage is under --min-coverage' },
  ],
  run: (args, io) => (args.flag('watch') ? watchTests(args, io) : runTests(args, io)),
};

function formatTrace(t: RuleTrace): string {
  const detail = t.detail ? `: ${t.detail}` : '';
  const roles = t.derivedRoles?.length ? ` (derived roles: ${t.derivedRoles.join(', ')})` : '';
  return `      ${t.outcome.padEnd(15)} ${t.effect.padEnd(5)} ${t.rule} [${t.policy}]${roles}${detail}`;
}

function reportFailure(io: CliOutput, r: PolicyTestResult): void {
  io.out(`FAIL ${r.test.suite} › ${r.test.name} (${r.test.file}:${r.test.line})`);
  io.out(`    ${r.failure}`);
  if (r.decision.schemaProblems?.length) io.out(`    schema problems: ${r.decision.schemaProblems.join('; ')}`);
  io.out('    rules considered:');
  const traces = r.decision.explanation ?? [];
  if (traces.length === 0) io.out('      (none: no policy governs this resource type)');
  for (const t of traces) io.out(formatTrace(t));
  if (r.decision.usage) {
    io.out('    limits:');
    for (const u of r.decision.usage) {
      const retry = u.outcome === 'over' ? `, retry after ${Math.ceil(u.retryAfterMs / 1000)}s` : '';
      io.out(`      ${u.outcome.padEnd(5)} ${u.mode.padEnd(7)} ${u.name} [${u.policy}]: ${u.remaining} of ${u.limit} left${retry}${u.message ? `: ${u.message}` : ''}`);
    }
  }
}

async function runTests(args: ParsedArgs, io: CliOutput): Promise<number> {
  const dir = args.positionals[0] ?? 'policies';
  const minCoverage = args.string('min-coverage');
  const withCoverage = args.flag('coverage') || minCoverage !== undefined;
  // Coverage compiles the set with recording wrappers (src/testing/coverage.ts); without it, the
  // set is compiled exactly as a server compiles it.
  const recorder = withCoverage ? new CoverageRecorder() : undefined;
  const candidate = new PolicyCompiler(recorder ? { coverage: recorder } : {}).compileNow((await readPolicySources(dir)).map(withDigest));
  if (!candidate.set) {
    for (const issue of candidate.issues) io.err(formatIssue(issue));
    io.err(`${dir}: policy set rejected; no tests run`);
    return EXIT.FAILURE;
  }
  const set = candidate.set;
  for (const w of candidate.warnings) io.err(`warning: ${w}`);
  const { tests, errors } = await loadSuites(dir);
  for (const e of errors) io.err(`${e.file}:${e.line}: suite error: ${e.message}`);
  const now = new Date();
  let passed = 0;
  let failed = 0;
  for (const test of tests) {
    const result = runTest(set, test, now);
    recorder?.observe(result.decision);
    if (result.passed) {
      passed++;
      if (args.flag('verbose')) io.out(`ok   ${test.suite} › ${test.name}`);
    } else {
      failed++;
      reportFailure(io, result);
    }
  }
  io.out(`policy tests (${dir}, revision ${set.revision}): ${passed} passed, ${failed} failed${errors.length ? `, ${errors.length} suite errors` : ''}`);
  if (tests.length === 0 && errors.length === 0) {
    io.err(`no test suites (*_test.yaml) found under ${dir}`);
    return EXIT.FAILURE;
  }
  if (failed > 0 || errors.length > 0) return EXIT.FAILURE;
  if (!recorder) return EXIT.OK;

  const report = coverageReport(recorder);
  for (const line of summaryLines(report)) io.out(line);
  const missing = uncovered(report);
  if (missing.length > 0) {
    io.out(`not covered (${missing.length}):`);
    for (const u of missing) io.out(`  ${path.join(dir, u.file)}:${u.line}:${u.column}: ${u.message}`);
  }
  const out = args.string('coverage-dir') ?? 'coverage';
  try {
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'coverage.json'), `${JSON.stringify({ dir, revision: set.revision, ...report }, null, 2)}\n`);
    await writeFile(path.join(out, 'lcov.info'), lcov(report, dir));
  } catch (err) {
    io.err(`cannot write the coverage report to ${out}: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
  io.out(`coverage report: ${path.join(out, 'coverage.json')}, ${path.join(out, 'lcov.info')}`);
  if (minCoverage !== undefined && report.summary.rules.percent < Number(minCoverage)) {
    io.err(`rule coverage ${report.summary.rules.percent}% is under --min-coverage ${minCoverage}%`);
    return EXIT_COVERAGE;
  }
  return EXIT.OK;
}

/**
 * Runs, then runs again after each change under DIR (changes within 200 ms run once). The watch is
 * armed before the first run, so an edit made during a run, or right after its "[watch] exit"
 * line, runs again. Never returns on its own.
 */
async function watchTests(args: ParsedArgs, io: CliOutput): Promise<number> {
  const dir = args.positionals[0] ?? 'policies';
  const coverageDir = path.resolve(args.string('coverage-dir') ?? 'coverage');
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      const code = await runTests(args, io).catch((err: Error) => {
        io.err(`test run failed: ${err.message}`);
        return EXIT.FAILURE;
      });
      io.out(`[watch] exit ${code}; waiting for changes under ${dir} (Ctrl-C stops)`);
    } while (again);
    running = false;
  };
  let timer: NodeJS.Timeout | undefined;
  const watcher = watchTree(
    path.resolve(dir),
    () => {
      clearTimeout(timer);
      timer = setTimeout(() => void run(), 200);
    },
    {
      // The report written into DIR (a --coverage-dir inside it) must not trigger another run.
      ignore: (p) => p === coverageDir || p.startsWith(coverageDir + path.sep),
      onFallback: (reason) => io.err(`[watch] ${reason}`),
    },
  );
  await run();
  return new Promise<number>((resolve) => {
    const stop = () => {
      watcher.close();
      clearTimeout(timer);
      resolve(EXIT.OK);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
