/**
 * Every `verdict` command, in the order `verdict help` lists them.
 *
 * To add a command: write a `CommandSpec` (spec.ts) in commands/<name>.ts — its flags, positionals,
 * conflicts, examples, exit codes and `run` — and add it to COMMANDS below. A sub-command is named
 * with its group (`keys generate`); a new group also gets a line in GROUPS. To add a flag, add it
 * to the command's `flags` (and any conflict to `conflicts`): the parser, `--help`, and the tests
 * in test/cli (which also compare the flags with the docs) pick it up from there. Document the
 * command or flag in README.md "Commands" (and docs/operations.md for serve, docs/events.md for
 * audit), or test/cli/help.test.ts fails.
 */
import { auditConsumeCommand, auditVerifyCommand } from './commands/audit.js';
import { auditDiffCommand, auditExplainCommand, auditReplayCommand } from './commands/audit-evidence.js';
import { checkCommand } from './commands/check.js';
import { fleetCommand } from './commands/fleet.js';
import { policiesListCommand, policiesRollbackCommand, policiesShowCommand } from './commands/policies.js';
import { policiesPushCommand } from './commands/policies-push.js';
import { keysGenerateCommand, keysShowCommand } from './commands/keys.js';
import { serveCommand } from './commands/serve.js';
import { testCommand } from './commands/test.js';
import { validateCommand } from './commands/validate.js';
import type { CommandSpec } from './spec.js';

export const COMMANDS: readonly CommandSpec[] = [
  validateCommand,
  testCommand,
  checkCommand,
  serveCommand,
  policiesPushCommand,
  policiesListCommand,
  policiesShowCommand,
  policiesRollbackCommand,
  fleetCommand,
  auditConsumeCommand,
  auditVerifyCommand,
  auditExplainCommand,
  auditReplayCommand,
  auditDiffCommand,
  keysGenerateCommand,
  keysShowCommand,
];

/** One line for each command group (the first word of multi-word commands). */
export const GROUPS: Readonly<Record<string, string>> = {
  policies: 'publish policy sets as bundles to NATS, and list, show and roll back what a label names',
  audit: 'keep and verify the audit trail of decisions, explain and replay decisions, compare policy revisions',
  keys: 'make and show the Ed25519 keys that sign checkpoints and keeper receipts',
};
