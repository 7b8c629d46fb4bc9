/**
 * What a `verdict` command declares about itself. The parser (parse.ts), the help text (help.ts)
 * and the tests all read these declarations, so a flag exists, is checked and is documented in
 * one place. Commands are listed in registry.ts.
 */
import type { CliOutput } from './output.js';

/** Exit codes shared by every command (each command's `exitCodes` says what they mean for it). */
export const EXIT = {
  /** allowed / success */
  OK: 0,
  /** the command ran and failed (rejected policies, failed tests, trail problems, cannot start, …) */
  FAILURE: 1,
  /** usage error or invalid input: unknown or contradictory flags, bad values, unreadable request */
  USAGE: 2,
  /** `check`: the decision is deny */
  DENY: 3,
} as const;

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';
}

export interface FlagSpec {
  /** Long name without the dashes: `policies` for `--policies`. */
  readonly name: string;
  /** `string` takes a value (`--policies DIR`, `--policies=DIR`); `boolean` takes none. */
  readonly type: 'string' | 'boolean';
  /** One-letter alias without the dash. */
  readonly short?: string;
  /** Placeholder for the value in help and usage: `DIR`, `HOST:PORT`. Required for string flags. */
  readonly value?: string;
  /** One line for `--help`. */
  readonly description: string;
  /** Value used when the flag is absent (shown in help). */
  readonly default?: string;
  /** Shown in help as the default when it comes from elsewhere (config, environment). */
  readonly defaultNote?: string;
  /** The flag must be given. */
  readonly required?: boolean;
  /** Checks a value; returns the problem (e.g. "must be an integer ≥ 1024") or undefined. */
  readonly validate?: (value: string) => string | undefined;
}

export interface PositionalSpec {
  /** Placeholder: `DIR`, `FILE`. */
  readonly name: string;
  readonly description: string;
  /** At least one must be given (default: optional). */
  readonly required?: boolean;
  /** Takes every remaining argument (`FILE...`); only the last positional may be variadic. */
  readonly variadic?: boolean;
}

/** Two flags that cannot be given together, and why (shown in the error and in help). */
export interface Conflict {
  readonly flags: readonly [string, string];
  readonly why: string;
}

export interface Example {
  readonly command: string;
  readonly what: string;
}

export interface ExitCode {
  readonly code: number;
  readonly meaning: string;
}

/** The flags and positionals a command was called with, after every check passed. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  /** True if the flag was given on the command line (defaults do not count). */
  has(name: string): boolean;
  /** The value of a string flag: given, else its declared default, else undefined. */
  string(name: string): string | undefined;
  /** A boolean flag: given or not. */
  flag(name: string): boolean;
}

export interface CommandSpec {
  /** `check`, or `audit consume` for a sub-command (the group is the first word). */
  readonly name: string;
  /** One line, shown in `verdict help` and at the top of `--help`. */
  readonly summary: string;
  /** Usage lines after `verdict`; generated from flags and positionals when absent. */
  readonly usage?: readonly string[];
  /** Paragraphs shown after the usage. */
  readonly details?: readonly string[];
  readonly flags: readonly FlagSpec[];
  readonly positionals?: readonly PositionalSpec[];
  readonly conflicts?: readonly Conflict[];
  /** Groups of flags of which at least one must be given (e.g. `--out` or `--stdout`). */
  readonly oneOf?: readonly (readonly string[])[];
  /** At least one. */
  readonly examples: readonly Example[];
  readonly exitCodes: readonly ExitCode[];
  run(args: ParsedArgs, io: CliOutput): Promise<number>;
}

/** `--help`/`-h`: added to every command by the parser, listed last in help. */
export const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', type: 'boolean', description: 'show this help and exit' };
