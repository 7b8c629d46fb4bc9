import './sink-factory.js';
import { commandHelp, groupHelp, overview, type CommandGroupView } from './help.js';
import { processOutput, type CliOutput } from './output.js';
import { closest, wantsHelp } from './parse.js';
import { COMMANDS, GROUPS } from './registry.js';
import { runCommand } from './run-command.js';
import { EXIT, UsageError, type CommandSpec, type ExitCode } from './spec.js';
import { packageVersion } from './version.js';

/** What every command's exit code means, for `verdict help` and the README. */
export const EXIT_CODES: readonly ExitCode[] = [
  { code: EXIT.OK, meaning: 'success; check: allowed' },
  { code: EXIT.FAILURE, meaning: 'failure: policies rejected, tests failed, trail problems, server unreachable, cannot start' },
  { code: EXIT.USAGE, meaning: 'usage error or invalid input: unknown or contradictory flags, bad values, invalid request or configuration' },
  { code: EXIT.DENY, meaning: 'check: denied' },
];

function group(name: string): CommandGroupView | undefined {
  const commands = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
  if (commands.length === 0) return undefined;
  return { name, summary: GROUPS[name] ?? commands.map((c) => c.name).join(', '), commands };
}

type Resolved = { spec: CommandSpec; rest: readonly string[] } | { group: CommandGroupView; rest: readonly string[] };

/** Finds the command named by the first one or two words of argv; a UsageError if there is none. */
function resolve(argv: readonly string[]): Resolved {
  const [first = '', second] = argv;
  const two = COMMANDS.find((c) => c.name === `${first} ${second}`);
  if (two) return { spec: two, rest: argv.slice(2) };
  const one = COMMANDS.find((c) => c.name === first);
  if (one) return { spec: one, rest: argv.slice(1) };
  const g = group(first);
  if (g) {
    if (second === undefined || second.startsWith('-')) return { group: g, rest: argv.slice(1) };
    const guess = closest(second, g.commands.map((c) => c.name.slice(first.length + 1)));
    throw new UsageError(`unknown command "${first} ${second}"${guess ? ` (did you mean "${first} ${guess}"?)` : ''}\n\n${groupHelp(g)}`);
  }
  const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!)), 'help'];
  const guess = first.startsWith('-') ? undefined : closest(first, names);
  const what = first.startsWith('-') ? `unknown flag ${first}` : `unknown command "${first}"`;
  throw new UsageError(`${what}${guess ? ` (did you mean "${guess}"?)` : ''}\nRun "verdict help" for the commands.`);
}

function helpCommand(argv: readonly string[], io: CliOutput): number {
  if (argv.length === 0) {
    io.out(overview(packageVersion(), COMMANDS, EXIT_CODES));
    return EXIT.OK;
  }
  const found = resolve(argv);
  if ('group' in found) {
    if (found.rest.length > 0) throw new UsageError(`help takes a command name (got "${argv.join(' ')}")`);
    io.out(groupHelp(found.group));
  } else {
    if (found.rest.length > 0) throw new UsageError(`help takes a command name (got "${argv.join(' ')}")`);
    io.out(commandHelp(found.spec));
  }
  return EXIT.OK;
}

/** Entry point of the `verdict` CLI; returns the process exit code. */
export async function main(argv: readonly string[], io: CliOutput = processOutput): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    io.err(overview(packageVersion(), COMMANDS, EXIT_CODES));
    return EXIT.USAGE;
  }
  if (first === '--version' && argv.length === 1) {
    io.out(`verdict ${packageVersion()}`);
    return EXIT.OK;
  }
  if ((first === '--help' || first === '-h') && argv.length === 1) {
    io.out(overview(packageVersion(), COMMANDS, EXIT_CODES));
    return EXIT.OK;
  }
  let found: Resolved;
  try {
    if (first === 'help') return helpCommand(argv.slice(1), io);
    found = resolve(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`verdict: ${err.message}`);
    return EXIT.USAGE;
  }
  if ('group' in found) {
    if (wantsHelp(found.rest)) {
      io.out(groupHelp(found.group));
      return EXIT.OK;
    }
    const names = found.group.commands.map((c) => c.name.slice(found.group.name.length + 1));
    io.err(`verdict ${found.group.name}: needs a command: ${names.join(' or ')}\n\n${groupHelp(found.group)}`);
    return EXIT.USAGE;
  }
  return runCommand(found.spec, found.rest, io);
}
