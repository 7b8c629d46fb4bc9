import path from 'node:path';
import { AuditConsumer, ConsumerStartError } from '../../audit/consumer.js';
import { readHeadsFile, readKvHeads } from '../../audit/heads.js';
import { formatRanges } from '../../audit/ranges.js';
import { loadReceipts, type ReceiptsDoc } from '../../audit/receipts.js';
import type { ChainSummary } from '../../audit/verifier.js';
import { verifyFiles, type HeadClaim, type VerifyReport } from '../../audit/verify-files.js';
import { DEFAULT_CONFIG } from '../../config/load.js';
import { Keyring } from '../../keys/keyring.js';
import { loadSigningKey, type SigningKey } from '../../keys/signing-key.js';
import { createLogger } from '../../server/logger.js';
import { parseArgs, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import type { CliOutput } from '../output.js';

export const auditUsage = [
  'verdict audit consume [--nats URL] [--stream NAME] [--durable NAME] (--out DIR | --stdout) [--only-denials | --filter SUBJECT] [--subject-prefix P]',
  '                      [--keys KEYRING] [--receipts FILE] [--rejects FILE] [--signing-key FILE] [--exit-on-finding] [--connect-timeout S]',
  '                      [--unsigned-grace S] [--rotate-bytes N] [--log-level LEVEL]',
  '                                keep the audit trail: durable consumer → fsynced JSONL files, only valid records, verified live',
  '  verdict audit verify FILE... [--keys KEYRING] [--receipts FILE] [--heads FILE|nats://HOST:PORT] [--heads-bucket NAME]',
  '                      [--partial] [--allow-partial-start] [--json]   re-check stored trail files offline',
].join('\n');

export async function auditCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verifyCommand(rest, io);
  if (sub === 'consume') return consumeCommand(rest, io);
  throw new UsageError(sub ? `unknown audit command "${sub}"` : 'audit needs a command: consume or verify');
}

