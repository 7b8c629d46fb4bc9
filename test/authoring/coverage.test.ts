import { expect } from 'chai';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { cleanupServerProcesses, makeTempDir, runVerdict, spawnVerdict, writeFile } from '../support/server-process.js';
import { waitFor } from '../support/events-harness.js';

const require = createRequire(import.meta.url);
interface LcovRecord {
  file: string;
  lines: { found: number; hit: number; details: { line: number; hit: number }[] };
  functions: { found: number; hit: number; details: { name: string; line: number; hit: number }[] };
  branches: { found: number; hit: number; details: { line: number; block: number; branch: number; taken: number }[] };
}
const lcovParse = require('lcov-parse') as (input: string, cb: (err: unknown, data: LcovRecord[]) => void) => void;

// Line numbers matter: the expected report below names them.
const POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: doc
variables:
  is_owner: resource.attributes.owner == subject.id
derivedRoles:
  - name: owner
    when: variables.is_owner
rules:
  - name: deny-archived
    actions: [edit]
    effect: deny
    when: resource.attributes.archived && !("admin" in subject.roles)
  - name: owners-edit
    actions: [read, edit]
    effect: allow
    roles: [owner]
  - name: admins-delete
    actions: [delete]
    effect: allow
    roles: [admin]
`;

const TESTS = `name: doc
tests:
  - name: alice reads her document
    request:
      subject: {id: alice, roles: [employee]}
      action: read
      resource: {type: doc, id: d1, attributes: {owner: alice, archived: false}}
    expect: allow
    rule: owners-edit
  - name: bob cannot edit alice's document
    request:
      subject: {id: bob, roles: [employee]}
      action: edit
      resource: {type: doc, id: d1, attributes: {owner: alice, archived: false}}
    expect: deny
