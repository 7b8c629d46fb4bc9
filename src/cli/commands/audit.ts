import path from 'node:path';
import { AuditConsumer, ConsumerStartError } from '../../audit/consumer.js';
import { readHeadsFile, readKvHeads } from '../../audit/heads.js';
import { formatRanges } from '../../audit/ranges.js';
import { loadReceipts, type ReceiptsDoc } from '../../audit/receipts.js';
import type { ChainSummary } from '../../audit/verifier.js';
import { verifyFiles, type HeadClaim, type VerifyReport } from '../../audit/verify-files.js';
import { DEFAULT_CONFIG } from '../../config/load.js';
import { redactUrl } from '../../events/nats-options.js';
import { Keyring } from '../../keys/keyring.js';
import { loadSigningKey, type SigningKey } from '../../keys/signing-key.js';
import { createLogger } from '../../server/logger.js';
import type { CliOutput } from '../output.js';
import { EXIT, UsageError, type CommandSpec, type FlagSpec, type ParsedArgs } from '../spec.js';
import { REVISIONS_BUCKET_FLAG, REVISIONS_FLAG, VerifyRevisions } from './audit-evidence.js';
import { NATS_AUTH_FLAGS, natsAuthFromArgs, withCredentialHint } from './nats-flags.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const seconds = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) && n >= min && n <= max ? undefined : `must be a number of seconds from ${min} to ${max}`;
};

const KEYS_FLAG: FlagSpec = { name: 'keys', type: 'string', value: 'KEYRING', description: 'check checkpoint signatures against this keyring (YAML: public keys and the instances each may sign for)' };

