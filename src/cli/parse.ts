/**
 * The one argument parser of the CLI: node:util parseArgs tokenizes, and every token is checked
 * against the command's declaration (spec.ts), so a mistake is an exit-2 message naming the flag
 * instead of being ignored: unknown flags (with a "did you mean"), a missing or stray value, a
 * bad value, too many positionals, missing required flags, and contradictory flags. A flag given
 * twice takes the last value.
 */
import { parseArgs as tokenize } from 'node:util';
import { HELP_FLAG, UsageError, type CommandSpec, type FlagSpec, type ParsedArgs } from './spec.js';

export function flagLabel(flag: FlagSpec): string {
  return flag.type === 'string' ? `--${flag.name} ${flag.value ?? 'VALUE'}` : `--${flag.name}`;
}

/** Every flag the command accepts, `--help` included. */
export function allFlags(spec: CommandSpec): readonly FlagSpec[] {
  return [...spec.flags, HELP_FLAG];
}

/** True if the arguments ask for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate within a third of the word's length (at least 2 edits), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = c.startsWith(word) || word.startsWith(c) ? Math.min(distance(word, c), 1) : distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

class Parsed implements ParsedArgs {
  constructor(
    private readonly spec: CommandSpec,
    private readonly values: ReadonlyMap<string, string | true>,
    readonly positionals: readonly string[],
  ) {}

  private declared(name: string, type: FlagSpec['type']): FlagSpec {
    const flag = this.spec.flags.find((f) => f.name === name);
    // A programming error, not a usage error: the command reads a flag it did not declare.
    if (!flag || flag.type !== type) throw new Error(`verdict ${this.spec.name}: reads undeclared ${type} flag --${name}`);
    return flag;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  string(name: string): string | undefined {
    const flag = this.declared(name, 'string');
    const v = this.values.get(name);
    return typeof v === 'string' ? v : flag.default;
  }

  flag(name: string): boolean {
    this.declared(name, 'boolean');
    return this.values.has(name);
  }
}

/** Checks `argv` (the arguments after the command name) against the command's declaration. */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const flags = allFlags(spec);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of flags) options[f.name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  const { tokens } = tokenize({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });

  const values = new Map<string, string | true>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    const flag = flags.find((f) => f.name === token.name);
    if (!flag) {
      const raw = token.rawName;
      const guess = raw.startsWith('--') ? closest(token.name, flags.map((f) => f.name)) : undefined;
      throw new UsageError(`unknown flag ${raw}${guess ? ` (did you mean --${guess}?)` : ''}`);
    }
    const label = flagLabel(flag);
    // A flag given again overrides the earlier value, as in most CLIs (wrappers append overrides).
    if (flag.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`--${flag.name} takes no value (got "${token.value}")`);
      values.set(flag.name, true);
      continue;
    }
    const value = token.value;
    if (value === undefined) throw new UsageError(`${token.rawName} needs a value: ${label}`);
    // `--request --explain` would read "--explain" as the file name: say so instead.
    if (!token.inlineValue && value.length > 1 && value.startsWith('-')) {
      throw new UsageError(`${token.rawName} needs a value: ${label} (got the flag ${value}; write --${flag.name}=${value} if that is the value)`);
    }
    const problem = flag.validate?.(value);
    if (problem) throw new UsageError(`--${flag.name} ${value}: ${problem}`);
    values.set(flag.name, value);
  }

  checkPositionals(spec, positionals);
  for (const f of spec.flags) {
    if (f.required && !values.has(f.name)) throw new UsageError(`${flagLabel(f)} is required`);
  }
  for (const group of spec.oneOf ?? []) {
    if (!group.some((name) => values.has(name))) {
      const labels = group.map((name) => flagLabel(spec.flags.find((f) => f.name === name)!));
      throw new UsageError(`give ${labels.length === 2 ? `${labels[0]} or ${labels[1]}` : `one of ${labels.join(', ')}`}`);
    }
  }
  for (const c of spec.conflicts ?? []) {
    const [a, b] = c.flags;
    if (values.has(a) && values.has(b)) throw new UsageError(`--${a} and --${b} cannot be used together: ${c.why}`);
  }
  return new Parsed(spec, values, positionals);
}

function checkPositionals(spec: CommandSpec, given: readonly string[]): void {
  const declared = spec.positionals ?? [];
  const variadic = declared.at(-1)?.variadic === true;
  if (!variadic && given.length > declared.length) {
    const extra = given[declared.length]!;
    throw new UsageError(
      declared.length === 0
        ? `takes no arguments (got "${extra}")`
        : `unexpected argument "${extra}": takes at most ${declared.map((p) => p.name).join(' ')}`,
    );
  }
  declared.forEach((p, i) => {
    if (p.required && given.length <= i) throw new UsageError(`needs ${p.variadic ? `at least one ${p.name}` : p.name}`);
  });
}
