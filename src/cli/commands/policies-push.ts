import { compilePolicySet, formatIssue, PolicyLoadError, readPolicySources, withDigest } from '../../policy/index.js';
import type { CompiledPolicySet } from '../../engine/model.js';
import { BundleError, buildBundle, type BundleTests } from '../../bundles/format.js';
import { LabelConflictError, LABEL_SCHEMA, type LabelRecord } from '../../bundles/store.js';
import { loadSuites, runTest } from '../../testing/suite.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';
import { BUCKET_FLAG, cliNats, CONFIG_FLAG, connectCli, JSON_FLAG, LABEL_FLAG, LABELS_BUCKET_FLAG, NATS_FLAG, openBundleStore, whoAmI } from './bundle-flags.js';

export const policiesPushCommand: CommandSpec = {
  name: 'policies push',
  summary: 'validate a policy directory, run its test suites, and publish it as a bundle that a label points to',
  details: [
    'The set is compiled as `verdict serve` compiles it and its *_test.yaml suites are run; a set that\n' +
      'does not load, or whose tests fail, is not pushed. The bundle is stored once per revision (the\n' +
      'same revision `verdict validate` prints); pushing the same files again changes nothing. The label\n' +
      'is then pointed at it, unless it already is, and replicas serving that label switch to it.',
  ],
  positionals: [{ name: 'DIR', description: 'policy directory, read recursively', required: true }],
  flags: [
    NATS_FLAG,
    LABEL_FLAG,
    CONFIG_FLAG,
    { name: 'message', type: 'string', value: 'TEXT', description: 'a note kept in the bundle and the label history (what changed, a ticket)' },
    { name: 'skip-tests', type: 'boolean', description: 'do not run the test suites (recorded in the bundle as not run)' },
    { name: 'allow-failing-tests', type: 'boolean', description: 'push even when tests fail (the failures are printed and recorded in the bundle)' },
    BUCKET_FLAG,
    LABELS_BUCKET_FLAG,
    JSON_FLAG,
  ],
  conflicts: [{ flags: ['skip-tests', 'allow-failing-tests'], why: '--skip-tests runs no test that could fail' }],
  examples: [
    { what: 'push the example policies to the label "production" of a local NATS', command: 'verdict policies push policies --nats nats://127.0.0.1:4222 --label production --message "legal hold blocks delete"' },
    { what: 'push a set whose suites are known to fail (the failures are recorded)', command: 'verdict policies push policies --label staging --allow-failing-tests' },
    { what: 'push to the NATS, credentials and label the replicas use (their configuration file)', command: 'verdict policies push policies --config /etc/verdict/verdict.yaml' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'pushed, or the label already named this revision' },
    { code: EXIT.FAILURE, meaning: 'not pushed: the set is rejected, a test failed, the bundle is refused (size, paths), NATS cannot be reached, or the label changed meanwhile' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: push,
};

/** Runs the suites; prints each failure; returns the counts. */
async function runSuites(dir: string, set: CompiledPolicySet, io: CliOutput, quiet: boolean): Promise<BundleTests> {
  const { tests, errors } = await loadSuites(dir);
  for (const e of errors) io.err(`${e.file}:${e.line}: suite error: ${e.message}`);
  const now = new Date();
  let passed = 0;
  let failed = 0;
  for (const test of tests) {
    const r = runTest(set, test, now);
    if (r.passed) passed++;
    else {
      failed++;
      io.err(`FAIL ${test.suite} › ${test.name} (${test.file}:${test.line}): ${r.failure}`);
    }
  }
  if (!quiet) io.out(`tests: ${passed} passed, ${failed} failed${errors.length ? `, ${errors.length} suite errors` : ''}${tests.length + errors.length === 0 ? ' (no *_test.yaml suites)' : ''}`);
  return { run: true, passed, failed, suiteErrors: errors.length };
}

async function push(args: ParsedArgs, io: CliOutput): Promise<number> {
  const dir = args.positionals[0]!;
  const nats = cliNats(args);
  const label = nats.label;
  const json = args.flag('json');
  const fail = (message: string) => {
    io.err(`verdict policies push: ${message}`);
    return EXIT.FAILURE;
  };

  let set: CompiledPolicySet;
  let sources;
  try {
    sources = await readPolicySources(dir);
    set = compilePolicySet(sources);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    return fail(`${dir}: policy set rejected; not pushed`);
  }
  if (!json) io.out(`OK ${dir}: ${set.policies.length} policies, ${set.ruleCount} rules, revision ${set.revision}`);

  const tests: BundleTests = args.flag('skip-tests') ? { run: false, passed: 0, failed: 0, suiteErrors: 0 } : await runSuites(dir, set, io, json);
  if ((tests.failed > 0 || tests.suiteErrors > 0) && !args.flag('allow-failing-tests')) {
    return fail(`${tests.failed} tests failed${tests.suiteErrors ? ` and ${tests.suiteErrors} suites have errors` : ''}; not pushed (--allow-failing-tests pushes anyway)`);
  }

  const by = whoAmI();
  const message = args.string('message') ?? '';
  let built;
  try {
    built = buildBundle(sources.map(withDigest), { createdAt: new Date(), createdBy: by, message, tests });
  } catch (err) {
    if (err instanceof BundleError) return fail(`${dir}: ${err.message}; not pushed`);
    throw err;
  }
  // The bundle's revision is the one a replica will serve: the one the compiler gave the set.
  if (built.bundle.revision !== set.revision) return fail(`internal error: bundle revision ${built.bundle.revision} is not the set's ${set.revision}`);

  let nc;
  try {
    nc = await connectCli(nats, 'policies push');
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    const store = await openBundleStore(nc, args, nats, true);
    const stored = await store.putBundle(built);
    const current = await store.label(label);
    const revision = built.bundle.revision;
    let labelResult: 'set' | 'unchanged' = 'unchanged';
    if (current?.record.revision !== revision) {
      const record: LabelRecord = {
        schema: LABEL_SCHEMA,
        revision,
        digest: built.digest,
        size: built.bytes.length,
        files: built.bundle.files.length,
        at: new Date().toISOString(),
        by,
        action: 'push',
        message: built.bundle.message,
        previous: current?.record.revision ?? null,
        tests,
      };
      await store.setLabel(label, record, current?.kvRevision ?? null);
      labelResult = 'set';
    }
    const summary = {
      revision,
      label,
      previous: current?.record.revision ?? null,
      bundle: stored,
      labelChanged: labelResult === 'set',
      files: built.bundle.files.length,
      size: built.bytes.length,
      digest: built.digest,
      tests,
      bucket: store.buckets.objects,
      labelsBucket: store.buckets.labels,
    };
    if (json) io.out(JSON.stringify(summary, null, 2));
    else {
      io.out(stored === 'stored' ? `bundle ${revision}: stored in ${store.buckets.objects} (${summary.files} files, ${summary.size} bytes)` : `bundle ${revision}: already in ${store.buckets.objects}`);
      io.out(labelResult === 'set' ? `label ${label}: ${revision} (was ${summary.previous ?? 'unset'})` : `label ${label}: already ${revision}; nothing changed`);
    }
    return EXIT.OK;
  } catch (err) {
    if (err instanceof LabelConflictError || err instanceof BundleError) return fail(err.message);
    return fail(`NATS: ${(err as Error).message}`);
  } finally {
    await nc.close().catch(() => undefined);
  }
}
