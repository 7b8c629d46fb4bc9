import { commandHelp, shortUsage } from './help.js';
import type { CliOutput } from './output.js';
import { parseCommandArgs, wantsHelp } from './parse.js';
import { EXIT, UsageError, type CommandSpec } from './spec.js';

/** Runs one command with the arguments after its name: its --help, its flags, its usage errors (exit 2). */
export async function runCommand(spec: CommandSpec, rest: readonly string[], io: CliOutput): Promise<number> {
  if (wantsHelp(rest)) {
    io.out(commandHelp(spec));
    return EXIT.OK;
  }
  try {
    return await spec.run(parseCommandArgs(spec, rest), io);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`verdict ${spec.name}: ${err.message}\n${shortUsage(spec)}`);
    return EXIT.USAGE;
  }
}
