import { loadPolicyDirectory, PolicyLoadError, formatIssue } from '../../policy/index.js';
import { loadSuites, runTest, type PolicyTestResult } from '../../testing/suite.js';
import type { RuleTrace } from '../../engine/decision.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';

export const testCommand: CommandSpec = {
  name: 'test',
  summary: 'run the *_test.yaml suites under DIR against the policies in DIR',
  positionals: [{ name: 'DIR', description: 'policy directory with its test suites, read recursively (default: policies)' }],
  flags: [{ name: 'verbose', type: 'boolean', description: 'also print every test that passed' }],
  examples: [
    { what: 'run the example policy suites; failures print every rule considered', command: 'verdict test policies/' },
    { what: 'list every test, passed or not', command: 'verdict test policies/ --verbose' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'every test passed' },
    { code: EXIT.FAILURE, meaning: 'a test failed, a suite has an error, the policy set is rejected, or DIR has no suites' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: runTests,
};

function formatTrace(t: RuleTrace): string {
  const detail = t.detail ? `: ${t.detail}` : '';
  const roles = t.derivedRoles?.length ? ` (derived roles: ${t.derivedRoles.join(', ')})` : '';
  return `      ${t.outcome.padEnd(15)} ${t.effect.padEnd(5)} ${t.rule} [${t.policy}]${roles}${detail}`;
}

function reportFailure(io: CliOutput, r: PolicyTestResult): void {
  io.out(`FAIL ${r.test.suite} › ${r.test.name} (${r.test.file}:${r.test.line})`);
  io.out(`    ${r.failure}`);
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
  let set;
  try {
    set = await loadPolicyDirectory(dir);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    io.err(`${dir}: policy set rejected; no tests run`);
    return EXIT.FAILURE;
  }
  const { tests, errors } = await loadSuites(dir);
  for (const e of errors) io.err(`${e.file}:${e.line}: suite error: ${e.message}`);
  const now = new Date();
  let passed = 0;
  let failed = 0;
  for (const test of tests) {
    const result = runTest(set, test, now);
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
  return failed > 0 || errors.length > 0 ? EXIT.FAILURE : EXIT.OK;
}
