/** Caller identities by kind: SPIFFE IDs parsed per the spec, allowlist entries validated at load. */
import { expect } from 'chai';
import { CallerAllowlist, callerFromCertificate, parseAllowlistEntry } from '../../src/auth/callers.js';
import { parseSpiffeId } from '../../src/auth/spiffe-id.js';
import { ConfigError, DEFAULT_CONFIG, validateConfig } from '../../src/config/load.js';

describe('gateway: SPIFFE IDs', () => {
  it('accepts IDs as the SPIFFE ID specification writes them', () => {
    for (const id of ['spiffe://example.org', 'spiffe://example.org/ns/edge/sa/envoy', 'spiffe://a-b_c.d9/Path.With-_.chars/x', `spiffe://td/${'a'.repeat(2000)}`]) {
      const r = parseSpiffeId(id);
      expect(r.ok, `${id}: ${r.ok ? '' : r.problem}`).to.equal(true);
    }
  });

  const refused: [string, RegExp][] = [
    ['spiffe://example.org/ns/docs/../edge/x', /a "\.\." segment/],
    ['spiffe://example.org/ns/./edge', /a "\." segment/],
    ['spiffe://example.org/ns//edge', /empty segment/],
    ['spiffe://example.org/ns/edge/', /must not end with "\/"/],
    ['spiffe://example.org/ns/%2e%2e/edge', /path segment "%2e%2e" may hold only/],
    ['spiffe://example.org/ns/edge?x=1', /no percent-encoding, query or fragment/],
    ['spiffe://example.org/ns/edge#frag', /no percent-encoding, query or fragment/],
    ['spiffe://Example.org/ns/edge', /trust domain "Example.org" may hold only lower-case/],
    ['spiffe://example.org:8443/ns/edge', /no port/],
    ['spiffe://user@example.org/ns/edge', /trust domain "user@example.org"/],
    ['spiffe:///ns/edge', /trust domain is missing/],
    ['SPIFFE://example.org/ns/edge', /in lower case/],
    ['https://example.org/ns/edge', /must start with "spiffe:\/\/"/],
    [`spiffe://td/${'a'.repeat(2048)}`, /longer than 2048 bytes/],
    ['spiffe://example.org/ns/ed\u0000ge', /may hold only/],
  ];
  for (const [id, problem] of refused) {
    it(`refuses ${JSON.stringify(id.length > 60 ? `${id.slice(0, 40)}…` : id)}`, () => {
      const r = parseSpiffeId(id);
      expect(r.ok).to.equal(false);
      expect(r.ok ? '' : r.problem).to.match(problem);
    });
  }
});

describe('gateway: caller identity from a certificate', () => {
  const cert = (subjectaltname: string | undefined, CN?: string | string[]) => ({ subjectaltname, subject: (CN === undefined ? {} : { CN }) as never });

  it('is the SPIFFE ID of an X.509-SVID (exactly one URI SAN, a valid SPIFFE ID)', () => {
    expect(callerFromCertificate(cert('URI:spiffe://example.org/ns/edge/sa/envoy, DNS:envoy', 'envoy'))).to.deep.equal({ id: 'spiffe://example.org/ns/edge/sa/envoy', kind: 'spiffe' });
  });

  it('never takes a SPIFFE ID from the subject CN', () => {
    expect(callerFromCertificate(cert(undefined, 'spiffe://example.org/ns/edge/sa/envoy'))).to.deep.equal({ id: 'cn:spiffe://example.org/ns/edge/sa/envoy', kind: 'cn' });
  });

  it('ignores malformed SPIFFE URI SANs, and SPIFFE IDs beside other URI SANs', () => {
    expect(callerFromCertificate(cert('URI:spiffe://example.org/ns/docs/../edge/x', 'job'))).to.deep.equal({ id: 'cn:job', kind: 'cn' });
    expect(callerFromCertificate(cert('URI:spiffe://example.org/a, URI:https://a.example/', 'job'))).to.deep.equal({ id: 'cn:job', kind: 'cn' });
    expect(callerFromCertificate(cert('URI:spiffe://example.org/a, URI:spiffe://example.org/b'))).to.equal(undefined);
  });

  it('takes a non-SPIFFE URI SAN as kind uri, never one spelled cn:', () => {
    expect(callerFromCertificate(cert('URI:https://svc.example.org/', 'svc'))).to.deep.equal({ id: 'https://svc.example.org/', kind: 'uri' });
    expect(callerFromCertificate(cert('URI:cn:batch-job.internal', 'other'))).to.deep.equal({ id: 'cn:other', kind: 'cn' });
  });

  it('does not split a quoted SAN value that holds ", URI:" (Node quotes such values)', () => {
    const injected = 'URI:"https://x.example/, URI:spiffe://example.org/ns/edge/sa/envoy"';
    expect(callerFromCertificate(cert(injected, 'x'))).to.deep.equal({ id: 'https://x.example/, URI:spiffe://example.org/ns/edge/sa/envoy', kind: 'uri' });
  });

  it('uses no CN when the subject has several', () => {
    expect(callerFromCertificate(cert(undefined, ['a', 'b']))).to.equal(undefined);
  });
});

