import { UsageError } from './args.js';
import { checkCommand, checkUsage } from './commands/check.js';
import { testCommand, testUsage } from './commands/test.js';
import { validateCommand, validateUsage } from './commands/validate.js';
import { processOutput, type CliOutput } from './output.js';
import { serveCommand, serveUsage, setSinkFactory } from './commands/serve.js';
import { auditCommand, auditUsage } from './commands/audit.js';
import { keysCommand, keysUsage } from './commands/keys.js';
import { DecisionPublisher } from '../events/publisher.js';
import { ThreadedPublisher } from '../events/threaded-publisher.js';

type Command = (argv: readonly string[], io: CliOutput) => Promise<number>;

const commands: Record<string, { run: Command; usage: string }> = {
  validate: { run: validateCommand, usage: validateUsage },
  test: { run: testCommand, usage: testUsage },
  check: { run: checkCommand, usage: checkUsage },
  serve: { run: serveCommand, usage: serveUsage },
  audit: { run: auditCommand, usage: auditUsage },
  keys: { run: keysCommand, usage: keysUsage },
};

setSinkFactory(async (config, logger) => {
  if (!config.events.publisherThread) return new DecisionPublisher(config.events, logger);
  // The thread makes its own logger; carry over bindings such as the cluster worker index.
  const { service: _service, pid: _pid, ...bindings } = logger.bindings();
  return new ThreadedPublisher(config.events, logger, config.logLevel, bindings);
});

function usage(): string {
  return ['usage: verdict <command> [options]', '', ...Object.values(commands).map((c) => `  ${c.usage}`)].join('\n');
}

/** Entry point of the `verdict` CLI; returns the process exit code. */
export async function main(argv: readonly string[], io: CliOutput = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    io.err(`unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`verdict ${name}: ${err.message}\n  ${command.usage}`);
      return 2;
    }
    throw err;
  }
}