export const auditConsumeCommand: CommandSpec = {
  name: 'audit consume',
  summary: 'keep the audit trail: durable JetStream consumer → fsynced JSONL files of valid records, verified live',
  details: [
    'Runs until SIGTERM or SIGINT. Logs are JSON lines on stderr, so --stdout carries only the trail.\n' +
      'Each problem found is an error line "AUDIT TRAIL PROBLEM"; any problem makes the exit code 1.',
  ],
  flags: [
    { name: 'out', type: 'string', value: 'DIR', description: 'write rotating JSONL files in DIR (created if missing)' },
    { name: 'stdout', type: 'boolean', description: 'write trail lines to standard output instead' },
    { name: 'nats', type: 'string', value: 'URL', description: 'NATS server', defaultNote: `VERDICT_NATS_URL, else ${DEFAULT_CONFIG.events.natsUrl}` },
    ...NATS_AUTH_FLAGS,
    { name: 'stream', type: 'string', value: 'NAME', description: 'JetStream stream of the decisions', defaultNote: `VERDICT_EVENTS_STREAM, else ${DEFAULT_CONFIG.events.stream}` },
    { name: 'durable', type: 'string', value: 'NAME', description: 'durable consumer name; a durable keeps its filter', default: 'verdict-audit' },
    { name: 'filter', type: 'string', value: 'SUBJECT', description: 'keep only this NATS subject filter, e.g. verdict.decisions.report.*', defaultNote: 'everything' },
    { name: 'only-denials', type: 'boolean', description: 'keep only denials: --filter <prefix>.*.deny' },
    {
      name: 'subject-prefix',
      type: 'string',
      value: 'P',
      description: 'subject prefix of the decisions, used by --only-denials',
      defaultNote: `VERDICT_EVENTS_SUBJECT_PREFIX, else ${DEFAULT_CONFIG.events.subjectPrefix}`,
    },
    KEYS_FLAG,
    { name: 'receipts', type: 'string', value: 'FILE', description: 'the keeper\'s receipts (position, file digests, latest checkpoint per chain); keep it off the trail\'s volume', defaultNote: 'DIR/keeper-receipts.json with --out, none with --stdout' },
    { name: 'rejects', type: 'string', value: 'FILE', description: 'where refused messages are kept in full, with the reason', defaultNote: 'DIR/rejects.ndjson with --out, the log with --stdout' },
    { name: 'signing-key', type: 'string', value: 'FILE', description: 'the keeper\'s own Ed25519 key (verdict keys generate --keeper) to sign its receipts' },
    { name: 'exit-on-finding', type: 'boolean', description: 'stop at the first problem (exit 1) instead of running on and exiting 1 at the end' },
    { name: 'connect-timeout', type: 'string', value: 'SECONDS', description: 'NATS must answer within this time at start, else exit 1', default: '5', validate: seconds(0.5, 3600) },
    { name: 'unsigned-grace', type: 'string', value: 'SECONDS', description: 'with --keys: a chain whose newest records stay unsigned this long is a problem', default: '30', validate: seconds(1, 86_400) },
    {
      name: 'rotate-bytes',
      type: 'string',
      value: 'N',
      description: 'start a new file past this size',
      default: String(64 * 1024 * 1024),
      validate: (v) => (/^\d+$/.test(v) && Number(v) >= 1024 && Number.isSafeInteger(Number(v)) ? undefined : 'must be an integer ≥ 1024'),
    },
    {
      name: 'log-level',
      type: 'string',
      value: 'LEVEL',
      description: LOG_LEVELS.join(', '),
      default: 'info',
      validate: (v) => (LOG_LEVELS.includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}`),
    },
  ],
  oneOf: [['out', 'stdout']],
  conflicts: [
    { flags: ['out', 'stdout'], why: 'the trail goes to files or to standard output, not both' },
    { flags: ['only-denials', 'filter'], why: '--only-denials is a filter; give one filter' },
    { flags: ['subject-prefix', 'filter'], why: '--subject-prefix only builds the --only-denials filter' },
  ],
  examples: [
    {
      what: 'keep everything in fsynced files, signatures checked, receipts on another volume',
      command: 'verdict audit consume --out /var/lib/verdict-audit --keys /etc/verdict/keyring.yaml --receipts /var/lib/verdict-receipts/receipts.json',
    },
    { what: 'print the denials; a second keeper needs its own durable name', command: 'verdict audit consume --stdout --only-denials --durable verdict-denials' },
    { what: 'as the read-only keeper user of examples/nats/nats-server.conf, over TLS', command: 'verdict audit consume --out /var/lib/verdict-audit --nats tls://nats:4222 --nats-user keeper --nats-password-file /etc/verdict-audit/nats.password --nats-ca-file /etc/verdict-audit/nats-ca.pem' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'stopped cleanly, no problem found in the trail' },
    { code: EXIT.FAILURE, meaning: 'a problem was found in the trail while it ran, the trail could not be written, or it could not start (within seconds)' },
    { code: EXIT.USAGE, meaning: 'usage error, unreadable keyring or signing key' },
  ],
  run: consume,
};

export const auditVerifyCommand: CommandSpec = {
  name: 'audit verify',
  summary: 're-check stored trail files offline: every hash chain, signature, gap and checkpoint, and what was cut off',
  positionals: [{ name: 'FILE', description: 'trail files in order (a shell glob sorts the consumer\'s names correctly)', required: true, variadic: true }],
  flags: [
    KEYS_FLAG,
    { name: 'receipts', type: 'string', value: 'FILE', description: 'compare with the keeper\'s receipts: cut or changed files, deleted checkpoints, renumbered lines' },
    { name: 'heads', type: 'string', value: 'SOURCE', description: 'compare with the chain heads Verdict recorded: nats://HOST:PORT (the KV bucket) or a file of `decision chain head` log lines' },
    { name: 'heads-bucket', type: 'string', value: 'NAME', description: 'the KV bucket of the heads', default: DEFAULT_CONFIG.events.headsBucket },
    {
      name: 'stream',
      type: 'string',
      value: 'NAME',
      description: 'the stream the files were kept from: heads of chains the files do not hold count only for it',
      defaultNote: `the receipts' stream, else VERDICT_EVENTS_STREAM, else ${DEFAULT_CONFIG.events.stream}`,
    },
    { name: 'partial', type: 'boolean', description: 'the files hold a filtered view (e.g. denials only): check hashes, not gaps and checkpoints' },
    { name: 'allow-partial-start', type: 'boolean', description: 'chains may start after seq 1 (older files archived); each start is printed as a note' },
    { ...REVISIONS_FLAG, description: 'also check that the policy text of every revision the trail put live is still stored intact: nats://HOST:PORT or a directory' },
    REVISIONS_BUCKET_FLAG,
    ...NATS_AUTH_FLAGS,
    { name: 'json', type: 'boolean', description: 'print the whole report as JSON on stdout' },
  ],
  examples: [
    {
      what: 'verify everything the consumer kept, with signatures and receipts',
      command: 'verdict audit verify --keys /etc/verdict/keyring.yaml --receipts /var/lib/verdict-receipts/receipts.json /var/lib/verdict-audit/decisions-*.jsonl',
    },
    { what: 'compare with the heads in NATS KV', command: 'verdict audit verify --keys keyring.yaml --heads nats://127.0.0.1:4222 decisions-*.jsonl' },
    { what: 'heads and stored revisions as the read-only keeper user of examples/nats/nats-server.conf', command: 'verdict audit verify --heads nats://nats:4222 --revisions nats://nats:4222 --nats-user keeper --nats-password-file /etc/verdict-audit/nats.password decisions-*.jsonl' },
    { what: 'a denials-only trail, report as JSON', command: 'verdict audit verify --partial --json denials/*.jsonl' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'every chain verifies (and, with --keys, is signed)' },
    { code: EXIT.FAILURE, meaning: 'a problem was found (printed on stderr as WHERE: KIND: message), or a file could not be read' },
    { code: EXIT.USAGE, meaning: 'usage error or invalid keyring' },
  ],
  run: verify,
};