/** Loads --keys; a broken keyring is a usage problem (exit 2) with every fault listed. */
function keyringFlag(args: ParsedArgs): Keyring | undefined {
  const file = stringFlag(args, 'keys');
  if (!file) return undefined;
  try {
    return Keyring.load(file);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function seconds(args: ParsedArgs, name: string, fallback: number, min: number, max: number): number {
  const raw = stringFlag(args, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number of seconds from ${min} to ${max}`);
  return n;
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

async function verifyCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['partial', 'allow-partial-start', 'json'], ['keys', 'receipts', 'heads', 'heads-bucket']);
  if (args.positionals.length === 0) throw new UsageError('verify needs at least one FILE');
  const keyring = keyringFlag(args);
  let receipts: { file: string; doc: ReceiptsDoc } | undefined;
  const receiptsFile = stringFlag(args, 'receipts');
  if (receiptsFile) {
    try {
      const doc = loadReceipts(receiptsFile);
      if (!doc) throw new Error(`receipts ${receiptsFile}: no such file`);
      receipts = { file: receiptsFile, doc };
    } catch (err) {
      io.err(`verdict audit verify: ${(err as Error).message}`);
      return 1;
    }
  }
  let heads: HeadClaim[] = [];
  const headsSource = stringFlag(args, 'heads');
  if (headsSource) {
    try {
      heads = /^(nats|tls|wss?):\/\//.test(headsSource)
        ? await readKvHeads(headsSource, stringFlag(args, 'heads-bucket') ?? DEFAULT_CONFIG.events.headsBucket)
        : readHeadsFile(headsSource);
    } catch (err) {
      io.err(`verdict audit verify: cannot read chain heads from ${headsSource}: ${(err as Error).message}`);
      return 1;
    }
  }
  let report: VerifyReport;
  try {
    report = await verifyFiles(args.positionals, { partial: args.flags.has('partial'), allowPartialStart: args.flags.has('allow-partial-start'), keyring, receipts, heads });
  } catch (err) {
    io.err(`verdict audit verify: ${(err as Error).message}`);
    return 1;
  }
  const failed = report.findingCount > 0;
  if (args.flags.has('json')) {
    io.out(JSON.stringify(report, null, 2));
    return failed ? 1 : 0;
  }
  for (const f of report.findings) io.err(`${f.where}: ${f.kind.toUpperCase()}: ${f.message}`);
  if (report.findingCount > report.findings.length) io.err(`… and ${report.findingCount - report.findings.length} more problems`);
  for (const a of report.anchored) io.out(`${a.where}: note: chain ${a.chain} starts at seq ${a.seq} in these files`);
  for (const n of report.notes) io.out(`note: ${n}`);
  for (const c of report.chains) io.out(describeChain(c, report, keyring));
  io.out(keyring ? `signatures checked against ${keyring.size} key${keyring.size === 1 ? '' : 's'}` : 'signatures not checked (give --keys KEYRING)');
  const verdict = !failed ? 'OK' : `FAILED: ${report.findingCount} problem${report.findingCount === 1 ? '' : 's'}, first at ${report.findings[0]!.where}`;
  io.out(`verified ${report.files} files, ${report.events} events, ${report.checkpoints} checkpoints: ${verdict}`);
  return failed ? 1 : 0;
}

async function consumeCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['stdout', 'only-denials', 'exit-on-finding'], [
    'nats', 'stream', 'durable', 'out', 'filter', 'subject-prefix', 'rotate-bytes', 'log-level', 'keys', 'receipts', 'rejects', 'signing-key', 'connect-timeout', 'unsigned-grace',
  ]);
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const outDir = stringFlag(args, 'out');
  if (!outDir && !args.flags.has('stdout')) throw new UsageError('give --out DIR (rotating JSONL files) or --stdout');
  if (outDir && args.flags.has('stdout')) throw new UsageError('--out and --stdout cannot be combined');
  if (args.flags.has('only-denials') && stringFlag(args, 'filter')) throw new UsageError('--only-denials and --filter cannot be combined');
  const prefix = stringFlag(args, 'subject-prefix') ?? process.env.VERDICT_EVENTS_SUBJECT_PREFIX ?? DEFAULT_CONFIG.events.subjectPrefix;
  const filter = args.flags.has('only-denials') ? `${prefix}.*.deny` : stringFlag(args, 'filter');
  const rotate = Number(stringFlag(args, 'rotate-bytes') ?? 64 * 1024 * 1024);
  if (!Number.isInteger(rotate) || rotate < 1024) throw new UsageError('--rotate-bytes must be an integer ≥ 1024');
  const keyring = keyringFlag(args);
  let signingKey: SigningKey | undefined;
  const keyFile = stringFlag(args, 'signing-key');
  if (keyFile) {
    try {
      signingKey = loadSigningKey(keyFile).key;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const connectTimeout = seconds(args, 'connect-timeout', 5, 0.5, 3600);
  const unsignedGrace = seconds(args, 'unsigned-grace', 30, 1, 86_400);
  // Logs go to stderr so --stdout carries only the trail.
  const logger = createLogger((stringFlag(args, 'log-level') ?? 'info') as 'info', process.stderr);
  const consumer = new AuditConsumer(
    {
      natsUrl: stringFlag(args, 'nats') ?? process.env.VERDICT_NATS_URL ?? DEFAULT_CONFIG.events.natsUrl,
      stream: stringFlag(args, 'stream') ?? process.env.VERDICT_EVENTS_STREAM ?? DEFAULT_CONFIG.events.stream,
      durable: stringFlag(args, 'durable') ?? 'verdict-audit',
      filter,
      outDir,
      rotateBytes: rotate,
      batch: 1000,
      receiptsFile: stringFlag(args, 'receipts') ?? (outDir ? path.join(outDir, 'keeper-receipts.json') : undefined),
      rejectsFile: stringFlag(args, 'rejects') ?? (outDir ? path.join(outDir, 'rejects.ndjson') : undefined),
      keyring,
      signingKey,
      exitOnFinding: args.flags.has('exit-on-finding'),
      connectTimeoutMs: connectTimeout * 1000,
      unsignedGraceMs: unsignedGrace * 1000,
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
    return 1;
  }
  await Promise.race([signal, consumer.finished]);
  await consumer.stop();
  if (consumer.failure) io.err(`audit consumer: ${consumer.failure}`);
  return consumer.stats.findings > 0 || consumer.failure ? 1 : 0;
}
