import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLargePolicySet } from '../../bench/generate/large-policy-set.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('cold start: packages a plain `verdict serve` does not need are not loaded', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verdict-cold-start-'));
    await writeLargePolicySet(dir, { types: 5 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const serve = (policies: string) => JSON.parse(execFileSync(process.execPath, [path.join(here, 'fixtures/serve-modules.js'), policies], { encoding: 'utf8' })) as { revision: string; loaded: string[] };

  it('plain policy files, no config file, no events, admin or declarations: no yaml, nats, prom-client or ajv', () => {
    const out = serve(dir);
    expect(out.revision).to.match(/^sha256:/);
    expect(out.loaded).to.deep.equal([]);
  });

  it('a file the fast read does not take loads yaml when it is read, and serves the same', () => {
    const [first] = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    const file = path.join(dir, first!);
    const text = fs.readFileSync(file, 'utf8');
    // An anchor: valid YAML that only the `yaml` library reads.
    fs.writeFileSync(file, text.replace('effect: deny', 'effect: &e deny'));
    try {
      const out = serve(dir);
      expect(out.loaded).to.deep.equal(['yaml']);
    } finally {
      fs.writeFileSync(file, text);
    }
  });
});