/** Loads --keys; a broken keyring is a usage problem (exit 2) with every fault listed. */
function keyringFlag(args: ParsedArgs): Keyring | undefined {
  const file = args.string('keys');
  if (!file) return undefined;
  try {
    return Keyring.load(file);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function signatureProblem(c: ChainSummary): string {
  switch (c.signature) {
    case 'none':
      return 'it has no checkpoint';
    case 'unsigned':
      return 'its checkpoints are unsigned';
    case 'unknown-key':
      return 'signed by a key not in the keyring';
    case 'key-not-allowed':
      return 'signed by a key not allowed for its instance';
    case 'bad-signature':
      return 'its signatures do not verify';
    default:
      return 'no checkpoint signature matches its records';
  }
}

/** One line per chain: which records a valid signature covers and which it does not. */
export function describeChain(c: ChainSummary, report: VerifyReport, keyring: Keyring | undefined): string {
  const end = c.closed ? 'closed by a final checkpoint' : 'no final checkpoint (instance crashed or still running)';
  if (!report.signaturesChecked) return `chain ${c.chain}: ${c.events} events, ${end}`;
  if (c.signed.length === 0) return `chain ${c.chain}: ${c.events} events, NOT SIGNED (${signatureProblem(c)}), ${end}`;
  const parts: string[] = [`seq ${formatRanges(c.signed)} signed (checkpoint at seq ${c.lastSigned!.seq} by key ${keyring?.label(c.lastSigned!.key) ?? c.lastSigned!.key})`];
  for (const [from, to] of c.unsigned) parts.push(`${from === to ? from : `${from}..${to}`} unsigned${to === c.events ? ' tail' : ''}`);
  return `chain ${c.chain}: ${parts.join(', ')}, ${end}${c.partialHistory ? ' (ranges partial: too many breaks to list)' : ''}`;
}

async function verify(args: ParsedArgs, io: CliOutput): Promise<number> {
  const keyring = keyringFlag(args);
  const auth = natsAuthFromArgs(args);
  let receipts: { file: string; doc: ReceiptsDoc } | undefined;
  const receiptsFile = args.string('receipts');
  if (receiptsFile) {
    try {
      const doc = loadReceipts(receiptsFile);
      if (!doc) throw new Error(`receipts ${receiptsFile}: no such file`);
      receipts = { file: receiptsFile, doc };
    } catch (err) {
      io.err(`verdict audit verify: ${(err as Error).message}`);
      return EXIT.FAILURE;
    }
  }
  let heads: HeadClaim[] = [];
  const headsSource = args.string('heads');
  if (headsSource) {
    try {
      heads = /^(nats|tls|wss?):\/\//.test(headsSource) ? await readKvHeads(headsSource, args.string('heads-bucket')!, 5000, auth) : readHeadsFile(headsSource);
    } catch (err) {
      io.err(`verdict audit verify: cannot read chain heads from ${redactUrl(headsSource)}: ${withCredentialHint((err as Error).message)}`);
      return EXIT.FAILURE;
    }
  }
  let report: VerifyReport;
  const revisions = VerifyRevisions.fromArgs(args);
  let revisionAudit;
  try {
    const stream = args.string('stream') ?? receipts?.doc.stream ?? process.env.VERDICT_EVENTS_STREAM ?? DEFAULT_CONFIG.events.stream;
    report = await verifyFiles(args.positionals, { partial: args.flag('partial'), allowPartialStart: args.flag('allow-partial-start'), keyring, receipts, heads, stream, onChained: revisions?.onChained });
    revisionAudit = await revisions?.run();
  } catch (err) {
    io.err(`verdict audit verify: ${withCredentialHint((err as Error).message)}`);
    return EXIT.FAILURE;
  }
  const failed = report.findingCount > 0 || (revisionAudit?.findings.length ?? 0) > 0;
  if (args.flag('json')) {
    io.out(JSON.stringify(revisionAudit ? { ...report, revisions: revisionAudit } : report, null, 2));
    return failed ? EXIT.FAILURE : EXIT.OK;
  }
  if (revisionAudit) VerifyRevisions.print(revisionAudit, io);
  for (const f of report.findings) io.err(`${f.where}: ${f.kind.toUpperCase()}: ${f.message}`);
  if (report.findingCount > report.findings.length) io.err(`… and ${report.findingCount - report.findings.length} more problems`);
  for (const a of report.anchored) io.out(`${a.where}: note: chain ${a.chain} starts at seq ${a.seq} in these files`);
  for (const n of report.notes) io.out(`note: ${n}`);
  for (const c of report.chains) io.out(describeChain(c, report, keyring));
  io.out(keyring ? `signatures checked against ${keyring.size} key${keyring.size === 1 ? '' : 's'}` : 'signatures not checked (give --keys KEYRING)');
  const problems = report.findingCount + (revisionAudit?.findings.length ?? 0);
  const first = report.findings[0]?.where ?? revisionAudit?.findings[0]?.where;
  const verdict = !failed ? 'OK' : `FAILED: ${problems} problem${problems === 1 ? '' : 's'}, first at ${first}`;
  io.out(`verified ${report.files} files, ${report.events} events, ${report.checkpoints} checkpoints: ${verdict}`);
  return failed ? EXIT.FAILURE : EXIT.OK;
}

async function consume(args: ParsedArgs, io: CliOutput): Promise<number> {
  const prefix = args.string('subject-prefix') ?? process.env.VERDICT_EVENTS_SUBJECT_PREFIX ?? DEFAULT_CONFIG.events.subjectPrefix;
  const filter = args.flag('only-denials') ? `${prefix}.*.deny` : args.string('filter');
  const outDir = args.string('out');
  const keyring = keyringFlag(args);
  const natsAuth = natsAuthFromArgs(args);
  let signingKey: SigningKey | undefined;
  const keyFile = args.string('signing-key');
  if (keyFile) {
    try {
      signingKey = loadSigningKey(keyFile).key;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  // Logs go to stderr so --stdout carries only the trail.
  const logger = createLogger(args.string('log-level') as 'info', process.stderr);
  const consumer = new AuditConsumer(
    {
      natsUrl: args.string('nats') ?? process.env.VERDICT_NATS_URL ?? DEFAULT_CONFIG.events.natsUrl,
      natsAuth,
      stream: args.string('stream') ?? process.env.VERDICT_EVENTS_STREAM ?? DEFAULT_CONFIG.events.stream,
      durable: args.string('durable')!,
      filter,
      outDir,
      rotateBytes: Number(args.string('rotate-bytes')),
      batch: 1000,
      receiptsFile: args.string('receipts') ?? (outDir ? path.join(outDir, 'keeper-receipts.json') : undefined),
      rejectsFile: args.string('rejects') ?? (outDir ? path.join(outDir, 'rejects.ndjson') : undefined),
      keyring,
      signingKey,
      exitOnFinding: args.flag('exit-on-finding'),
      connectTimeoutMs: Number(args.string('connect-timeout')) * 1000,
      unsignedGraceMs: Number(args.string('unsigned-grace')) * 1000,
      gapGraceMs: 5000,
    },
    logger,
    (text) => io.out(text.endsWith('\n') ? text.slice(0, -1) : text),
  );
  // Handlers first: a SIGTERM during start must not kill the keeper between its writes.
  const signal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await consumer.start();
  } catch (err) {
    const reason = err instanceof ConsumerStartError ? err.message : `${(err as Error).message}`;
    logger.error({ err: reason }, 'audit consumer could not start');
    io.err(`audit consumer failed to start: ${reason}`);
    return EXIT.FAILURE;
  }
  await Promise.race([signal, consumer.finished]);
  await consumer.stop();
  if (consumer.failure) io.err(`audit consumer: ${consumer.failure}`);
  return consumer.stats.findings > 0 || consumer.failure ? EXIT.FAILURE : EXIT.OK;
}
