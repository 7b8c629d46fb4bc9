/** `verdict policies list|show|rollback`: the bundles and label history in NATS (push: policies-push.ts). */
import { compilePolicySet, formatIssue, PolicyLoadError } from '../../policy/index.js';
import { BundleError, bundleFiles, REVISION_PATTERN, sha256OfBytes } from '../../bundles/format.js';
import { labelProblem } from '../../bundles/source-url.js';
import { BucketMissingError, BundleNotFoundError, LabelConflictError, LABEL_SCHEMA, type BundleStore, type LabelHistoryEntry } from '../../bundles/store.js';
import type { CliOutput } from '../output.js';
import { EXIT, UsageError, type CommandSpec, type ParsedArgs } from '../spec.js';
import { ago, BUCKET_FLAG, cliNats, CONFIG_FLAG, connectCli, JSON_FLAG, LABEL_FLAG, LABELS_BUCKET_FLAG, NATS_FLAG, openBundleStore, table, whoAmI, type CliNats } from './bundle-flags.js';

const NO_BUCKETS = 'no bundle was pushed to these buckets yet';

/** Connects, opens the buckets (they must exist), runs `body`, and turns known errors into exit 1. */
async function withStore(args: ParsedArgs, io: CliOutput, command: string, body: (store: BundleStore, nats: CliNats) => Promise<number>): Promise<number> {
  const nats = cliNats(args);
  const fail = (message: string) => {
    io.err(`verdict ${command}: ${message}`);
    return EXIT.FAILURE;
  };
  let nc;
  try {
    nc = await connectCli(nats, command);
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    return await body(await openBundleStore(nc, args, nats, false), nats);
  } catch (err) {
    if (err instanceof BucketMissingError) return fail(`${err.message.replace(/: push a bundle first.*/, '')} (${NO_BUCKETS})`);
    if (err instanceof BundleError || err instanceof BundleNotFoundError || err instanceof LabelConflictError) return fail(err.message);
    return fail(`NATS: ${(err as Error).message}`);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export const policiesListCommand: CommandSpec = {
  name: 'policies list',
  summary: 'list the labels and their revisions, or one label\'s history (--label)',
  flags: [NATS_FLAG, { ...LABEL_FLAG, defaultNote: undefined, description: "list this label's history (the last 64 changes) instead of every label" }, CONFIG_FLAG, BUCKET_FLAG, LABELS_BUCKET_FLAG, JSON_FLAG],
  examples: [
    { what: 'every label and the revision it names', command: 'verdict policies list --nats nats://127.0.0.1:4222' },
    { what: 'the history of production: revision, when, by whom, file count; * marks the current one', command: 'verdict policies list --label production' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'listed' },
    { code: EXIT.FAILURE, meaning: 'NATS cannot be reached, or no bundle was pushed to these buckets' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: (args, io) => withStore(args, io, 'policies list', (store) => (args.has('label') ? listHistory(store, args.string('label')!, args, io) : listLabels(store, args, io))),
};

async function listLabels(store: BundleStore, args: ParsedArgs, io: CliOutput): Promise<number> {
  const rows = [];
  for (const label of await store.labels()) {
    const state = await store.label(label).catch((err: Error) => ({ problem: err.message }));
    if (state === null) continue;
    rows.push({ label, ...('problem' in state ? { problem: state.problem } : { ...state.record, stored: state.stored.toISOString() }) });
  }
  if (args.flag('json')) io.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) io.out(`no labels in ${store.buckets.labels}`);
  else io.out(table(['LABEL', 'REVISION', 'SET', 'BY', 'ACTION', 'FILES'], rows.map((r) => ('problem' in r ? [r.label, `(unreadable: ${r.problem})`, '', '', '', ''] : [r.label, r.revision!, ago(new Date(r.stored!)), r.by!, r.action!, String(r.files)]))));
  return EXIT.OK;
}

async function listHistory(store: BundleStore, label: string, args: ParsedArgs, io: CliOutput): Promise<number> {
  const history = await store.history(label);
  if (history.length === 0) {
    io.err(`verdict policies list: label ${label} has no history in ${store.buckets.labels}`);
    return EXIT.FAILURE;
  }
  const last = history.at(-1);
  const present = new Map<string, boolean>();
  for (const e of history) if (e.record && !present.has(e.record.revision)) present.set(e.record.revision, (await store.bundleInfo(e.record.revision)) !== null);
  const rows = history.map((e: LabelHistoryEntry) => ({
    kvRevision: e.kvRevision,
    stored: e.stored.toISOString(),
    operation: e.operation,
    current: e === last && e.operation === 'PUT',
    ...(e.record ? { ...e.record, bundleAvailable: present.get(e.record.revision) } : {}),
    ...(e.problem ? { problem: e.problem } : {}),
  }));
  if (args.flag('json')) {
    io.out(JSON.stringify({ label, history: rows }, null, 2));
    return EXIT.OK;
  }
  io.out(
    table(
      ['', 'REVISION', 'WHEN', 'ACTION', 'BY', 'FILES', 'TESTS', 'NOTE'],
      rows.map((r) => {
        if (r.operation !== 'PUT') return [' ', '(deleted)', ago(new Date(r.stored)), r.operation.toLowerCase(), '', '', '', ''];
        if (!('revision' in r)) return [' ', '(unreadable)', ago(new Date(r.stored)), '', '', '', '', r.problem ?? ''];
        const tests = r.tests!.run ? `${r.tests!.passed} passed${r.tests!.failed ? `, ${r.tests!.failed} FAILED` : ''}` : 'skipped';
        const note = [r.bundleAvailable ? '' : '(bundle no longer stored)', r.message].filter(Boolean).join(' ');
        return [r.current ? '*' : ' ', r.revision!, `${r.at} (${ago(new Date(r.at!))})`, r.action!, r.by!, String(r.files), tests, note];
      }),
    ),
  );
  return EXIT.OK;
}

export const policiesShowCommand: CommandSpec = {
  name: 'policies show',
  summary: "show a bundle's manifest (files with their SHA-256), or print one of its files",
  positionals: [
    { name: 'REF', description: 'a revision (sha256:…) or a label (its current revision)', required: true },
    { name: 'FILE', description: 'print this file of the bundle, as stored' },
  ],
  flags: [NATS_FLAG, CONFIG_FLAG, BUCKET_FLAG, LABELS_BUCKET_FLAG, JSON_FLAG],
  examples: [
    { what: 'the files of the revision the label production names', command: 'verdict policies show production' },
    { what: 'one file of a revision', command: 'verdict policies show sha256:2a621c3a5002a1c6 documents/document.yaml' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'shown' },
    { code: EXIT.FAILURE, meaning: 'no such label, bundle or file; the bundle does not verify; or NATS cannot be reached' },
    { code: EXIT.USAGE, meaning: 'usage error: REF is neither a revision nor a label' },
  ],
  run: (args, io) => {
    const ref = args.positionals[0]!;
    if (!REVISION_PATTERN.test(ref) && labelProblem(ref)) throw new UsageError(`REF "${ref.slice(0, 80)}" is neither a revision (sha256:<16 hex digits>) nor a label (letters, digits, _ and -)`);
    return withStore(args, io, 'policies show', (store) => show(store, ref, args.positionals[1], args, io));
  },
};

async function show(store: BundleStore, ref: string, file: string | undefined, args: ParsedArgs, io: CliOutput): Promise<number> {
  let revision = ref;
  let digest: string | undefined;
  if (!REVISION_PATTERN.test(ref)) {
    const state = await store.label(ref);
    if (!state) {
      io.err(`verdict policies show: label ${ref} names no revision in ${store.buckets.labels}`);
      return EXIT.FAILURE;
    }
    revision = state.record.revision;
    digest = state.record.digest;
  }
  const { bundle, bytes } = await store.getBundle(revision, digest);
  if (file !== undefined) {
    const f = bundle.files.find((x) => x.path === file);
    if (!f) {
      io.err(`verdict policies show: bundle ${revision} has no file ${JSON.stringify(file)} (it has ${bundle.files.length}: ${bundle.files.slice(0, 5).map((x) => x.path).join(', ')}${bundle.files.length > 5 ? ', …' : ''})`);
      return EXIT.FAILURE;
    }
    if (args.flag('json')) io.out(JSON.stringify({ revision, path: f.path, sha256: f.sha256, size: f.size, text: f.text }, null, 2));
    else io.out(f.text); // as stored (a newline is added only to a text that does not end with one; --json has it exactly)
    return EXIT.OK;
  }
  const manifest = { ...bundle, files: bundle.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })), objectBytes: bytes.length };
  if (args.flag('json')) {
    io.out(JSON.stringify(manifest, null, 2));
    return EXIT.OK;
  }
  const t = bundle.tests;
  io.out(
    [
      `revision ${bundle.revision}${ref !== revision ? ` (label ${ref})` : ''}`,
      `created  ${bundle.createdAt} by ${bundle.createdBy || 'unknown'}`,
      ...(bundle.message ? [`message  ${bundle.message}`] : []),
      `tests    ${t.run ? `${t.passed} passed, ${t.failed} failed${t.suiteErrors ? `, ${t.suiteErrors} suite errors` : ''}` : 'not run (--skip-tests)'}`,
      `files    ${bundle.files.length} (${bytes.length} bytes)`,
      '',
      table(['PATH', 'SHA-256', 'BYTES'], manifest.files.map((f) => [f.path, f.sha256, String(f.size)])),
    ].join('\n'),
  );
  return EXIT.OK;
}

