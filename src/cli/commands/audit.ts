import { AuditConsumer } from '../../audit/consumer.js';
import { verifyFiles } from '../../audit/verify-files.js';
import { DEFAULT_CONFIG } from '../../config/load.js';
import { createLogger } from '../../server/logger.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const auditConsumeCommand: CommandSpec = {
  name: 'audit consume',
  summary: 'keep the audit trail: durable JetStream consumer → fsynced JSONL files, chains verified live',
  details: ['Runs until SIGTERM or SIGINT. Logs are JSON lines on stderr, so --stdout carries only the trail.'],
  flags: [
    { name: 'out', type: 'string', value: 'DIR', description: 'write rotating JSONL files in DIR (created if missing)' },
    { name: 'stdout', type: 'boolean', description: 'write trail lines to standard output instead' },
    { name: 'nats', type: 'string', value: 'URL', description: 'NATS server', defaultNote: `VERDICT_NATS_URL, else ${DEFAULT_CONFIG.events.natsUrl}` },
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
    { what: 'keep everything in fsynced files', command: 'verdict audit consume --out /var/lib/verdict-audit' },
    { what: 'print the denials; a second keeper needs its own durable name', command: 'verdict audit consume --stdout --only-denials --durable verdict-denials' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'stopped cleanly, no problem found in the trail' },
    { code: EXIT.FAILURE, meaning: 'a problem was found in the trail while it ran, or it could not start' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: consume,
};

export const auditVerifyCommand: CommandSpec = {
  name: 'audit verify',
  summary: 're-check stored trail files offline: every hash chain, gap and checkpoint',
  positionals: [{ name: 'FILE', description: 'trail files in order (a shell glob sorts the consumer\'s names correctly)', required: true, variadic: true }],
  flags: [
    { name: 'partial', type: 'boolean', description: 'the files hold a filtered view (e.g. denials only): check hashes, not gaps and checkpoints' },
    { name: 'allow-partial-start', type: 'boolean', description: 'chains may start after seq 1 (older files archived); each start is printed as a note' },
    { name: 'json', type: 'boolean', description: 'print the whole report as JSON on stdout' },
  ],
  examples: [
    { what: 'verify everything the consumer kept', command: 'verdict audit verify /var/lib/verdict-audit/*.jsonl' },
    { what: 'a denials-only trail, report as JSON', command: 'verdict audit verify --partial --json denials/*.jsonl' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'every chain verifies' },
    { code: EXIT.FAILURE, meaning: 'a problem was found (printed on stderr as FILE:LINE: KIND: message)' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: verify,
};

async function verify(args: ParsedArgs, io: CliOutput): Promise<number> {
  const report = await verifyFiles(args.positionals, { partial: args.flag('partial'), allowPartialStart: args.flag('allow-partial-start') });
  if (args.flag('json')) {
    io.out(JSON.stringify(report, null, 2));
    return report.findings.length > 0 ? EXIT.FAILURE : EXIT.OK;
  }
  for (const f of report.findings) io.err(`${f.where}: ${f.kind.toUpperCase()}: ${f.message}`);
  for (const a of report.anchored) io.out(`${a.where}: note: chain ${a.chain} starts at seq ${a.seq} in these files`);
  for (const c of report.chains) io.out(`chain ${c.chain}: ${c.events} events${c.closed ? ', closed by a final checkpoint' : ', no final checkpoint (instance crashed or still running)'}`);
  const verdict = report.findings.length === 0 ? 'OK' : `FAILED: ${report.findings.length} problem${report.findings.length === 1 ? '' : 's'}, first at ${report.findings[0]!.where}`;
  io.out(`verified ${report.files} files, ${report.events} events, ${report.checkpoints} checkpoints: ${verdict}`);
  return report.findings.length > 0 ? EXIT.FAILURE : EXIT.OK;
}

async function consume(args: ParsedArgs, io: CliOutput): Promise<number> {
  const prefix = args.string('subject-prefix') ?? process.env.VERDICT_EVENTS_SUBJECT_PREFIX ?? DEFAULT_CONFIG.events.subjectPrefix;
  const filter = args.flag('only-denials') ? `${prefix}.*.deny` : args.string('filter');
  // Logs go to stderr so --stdout carries only the trail.
  const logger = createLogger(args.string('log-level') as 'info', process.stderr);
  const consumer = new AuditConsumer(
    {
      natsUrl: args.string('nats') ?? process.env.VERDICT_NATS_URL ?? DEFAULT_CONFIG.events.natsUrl,
      stream: args.string('stream') ?? process.env.VERDICT_EVENTS_STREAM ?? DEFAULT_CONFIG.events.stream,
      durable: args.string('durable')!,
      filter,
      outDir: args.string('out'),
      rotateBytes: Number(args.string('rotate-bytes')),
      batch: 1000,
    },
    logger,
    (text) => io.out(text.endsWith('\n') ? text.slice(0, -1) : text),
  );
  try {
    await consumer.start();
  } catch (err) {
    io.err(`audit consumer failed to start: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
  return new Promise((resolve) => {
    const stop = () => void consumer.stop().then(() => resolve(consumer.stats.findings > 0 ? EXIT.FAILURE : EXIT.OK));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