`;

function fixture(): string {
  const dir = makeTempDir('coverage-policies');
  writeFile(dir, 'doc.yaml', POLICY);
  writeFile(dir, 'doc_test.yaml', TESTS);
  return dir;
}

describe('verdict test --coverage', function () {
  this.timeout(60_000);
  after(cleanupServerProcesses);

  /*
   * Worked out by hand. Test 1 (read): only owners-edit is a candidate; the derived role owner
   * runs variables.is_owner (true) and holds; owners-edit applies. Test 2 (edit by bob): the deny
   * rule's condition runs: `resource.attributes.archived` is false, so `&&` stops there and the
   * `!(...)` side never runs; is_owner is false, owner does not hold, owners-edit does not apply.
   * admins-delete is never a candidate. So: rules 1/3 applied (33.33%); derived role owner true
   * and false (1/1); variable is_owner true and false (1/1); branch outcomes 1/4 (the left operand
   * false only; the right operand never evaluated).
   */
  it('counts rules, derived roles, variables and branches as worked out by hand, and writes JSON and LCOV', async () => {
    const dir = fixture();
    const out = path.join(makeTempDir('coverage-out'), 'report');
    const run = await runVerdict(['test', dir, '--coverage', '--coverage-dir', out]);
    expect(run.code, run.stderr + run.stdout).to.equal(0);
    expect(run.stdout).to.match(/doc\.yaml +rules 33\.33% \(1\/3\) +derived roles 100% \(1\/1\) +variables 100% \(1\/1\) +branches 25% \(1\/4\)/);
    const notCovered = run.stdout.split('\n').filter((l) => l.startsWith(`  ${dir}`));
    expect(notCovered).to.deep.equal([
      `  ${dir}/doc.yaml:10:11: rule "deny-archived" never applied`,
      `  ${dir}/doc.yaml:13:11: rule "deny-archived": branch \`resource.attributes.archived\` never true`,
      `  ${dir}/doc.yaml:13:43: rule "deny-archived": branch \`!("admin" in subject.roles)\` never evaluated`,
      `  ${dir}/doc.yaml:18:11: rule "admins-delete" never applied (never considered: no test has its resource type and action)`,
    ]);

    const json = JSON.parse(readFileSync(path.join(out, 'coverage.json'), 'utf8'));
    const doc = json.policies[0];
    expect(doc.rules).to.deep.equal([
      { name: 'deny-archived', line: 10, column: 11, applied: 0, notApplied: 1, conditionTrue: 0, conditionFalse: 1, errors: 0 },
      { name: 'owners-edit', line: 14, column: 11, applied: 1, notApplied: 1, conditionTrue: 0, conditionFalse: 0, errors: 0 },
      { name: 'admins-delete', line: 18, column: 11, applied: 0, notApplied: 0, conditionTrue: 0, conditionFalse: 0, errors: 0 },
    ]);
    expect(doc.derivedRoles).to.deep.equal([{ name: 'owner', line: 7, column: 11, true: 1, false: 1, errors: 0 }]);
    expect(doc.variables).to.deep.equal([{ name: 'is_owner', line: 5, column: 3, true: 1, false: 1, other: 0, errors: 0 }]);
    expect(doc.branches.map((b: { text: string; true: number; false: number }) => [b.text, b.true, b.false])).to.deep.equal([
      ['resource.attributes.archived', 0, 1],
      ['!("admin" in subject.roles)', 0, 0],
    ]);
    expect(json.summary.rules).to.deep.equal({ covered: 1, total: 3, percent: 33.33 });

    // A real LCOV parser reads the tracefile, and its totals agree with the details.
    const text = readFileSync(path.join(out, 'lcov.info'), 'utf8');
    const records = await new Promise<LcovRecord[]>((resolve, reject) => lcovParse(text, (err, data) => (err ? reject(new Error(String(err))) : resolve(data))));
    expect(records).to.have.length(1);
    const r = records[0]!;
    expect(r.file).to.equal(`${dir}/doc.yaml`);
    expect(r.functions.details.map((f) => [f.name, f.line, f.hit])).to.deep.equal([
      ['rule:deny-archived', 10, 0],
      ['rule:owners-edit', 14, 1],
      ['rule:admins-delete', 18, 0],
      ['derivedRole:owner', 7, 1],
      ['variable:is_owner', 5, 1],
    ]);
    expect([r.functions.found, r.functions.hit]).to.deep.equal([5, 3]);
    expect(r.branches.details.map((b) => [b.line, b.block, b.branch, b.taken])).to.deep.equal([[13, 0, 0, 0], [13, 0, 1, 1], [13, 1, 0, 0], [13, 1, 1, 0]]);
    expect([r.branches.found, r.branches.hit]).to.deep.equal([4, 1]);
    expect(r.lines.details).to.deep.equal([{ line: 10, hit: 1 }, { line: 14, hit: 2 }, { line: 18, hit: 0 }]);
    expect([r.lines.found, r.lines.hit]).to.deep.equal([3, 2]);
  });

  it('--min-coverage fails with exit code 4 under the threshold, and passes at or over it', async () => {
    const dir = fixture();
    const out = makeTempDir('coverage-out');
    const under = await runVerdict(['test', dir, '--min-coverage', '50', '--coverage-dir', out]);
    expect(under.code).to.equal(4);
    expect(under.stderr).to.match(/rule coverage 33\.33% is under --min-coverage 50%/);
    const over = await runVerdict(['test', dir, '--min-coverage', '33', '--coverage-dir', out]);
    expect(over.code, over.stderr).to.equal(0);
    const bad = await runVerdict(['test', dir, '--min-coverage', '101']);
    expect(bad.code).to.equal(2);
  });

  it('the example policies reach 100% rule coverage', async () => {
    const run = await runVerdict(['test', 'policies', '--min-coverage', '100', '--coverage-dir', makeTempDir('coverage-out')]);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/all policies +rules 100% \(23\/23\)/);
  });

  it('--watch runs again when a file changes, on every atomic save, and for a file in a new subdirectory', async () => {
    const dir = fixture();
    const proc = spawnVerdict(['test', dir, '--watch']);
    const runs = () => [...proc.stdout.matchAll(/\[watch\] exit (\d+)/g)].map((m) => Number(m[1]));
    const waitForRun = (n: number) => waitFor(`run ${n} (runs so far: ${JSON.stringify(runs())}; stderr: ${proc.stderr.slice(-300)})`, () => runs().length >= n, 15_000);
    await waitForRun(1);
    // Written straight after the first "[watch] exit" line: the watch is armed before the first run.
    writeFileSync(path.join(dir, 'doc_test.yaml'), TESTS.replace('expect: allow', 'expect: deny'));
    await waitForRun(2);
    expect(proc.stdout).to.match(/FAIL doc › alice reads her document/);
    // An editor's atomic save, twice: a temporary file renamed over the suite.
    const atomicSave = (content: string) => {
      writeFileSync(path.join(dir, '.doc_test.yaml.tmp'), content);
      renameSync(path.join(dir, '.doc_test.yaml.tmp'), path.join(dir, 'doc_test.yaml'));
    };
    atomicSave(TESTS);
    await waitForRun(3);
    atomicSave(TESTS.replace('expect: allow', 'expect: deny'));
    await waitForRun(4);
    atomicSave(TESTS);
    await waitForRun(5);
    // A suite in a directory created after the watch started.
    mkdirSync(path.join(dir, 'more'));
    writeFileSync(path.join(dir, 'more', 'more_test.yaml'), TESTS.replace('name: doc', 'name: more').replace('expect: allow', 'expect: deny'));
    await waitForRun(6);
    expect(runs()).to.deep.equal([0, 1, 0, 1, 0, 1]);
    expect(proc.stdout).to.match(/FAIL more › alice reads her document/);
    proc.kill('SIGINT');
    expect((await proc.exited).code).to.equal(0);
  });
});