export const policiesRollbackCommand: CommandSpec = {
  name: 'policies rollback',
  summary: 'point a label back at an earlier revision (its bundle must still be stored and must load)',
  positionals: [{ name: 'REVISION', description: 'the revision (sha256:…) the label goes back to', required: true }],
  flags: [NATS_FLAG, LABEL_FLAG, CONFIG_FLAG, { name: 'message', type: 'string', value: 'TEXT', description: 'why (kept in the label history)' }, BUCKET_FLAG, LABELS_BUCKET_FLAG, JSON_FLAG],
  examples: [{ what: 'production goes back to an earlier revision from its history', command: 'verdict policies rollback sha256:2a621c3a5002a1c6 --label production --message "revert #123"' }],
  exitCodes: [
    { code: EXIT.OK, meaning: 'the label names the revision (now, or already)' },
    { code: EXIT.FAILURE, meaning: 'the bundle is not stored, does not verify or does not load; the label changed meanwhile; or NATS cannot be reached' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: (args, io) => {
    const revision = args.positionals[0]!;
    if (!REVISION_PATTERN.test(revision)) throw new UsageError(`REVISION "${revision.slice(0, 80)}" must look like sha256:<16 hex digits> (verdict policies list --label … shows them)`);
    return withStore(args, io, 'policies rollback', (store, nats) => rollback(store, revision, nats.label, args, io));
  },
};

async function rollback(store: BundleStore, revision: string, label: string, args: ParsedArgs, io: CliOutput): Promise<number> {
  const { bundle, bytes } = await store.getBundle(revision);
  try {
    compilePolicySet(bundleFiles(bundle));
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    io.err(`verdict policies rollback: bundle ${revision} does not load; label ${label} not changed`);
    return EXIT.FAILURE;
  }
  const current = await store.label(label);
  if (current?.record.revision === revision) {
    if (args.flag('json')) io.out(JSON.stringify({ label, revision, previous: revision, labelChanged: false }, null, 2));
    else io.out(`label ${label}: already ${revision}; nothing changed`);
    return EXIT.OK;
  }
  await store.setLabel(
    label,
    {
      schema: LABEL_SCHEMA,
      revision,
      digest: sha256OfBytes(bytes),
      size: bytes.length,
      files: bundle.files.length,
      at: new Date().toISOString(),
      by: whoAmI(),
      action: 'rollback',
      message: args.string('message') ?? '',
      previous: current?.record.revision ?? null,
      tests: bundle.tests,
    },
    current?.kvRevision ?? null,
  );
  if (args.flag('json')) io.out(JSON.stringify({ label, revision, previous: current?.record.revision ?? null, labelChanged: true }, null, 2));
  else io.out(`label ${label}: ${revision} (was ${current?.record.revision ?? 'unset'})`);
  return EXIT.OK;
}
