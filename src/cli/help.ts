/** Help text, generated from the command declarations (spec.ts) so it cannot leave a flag out. */
import { allFlags, flagLabel } from './parse.js';
import type { CommandSpec, ExitCode } from './spec.js';

function table(rows: readonly (readonly [string, string])[], indent = '  '): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => (right ? `${indent}${left.padEnd(width)}  ${right}` : `${indent}${left}`));
}

function positionalLabel(p: NonNullable<CommandSpec['positionals']>[number]): string {
  const name = p.variadic ? `${p.name}...` : p.name;
  return p.required ? name : `[${name}]`;
}

/** `verdict check --request FILE|- [flags]`: required flags, one-of groups, positionals. */
export function usageLines(spec: CommandSpec): string[] {
  if (spec.usage) return spec.usage.map((u) => `verdict ${u}`);
  const parts = [`verdict ${spec.name}`];
  const inGroups = new Set((spec.oneOf ?? []).flat());
  for (const f of spec.flags) if (f.required) parts.push(flagLabel(f));
  for (const group of spec.oneOf ?? []) parts.push(`(${group.map((n) => flagLabel(spec.flags.find((f) => f.name === n)!)).join(' | ')})`);
  if (spec.flags.some((f) => !f.required && !inGroups.has(f.name))) parts.push('[flags]');
  for (const p of spec.positionals ?? []) parts.push(positionalLabel(p));
  return [parts.join(' ')];
}

function flagRow(f: ReturnType<typeof allFlags>[number]): [string, string] {
  const label = f.short ? `-${f.short}, ${flagLabel(f)}` : `    ${flagLabel(f)}`;
  const dflt = f.default !== undefined ? ` (default: ${f.default})` : f.defaultNote ? ` (default: ${f.defaultNote})` : '';
  return [label, `${f.description}${f.required ? ' (required)' : ''}${dflt}`];
}

export function exitCodeLines(codes: readonly ExitCode[]): string[] {
  return table(codes.map((c) => [String(c.code), c.meaning]));
}

/** The full `verdict COMMAND --help` text. */
export function commandHelp(spec: CommandSpec): string {
  const out = [`verdict ${spec.name}: ${spec.summary}`, '', 'usage:', ...usageLines(spec).map((u) => `  ${u}`)];
  for (const d of spec.details ?? []) out.push('', d);
  if (spec.positionals?.length) out.push('', 'arguments:', ...table(spec.positionals.map((p) => [positionalLabel(p), p.description])));
  out.push('', 'flags:', ...table(allFlags(spec).map(flagRow)));
  if (spec.conflicts?.length) out.push('', 'not together:', ...table(spec.conflicts.map((c) => [`--${c.flags[0]} / --${c.flags[1]}`, c.why])));
  out.push('', 'examples:');
  for (const e of spec.examples) out.push(`  # ${e.what}`, `  ${e.command}`);
  out.push('', 'exit codes:', ...exitCodeLines(spec.exitCodes));
  return out.join('\n');
}

/** The short usage printed with a usage error. */
export function shortUsage(spec: CommandSpec): string {
  return [...usageLines(spec).map((u, i) => `${i === 0 ? 'usage: ' : '       '}${u}`), `Run "verdict ${spec.name} --help" for every flag, examples and exit codes.`].join('\n');
}

export interface CommandGroupView {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
}

/** `verdict GROUP --help`: the sub-commands of a group such as `audit`. */
export function groupHelp(group: CommandGroupView): string {
  return [
    `verdict ${group.name}: ${group.summary}`,
    '',
    'commands:',
    ...table(group.commands.map((c) => [c.name, c.summary])),
    '',
    `Run "verdict ${group.name} COMMAND --help" for a command's flags, examples and exit codes.`,
  ].join('\n');
}

/** `verdict help`: every command, the global flags and the exit codes. */
export function overview(version: string, commands: readonly CommandSpec[], exitCodes: readonly ExitCode[]): string {
  return [
    `verdict ${version}: a policy decision point (gRPC, CEL policies, tamper-evident decision stream)`,
    '',
    'usage: verdict COMMAND [flags]',
    '',
    'commands:',
    ...table([...commands.map((c): [string, string] => [c.name, c.summary]), ['help [COMMAND]', 'show the help of a command (also: verdict COMMAND --help)']]),
    '',
    'flags:',
    ...table([
      ['-h, --help', 'show this help and exit'],
      ['    --version', 'print the version and exit'],
    ]),
    '',
    'exit codes:',
    ...exitCodeLines(exitCodes),
    '',
    'Run "verdict COMMAND --help" for its flags, examples and exit codes.',
  ].join('\n');
}
