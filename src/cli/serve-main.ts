import './sink-factory.js';
import { serveCommand } from './commands/serve.js';
import { processOutput, type CliOutput } from './output.js';
import { runCommand } from './run-command.js';

/**
 * `verdict serve ...` without loading the other commands (bin/verdict.js): their modules (the
 * audit, evidence, test and policy-push tools, the diff library: ~65 modules) cost a server's
 * start ~0.1 s of CPU for nothing (docs/performance.md, "Cold start"). Behaves as main() for serve.
 */
export function main(argv: readonly string[], io: CliOutput = processOutput): Promise<number> {
  return runCommand(serveCommand, argv.slice(1), io);
}
