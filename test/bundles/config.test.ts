/** The policySource and fleet settings: defaults, sources (file, environment, flag) and every check. */
import { expect } from 'chai';
import { ConfigError, DEFAULT_CONFIG, loadConfig, validateConfig } from '../../src/config/load.js';
import { policySourceName } from '../../src/server/policy-source.js';
import { cleanupServerProcesses, runVerdict } from '../support/server-process.js';

function problems(raw: Record<string, unknown>): string[] {
  try {
    validateConfig({ ...(DEFAULT_CONFIG as unknown as Record<string, unknown>), ...raw });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('configuration: policySource and fleet', () => {
  after(() => cleanupServerProcesses());

  it('defaults to the directory; the flag and VERDICT_POLICY_SOURCE set a bundle label', () => {
    expect(loadConfig({}, {}).policySource.url).to.equal('');
    expect(policySourceName(loadConfig({ policies: 'pol' }, {}))).to.equal('pol');
    const env = loadConfig({}, { VERDICT_POLICY_SOURCE: 'nats://n:4222/staging' });
    expect(env.policySource.url).to.equal('nats://n:4222/staging');
    expect(policySourceName(env)).to.equal('nats://n:4222/staging');
    expect(loadConfig({ policySource: 'nats://m:4222/prod' }, { VERDICT_POLICY_SOURCE: 'nats://n:4222/staging' }).policySource.url).to.equal('nats://m:4222/prod');
  });

  it('refuses bad values, naming the setting', () => {
    const p = problems({
      policySource: { ...DEFAULT_CONFIG.policySource, url: 'nats://u:pw@h:4222/p', bucket: 'a.b', cacheDir: '', timeoutMs: 10, maxBundleBytes: 10, pollIntervalMs: -1, extra: 1 },
      fleet: { bucket: 'x y', heartbeatMs: 10, natsUrl: 'http://h' },
    });
    expect(p).to.include('policySource.url: credentials in the URL are not accepted (they would show in logs and GetPolicySet); give them in events.natsUser and events.natsPasswordFile (or another events.nats* credential), which the policy source shares with the decision stream');
    expect(p).to.include('policySource.bucket: "a.b" must be 1 to 64 letters, digits, _ and -');
    expect(p.some((x) => x.startsWith('policySource.cacheDir: must be a non-empty string'))).to.equal(true);
    expect(p).to.include('policySource.timeoutMs: must be an integer from 100 to 600000 (got 10)');
    expect(p).to.include('policySource.maxBundleBytes: must be an integer from 1024 to 1073741824 (got 10)');
    expect(p).to.include('policySource.pollIntervalMs: must be an integer from 0 to 3600000 (got -1)');
    expect(p.some((x) => x.startsWith('policySource.extra: unknown setting'))).to.equal(true);
    expect(p).to.include('fleet.bucket: "x y" must be 1 to 64 letters, digits, _ and - ("" = off)');
    expect(p).to.include('fleet.heartbeatMs: must be an integer from 1000 to 600000 (got 10)');
    expect(p).to.include('fleet.natsUrl: "http://h" must look like nats://host:4222 ("" = the policy source\'s NATS)');
    expect(problems({ fleet: { ...DEFAULT_CONFIG.fleet, bucket: '' } })).to.deep.equal([]);
  });

  it('verdict serve: --policy-source with a bad URL, or with --policies, is a usage error (exit 2)', async () => {
    const bad = await runVerdict(['serve', '--policy-source', 'http://h/p', '--no-events']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('policySource.url: "http://h/p" must look like nats://HOST:PORT/LABEL');
    const both = await runVerdict(['serve', '--policies', 'policies', '--policy-source', 'nats://h:4222/p']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.contain('--policies and --policy-source cannot be used together');
  });
});