describe('gateway: caller allowlist', () => {
  const list = new CallerAllowlist(['spiffe://example.org/ns/edge/sa/envoy', 'spiffe://example.org/ns/docs/*', 'cn:batch-job.internal', 'uri:https://svc.example.org/']);

  it('matches each entry only against identities of its kind', () => {
    expect(list.allows({ id: 'spiffe://example.org/ns/edge/sa/envoy', kind: 'spiffe' })).to.equal(true);
    expect(list.allows({ id: 'spiffe://example.org/ns/edge/sa/envoy', kind: 'cn' })).to.equal(false);
    expect(list.allows({ id: 'spiffe://example.org/ns/edge/sa/envoy', kind: 'uri' })).to.equal(false);
    expect(list.allows({ id: 'cn:batch-job.internal', kind: 'cn' })).to.equal(true);
    expect(list.allows({ id: 'cn:batch-job.internal', kind: 'uri' })).to.equal(false);
    expect(list.allows({ id: 'https://svc.example.org/', kind: 'uri' })).to.equal(true);
    expect(list.allows({ id: 'https://svc.example.org/', kind: 'cn' })).to.equal(false);
    expect(list.allows(undefined)).to.equal(false);
  });

  it('matches prefix entries on whole segments, below the prefix only', () => {
    expect(list.allows({ id: 'spiffe://example.org/ns/docs/sa/reader', kind: 'spiffe' })).to.equal(true);
    expect(list.allows({ id: 'spiffe://example.org/ns/docs/x', kind: 'spiffe' })).to.equal(true);
    expect(list.allows({ id: 'spiffe://example.org/ns/docsx/sa/y', kind: 'spiffe' })).to.equal(false);
    expect(list.allows({ id: 'spiffe://example.org/ns/docs', kind: 'spiffe' })).to.equal(false);
    expect(list.allows({ id: 'spiffe://example.org/ns/docs/sa/reader', kind: 'cn' })).to.equal(false);
  });

  it('is off when empty', () => {
    expect(new CallerAllowlist([]).allows(undefined)).to.equal(true);
  });
});

describe('gateway: tls.allowedCallers at config load', () => {
  const problems = (allowedCallers: string[]): string[] => {
    try {
      validateConfig({ ...(DEFAULT_CONFIG as unknown as Record<string, unknown>), tls: { certFile: 'c.pem', keyFile: 'k.pem', clientCaFile: 'ca.pem', allowedCallers } });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems];
      throw err;
    }
  };

  it('accepts SPIFFE IDs, SPIFFE prefixes, cn: and uri: entries', () => {
    expect(problems(['spiffe://example.org/ns/edge/sa/envoy', 'spiffe://example.org/ns/docs/*', 'spiffe://example.org/*', 'cn:batch-job.internal', 'uri:https://svc.example.org/'])).to.deep.equal([]);
  });

  it('refuses every entry that does not say what kind of identity it names, or names it wrongly, saying how to fix it', () => {
    const found = problems([
      'batch-job.internal',
      'spiffe://example.org/ns/docs/../edge/x',
      'spiffe://Example.org/ns/edge',
      'spiffe://example.org/ns/do*',
      'spiffe://example.org/*/sa/x',
      'spiffe://example.org/ns/%2e/x',
      'cn:',
      'cn:batch-*',
      'uri:spiffe://example.org/x',
      'uri:not a uri',
    ]);
    expect(found).to.deep.equal([
      'tls.allowedCallers: "batch-job.internal" names no kind of identity: write a SPIFFE ID (spiffe://trust.domain/path, or spiffe://trust.domain/path/* for every ID below it), cn:<certificate subject CN> or uri:<URI SAN>',
      'tls.allowedCallers: "spiffe://example.org/ns/docs/../edge/x" is not a valid SPIFFE ID: the path has a ".." segment',
      'tls.allowedCallers: "spiffe://Example.org/ns/edge" is not a valid SPIFFE ID: the trust domain "Example.org" may hold only lower-case letters, digits, ".", "-" and "_" (no port, user, upper case or percent-encoding)',
      'tls.allowedCallers: "spiffe://example.org/ns/do*": a SPIFFE prefix entry ends in "/*" and matches whole path segments (e.g. spiffe://example.org/ns/docs/*); "*" may not appear elsewhere',
      'tls.allowedCallers: "spiffe://example.org/*/sa/x": a SPIFFE prefix entry ends in "/*" and matches whole path segments (e.g. spiffe://example.org/ns/docs/*); "*" may not appear elsewhere',
      'tls.allowedCallers: "spiffe://example.org/ns/%2e/x" is not a valid SPIFFE ID: the path segment "%2e" may hold only letters, digits, ".", "-" and "_" (no percent-encoding, query or fragment)',
      'tls.allowedCallers: "cn:": the CN is empty',
      'tls.allowedCallers: "cn:batch-*": CN entries match the whole CN exactly; "*" is not a wildcard here',
      'tls.allowedCallers: "uri:spiffe://example.org/x": SPIFFE IDs are written as such (without "uri:"), and cn: names a CN',
      'tls.allowedCallers: "uri:not a uri": "not a uri" is not a URI',
    ]);
    expect(parseAllowlistEntry('spiffe://example.org/ns/docs/*')).to.deep.equal({ kind: 'spiffe-prefix', prefix: 'spiffe://example.org/ns/docs/' });
  });
});
