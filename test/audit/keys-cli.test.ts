import { expect } from 'chai';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Keyring } from '../../src/keys/keyring.js';
import { Resources, runVerdict, writePolicies } from '../support/events-harness.js';

describe('evidence: `verdict keys` (real CLI processes)', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('generate writes a 0600 private key, never overwrites one, and adds a loadable keyring entry', async () => {
    const dir = res.tmpDir('keys');
    const keyFile = path.join(dir, 'signing.pem');
    const keyringFile = path.join(dir, 'keyring.yaml');
    const r = await runVerdict(['keys', 'generate', '--out', keyFile, '--instances', 'pdp-eu-*,pdp-us-1', '--name', 'pdp', '--keyring', keyringFile]);
    expect(r.code, r.stderr).to.equal(0);
    const id = /^key ([0-9a-f]{16}) written to /.exec(r.stdout)?.[1];
    expect(id, r.stdout).to.be.a('string');
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(readFileSync(keyFile, 'utf8')).to.match(/^-----BEGIN PRIVATE KEY-----/);
    expect(r.stdout).to.include('-----BEGIN PUBLIC KEY-----');
    // YAML quotes an id that reads as a number (16 hex digits that happen to be all decimal: 1 in ~1,800).
    expect(r.stdout).to.match(new RegExp(`\\bid: (${id}|"${id}")\\n`));

    const again = await runVerdict(['keys', 'generate', '--out', keyFile]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('exists; keys are never overwritten');

    const keeper = await runVerdict(['keys', 'generate', '--out', path.join(dir, 'keeper.pem'), '--keeper', '--keyring', keyringFile, '--json']);
    expect(keeper.code, keeper.stderr).to.equal(0);
    const keeperId = JSON.parse(keeper.stdout).id as string;
    const ring = Keyring.load(keyringFile);
    expect(ring.entries().map((e) => ({ id: e.id, name: e.name, instances: e.instances, keeper: e.keeper }))).to.deep.equal([
      { id, name: 'pdp', instances: ['pdp-eu-*', 'pdp-us-1'], keeper: false },
      { id: keeperId, name: undefined, instances: [], keeper: true },
    ]);
    expect(readFileSync(keyringFile, 'utf8')).to.match(/^# Verdict keyring/);

    const show = await runVerdict(['keys', 'show', keyFile]);
    expect(show.code).to.equal(0);
    expect(show.stdout).to.match(new RegExp(`^key ${id}\\n-----BEGIN PUBLIC KEY-----`));

    const useless = await runVerdict(['keys', 'generate', '--out', path.join(dir, 'x.pem'), '--keyring', keyringFile]);
    expect(useless.code).to.equal(2);
    expect(useless.stderr).to.include('--keyring needs --instances');
  });

  it('serve refuses a signing key that is not an Ed25519 private key, saying how to make one', async () => {
    const dir = res.tmpDir('keys');
    const bad = path.join(dir, 'bad.pem');
    writeFileSync(bad, 'not a key\n');
    const config = path.join(dir, 'verdict.yaml');
    writeFileSync(config, `events:\n  signingKeyFile: ${bad}\n`);
    const r = await runVerdict(['serve', '--policies', writePolicies(res.tmpDir('policies')), '--listen', '127.0.0.1:0', '--config', config]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`events.signingKeyFile: ${bad}: not a PEM private key`).and.include('verdict keys generate');
  });

  it('verify refuses a broken keyring with exit 2 and every problem listed', async () => {
    const dir = res.tmpDir('keys');
    const ring = path.join(dir, 'ring.yaml');
    writeFileSync(ring, 'keys:\n  - publicKey: nope\n  - instances: [a]\n');
    const trail = path.join(dir, 't.jsonl');
    writeFileSync(trail, '');
    const r = await runVerdict(['audit', 'verify', '--keys', ring, trail]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('keys[0].publicKey: not a PEM public key').and.include('keys[1].publicKey: must be a PEM public key');
  });
});
