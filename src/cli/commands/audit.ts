import { AuditConsumer } from '../../audit/consumer.js';
import { verifyFiles } from '../../audit/verify-files.js';
import { DEFAULT_CONFIG } from '../../config/load.js';
import { createLogger } from '../../server/logger.js';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import type { CliOutput } from '../output.js';

export const auditUsage = [
  'verdict audit consume [--nats URL] [--stream NAME] [--durable NAME] (--out DIR | --stdout) [--only-denials | --filter SUBJECT] [--subject-prefix P]',
  '                                keep the audit trail: durable consumer → fsynced JSONL files, chains verified live',
  '  verdict audit verify FILE... [--partial] [--allow-partial-start]   re-check stored trail files offline',
].join('\n');

export async function auditCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verifyCommand(rest, io);
  if (sub === 'consume') return consumeCommand(rest, io);
  throw new UsageError(sub ? `unknown audit command "${sub}"` : 'audit needs a command: consume or verify');
}

async function verifyCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['partial', 'allow-partial-start', 'json'], []);
  if (args.positionals.length === 0) throw new UsageError('verify needs at least one FILE');
  const report = await verifyFiles(args.positionals, { partial: args.flags.has('partial'), allowPartialStart: args.flags.has('allow-partial-start') });
  if (args.flags.has('json')) {
    io.out(JSON.stringify(report, null, 2));
    return report.findings.length > 0 ? 1 : 0;
  }
  for (const f of report.findings) io.err(`${f.where}: ${f.kind.toUpperCase()}: ${f.message}`);
  for (const a of report.anchored) io.out(`${a.where}: note: chain ${a.chain} starts at seq ${a.seq} in these files`);
  for (const c of report.chains) io.out(`chain ${c.chain}: ${c.events} events${c.closed ? ', closed by a final checkpoint' : ', no final checkpoint (instance crashed or still running)'}`);
  const verdict = report.findings.length === 0 ? 'OK' : `FAILED: ${report.findings.length} problem${report.findings.length === 1 ? '' : 's'}, first at ${report.findings[0]!.where}`;
  io.out(`verified ${report.files} files, ${report.events} events, ${report.checkpoints} checkpoints: ${verdict}`);
  return report.findings.length > 0 ? 1 : 0;
}

async function consumeCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['stdout', 'only-denials'], ['nats', 'stream', 'durable', 'out', 'filter', 'subject-prefix', 'rotate-bytes', 'log-level']);
  const outDir = stringFlag(args, 'out');
  if (!outDir && !args.flags.has('stdout')) throw new UsageError('give --out DIR (rotating JSONL files) or --stdout');
  const prefix = stringFlag(args, 'subject-prefix') ?? process.env.VERDICT_EVENTS_SUBJECT_PREFIX ?? DEFAULT_CONFIG.events.subjectPrefix;
  const filter = args.flags.has('only-denials') ? `${prefix}.*.deny` : stringFlag(args, 'filter');
  const rotate = Number(stringFlag(args, 'rotate-bytes') ?? 64 * 1024 * 1024);
  if (!Number.isInteger(rotate) || rotate < 1024) throw new UsageError('--rotate-bytes must be an integer ≥ 1024');
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
    },
    logger,
    (text) => io.out(text.endsWith('\n') ? text.slice(0, -1) : text),
  );
  try {
    await consumer.start();
  } catch (err) {
    io.err(`audit consumer failed to start: ${(err as Error).message}`);
    return 1;
  }
  return new Promise((resolve) => {
    const stop = () => void consumer.stop().then(() => resolve(consumer.stats.findings > 0 ? 1 : 0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
