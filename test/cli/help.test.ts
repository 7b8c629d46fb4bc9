/**
 * The CLI people learn from: `--help` for every command lists every flag it accepts (taken from
 * the parser's registry, and compared with the docs so neither can drift), `--version`, and the
 * exit-2 errors for unknown, repeated and contradictory flags. Help and the named contradictions
 * run `bin/verdict.js` as a real process; the registry-wide loops call main() in-process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { main } from '../../src/cli/main.js';
import { COMMANDS } from '../../src/cli/registry.js';
import type { CommandSpec } from '../../src/cli/spec.js';
import { cleanupServerProcesses, REPO_ROOT, runVerdict } from '../support/server-process.js';

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs main() with captured output. */
async function runInProcess(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`) });
  return { code, stdout, stderr };
}

const argvOf = (spec: CommandSpec) => spec.name.split(' ');
const declaredFlags = (spec: CommandSpec) => spec.flags.map((f) => `--${f.name}`).sort();

/** The flags listed under "flags:" in a help text. */
function helpFlags(help: string): string[] {
  const lines = help.split('\n');
  const start = lines.indexOf('flags:');
  expect(start, help).to.be.greaterThan(-1);
  const flags: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    const m = /^\s+(?:-[a-zA-Z], )?(--[a-z][a-z0-9-]*)/.exec(line);
    expect(m, `not a flag line: ${line}`).to.not.equal(null);
    flags.push(m![1]!);
  }
  return flags.sort();
}

/** The lines of a markdown file from the heading that starts with `heading` to the next heading of its level or above. */
function docSection(file: string, heading: string): string[] {
  const lines = readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  expect(start, `${file}: no heading "${heading}"`).to.be.greaterThan(-1);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start, end === -1 ? undefined : end);
}

/** Flags named in the first cell of the section's table rows (`| \`--out DIR\` | …`). */
function tableFlags(file: string, heading: string): string[] {
  const flags = new Set<string>();
  for (const line of docSection(file, heading)) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`(--[a-z][a-z0-9-]*)/g)) flags.add(m[1]!);
  }
  flags.delete('--help');
  return [...flags].sort();
}

/** The README "Commands" row of a command: its second cell's flags. */
function readmeRow(name: string): { row: string; flags: string[] } {
  const rows = docSection('README.md', '## Commands').filter((l) => new RegExp(`^\\| \`verdict ${name}[\` \\[A-Z]`).test(l));
  expect(rows, `README.md "Commands" has no row for verdict ${name}`).to.have.length(1);
  const cell = rows[0]!.split(/(?<!\\)\|/)[2] ?? '';
  return { row: rows[0]!, flags: [...new Set([...cell.matchAll(/`(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!))].sort() };
}

/**
 * Where each command's flags are documented. A new command needs an entry here (and the docs):
 * `readme` compares the README row's flags; `table` a section whose table lists every flag.
 */
const DOCS: Record<string, { readme: boolean; tables: [file: string, heading: string][] }> = {
  validate: { readme: true, tables: [] },
  test: { readme: true, tables: [] },
  check: { readme: true, tables: [] },
  serve: { readme: false, tables: [['docs/operations.md', '## `verdict serve`']] },
  'policies push': { readme: true, tables: [] },
  'policies list': { readme: true, tables: [] },
  'policies show': { readme: true, tables: [] },
  'policies rollback': { readme: true, tables: [] },
  fleet: { readme: true, tables: [] },
  'audit consume': { readme: false, tables: [['docs/events.md', '## Keeping the trail']] },
  'audit verify': { readme: true, tables: [['docs/events.md', '## Checking the trail']] },
  'audit explain': { readme: true, tables: [['docs/events.md', '## Explaining a decision']] },
  'audit replay': { readme: true, tables: [['docs/events.md', '## Replaying decisions']] },
  'audit diff': { readme: true, tables: [['docs/events.md', '## Comparing revisions']] },
  'keys generate': { readme: true, tables: [['docs/events.md', '### Signing keys']] },
  'keys show': { readme: true, tables: [] },
};

/** A valid value for flags that check theirs. */
const SAMPLE: Record<string, string> = { now: '2026-03-01T09:00:00Z', 'rotate-bytes': '2048', 'log-level': 'info' };

/** Arguments that satisfy the command's required flags, flag groups and positionals. */
function minimalArgs(spec: CommandSpec): string[] {
  const args: string[] = [];
  const add = (name: string) => {
    if (args.includes(`--${name}`)) return;
    const flag = spec.flags.find((f) => f.name === name)!;
    args.push(`--${name}`, ...(flag.type === 'string' ? [SAMPLE[name] ?? 'x'] : []));
  };
  for (const f of spec.flags) if (f.required) add(f.name);
  for (const group of spec.oneOf ?? []) if (!group.some((n) => args.includes(`--${n}`))) add(group[0]!);
  for (const p of spec.positionals ?? []) if (p.required) args.push('x');
  return args;
}

describe('verdict CLI: help, version and flag errors', function () {
  this.timeout(30_000);
  after(() => cleanupServerProcesses());

  it('every command and sub-command has at least one example and declares exit codes 0 and 2', () => {
    expect(COMMANDS.map((c) => c.name)).to.include.members(['validate', 'test', 'check', 'serve', 'audit consume', 'audit verify']);
    for (const spec of COMMANDS) {
      expect(spec.examples.length, spec.name).to.be.greaterThan(0);
      for (const e of spec.examples) expect(e.command, spec.name).to.match(new RegExp(`^verdict ${spec.name}\\b`));
      expect(spec.exitCodes.map((c) => c.code), spec.name).to.include.members([0, 2]);
      // Conflicts and groups name declared flags only (a typo there would silently never fire).
      for (const name of [...(spec.conflicts ?? []).flatMap((c) => c.flags), ...(spec.oneOf ?? []).flat()]) {
        expect(spec.flags.map((f) => f.name), `${spec.name}: --${name}`).to.include(name);
      }
    }
  });

  for (const spec of COMMANDS) {
    it(`verdict ${spec.name} --help: exit 0, every flag it accepts, examples and exit codes`, async () => {
      const run = await runVerdict([...argvOf(spec), '--help']);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stderr).to.equal('');
      expect(helpFlags(run.stdout)).to.deep.equal([...declaredFlags(spec), '--help'].sort());
      expect(run.stdout).to.match(new RegExp(`^verdict ${spec.name}: `));
      const examples = run.stdout.slice(run.stdout.indexOf('\nexamples:\n'));
      expect(examples).to.match(new RegExp(`\\n  verdict ${spec.name}\\b`));
      const codes = run.stdout.slice(run.stdout.indexOf('\nexit codes:\n')).split('\n').slice(2).map((l) => Number(/^\s+(\d)\s/.exec(l)?.[1])).filter((n) => !Number.isNaN(n));
      expect(codes).to.deep.equal(spec.exitCodes.map((c) => c.code));
      // -h, "verdict help NAME", and --help after other flags print the same text.
      for (const argv of [[...argvOf(spec), '-h'], ['help', ...argvOf(spec)], [...argvOf(spec), ...minimalArgs(spec), '--help']]) {
        const other = await runInProcess(argv);
        expect(other.code, argv.join(' ')).to.equal(0);
        expect(other.stdout, argv.join(' ')).to.equal(run.stdout);
      }
    });

    it(`verdict ${spec.name}: the docs list exactly the flags the parser accepts`, () => {
      const docs = DOCS[spec.name];
      expect(docs, `no docs location known for "verdict ${spec.name}": document its flags and add it to DOCS in this test`).to.not.equal(undefined);
      const row = readmeRow(spec.name);
      if (docs!.readme) expect(row.flags, `README.md Commands row: ${row.row}`).to.deep.equal(declaredFlags(spec));
      for (const [file, heading] of docs!.tables) expect(tableFlags(file, heading), `${file} ${heading}`).to.deep.equal(declaredFlags(spec));
    });
  }

  it('verdict --version prints the package.json version; verdict help lists every command', async () => {
    const version = await runVerdict(['--version']);
    expect(version.code).to.equal(0);
    expect(version.stdout).to.equal(`verdict ${VERSION}\n`);
    const help = await runVerdict(['help']);
    expect(help.code).to.equal(0);
    for (const spec of COMMANDS) expect(help.stdout).to.match(new RegExp(`\\n  ${spec.name}  `));
    expect(help.stdout).to.contain('exit codes:');
    expect((await runInProcess(['--help'])).stdout).to.equal(help.stdout);
    // No command at all is a usage error: the same overview, on stderr.
    const bare = await runInProcess([]);
    expect(bare).to.deep.include({ code: 2, stdout: '', stderr: help.stdout });
  });

  it('contradictory flags exit 2 with a message naming both (real processes)', async () => {
    const cases: [string[], RegExp][] = [
      [['check', '--policies', 'policies', '--server', '127.0.0.1:50051', '--request', 'r.json'], /--policies and --server cannot be used together/],
      [['check', '--server', '127.0.0.1:50051', '--now', '2026-03-01T09:00:00Z', '--request', 'r.json'], /--now and --server cannot be used together/],
      [['audit', 'consume', '--stdout', '--out', 'trail'], /--out and --stdout cannot be used together/],
      [['audit', 'consume', '--stdout', '--only-denials', '--filter', 'verdict.decisions.report.*'], /--only-denials and --filter cannot be used together/],
      [['serve', '--no-events', '--audit-required'], /--no-events and --audit-required cannot be used together/],
    ];
    const runs = await Promise.all(cases.map(([argv]) => runVerdict(argv)));
    runs.forEach((run, i) => {
      const [argv, message] = cases[i]!;
      expect(run.code, `${argv.join(' ')}: ${run.stderr}`).to.equal(2);
      expect(run.stderr).to.match(message);
      expect(run.stderr).to.match(new RegExp(`^verdict ${argv[0] === 'audit' ? 'audit consume' : argv[0]}: `));
      expect(run.stderr).to.contain('usage: verdict');
      expect(run.stdout).to.equal('');
    });
  });

  it('every declared contradiction is rejected, alone and in either order', async () => {
    let checked = 0;
    for (const spec of COMMANDS) {
      for (const conflict of spec.conflicts ?? []) {
        for (const order of [conflict.flags, [...conflict.flags].reverse()]) {
          const extra: string[] = [];
          for (const name of order) {
            const flag = spec.flags.find((f) => f.name === name)!;
            if (minimalArgs(spec).includes(`--${name}`)) continue;
            extra.push(`--${name}`, ...(flag.type === 'string' ? [SAMPLE[name] ?? 'x'] : []));
          }
          const run = await runInProcess([...argvOf(spec), ...minimalArgs(spec), ...extra]);
          expect(run.code, `${spec.name} ${extra.join(' ')}: ${run.stderr}`).to.equal(2);
          expect(run.stderr).to.contain(`--${conflict.flags[0]} and --${conflict.flags[1]} cannot be used together: ${conflict.why}`);
          checked++;
        }
      }
    }
    expect(checked).to.be.at.least(2 * 9);
  });

  it('an unknown flag exits 2 for every command, with a suggestion for a near miss', async () => {
    for (const spec of COMMANDS) {
      const run = await runInProcess([...argvOf(spec), ...minimalArgs(spec), '--no-such-flag']);
      expect(run.code, spec.name).to.equal(2);
      expect(run.stderr, spec.name).to.match(new RegExp(`^verdict ${spec.name}: unknown flag --no-such-flag\\n`));
      expect(run.stderr).to.contain(`Run "verdict ${spec.name} --help"`);
    }
    const typo = await runVerdict(['check', '--polices', 'policies', '--request', 'r.json']);
    expect(typo.code).to.equal(2);
    expect(typo.stderr).to.match(/^verdict check: unknown flag --polices \(did you mean --policies\?\)/);
    const unknownCommand = await runInProcess(['chek']);
    expect(unknownCommand.code).to.equal(2);
    expect(unknownCommand.stderr).to.contain('unknown command "chek" (did you mean "check"?)');
    const bareGroup = await runInProcess(['audit']);
    expect(bareGroup.code).to.equal(2);
    expect(bareGroup.stderr).to.contain('needs a command: consume or verify');
  });

  it('a flag given twice takes the last value (a wrapper can append an override)', async () => {
    const request = path.join(REPO_ROOT, 'examples/requests/alice-edits-her-draft.json');
    const run = await runInProcess(['check', '--policies', path.join(REPO_ROOT, 'no-such-dir'), '--policies', path.join(REPO_ROOT, 'policies'), '--request', request]);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.include({ allowed: true, rule: 'owners-manage' });
  });

  it('other misuse exits 2 naming the flag: missing or flag-like value, value on a switch, bad value, extra argument, missing requirement', async () => {
    const cases: [string[], string][] = [
      [['check', '--request'], 'verdict check: --request needs a value: --request FILE|-'],
      [['check', '--request', '--explain'], 'verdict check: --request needs a value: --request FILE|- (got the flag --explain'],
      [['check', '--request', 'r.json', '--explain=yes'], 'verdict check: --explain takes no value (got "yes")'],
      [['check', '--request', 'r.json', '--now', 'yesterday'], 'verdict check: --now yesterday: must be an RFC 3339 timestamp'],
      [['check'], 'verdict check: --request FILE|- is required'],
      [['validate', 'policies', 'more'], 'verdict validate: unexpected argument "more": takes at most DIR'],
      [['audit', 'verify'], 'verdict audit verify: needs at least one FILE'],
      [['audit', 'consume', '--out', 'trail', '--rotate-bytes', '12'], 'verdict audit consume: --rotate-bytes 12: must be an integer ≥ 1024'],
      [['audit', 'consume', '--nats', 'nats://127.0.0.1:4222'], 'verdict audit consume: give --out DIR or --stdout'],
    ];
    for (const [argv, message] of cases) {
      const run = await runInProcess(argv);
      expect(run.code, argv.join(' ')).to.equal(2);
      expect(run.stderr.startsWith(message), `${argv.join(' ')}:\n${run.stderr}`).to.equal(true);
      expect(run.stdout).to.equal('');
    }
  });
});
