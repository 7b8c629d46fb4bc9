/**
 * Property-based fuzzing of the ext_authz path mapper (src/gateway/http-request.ts, route-table.ts):
 * generated and mutated paths (percent-encodings of every byte, dot segments, backslashes, control
 * characters, bad encodings) and Envoy CheckRequests never crash it; no decoded segment that reaches
 * a route holds "/", "\", NUL or a control character unless that route allows it; the decoding
 * agrees with a reference decoder.
 * VERDICT_FUZZ_RUNS sets the number of cases (make fuzz sets it high).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { httpView, pathSegments, type EnvoyCheckRequest } from '../../src/gateway/http-request.js';
import { SEGMENT_BACKSLASH, SEGMENT_CONTROL, SEGMENT_NUL, SEGMENT_SLASH } from '../../src/gateway/path-characters.js';
import { renderTarget, routeRequest, RouteTable } from '../../src/gateway/route-table.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 2000);
const CASE_LIMIT_MS = 1_000;

/** The reference: which classes a decoded segment holds, written independently of the code under test. */
function referenceClasses(segment: string): number {
  let bits = 0;
  for (const ch of segment) {
    const c = ch.codePointAt(0)!;
    if (ch === '/') bits |= SEGMENT_SLASH;
    else if (ch === '\\') bits |= SEGMENT_BACKSLASH;
    else if (c === 0) bits |= SEGMENT_NUL;
    else if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) bits |= SEGMENT_CONTROL;
  }
  return bits;
}

/** The reference decoder: split on "/", drop one trailing empty segment, decode each. */
function referenceDecode(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  if (path === '/') return [];
  const raw = (path.endsWith('/') ? path.slice(0, -1) : path).slice(1).split('/');
  const out: string[] = [];
  for (const r of raw) {
    if (r === '') return undefined;
    let d: string;
    try {
      d = decodeURIComponent(r);
    } catch {
      return undefined;
    }
    if (d === '.' || d === '..') return undefined;
    out.push(d);
  }
  return out;
}

const hex = (b: number, lower: boolean) => `%${b.toString(16).padStart(2, '0')[lower ? 'toLowerCase' : 'toUpperCase']()}`;
const encodedBytes = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 4 }), fc.boolean()).map(([bytes, lower]) => [...bytes].map((b) => hex(b, lower)).join(''));
const dangerous = fc.constantFrom('%2F', '%2f', '%5C', '%5c', '%00', '%0A', '%0D', '%09', '%7F', '%C2%85', '%C2%9F', '%2E', '%2E%2E', '..%2F..%2F', '%252F', '\\', '..', '.', '%', '%2', '%zz', '%C0%AF', '%E2%80%AE', '\u0000', '\n', '\u0085');
const word = fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/);
const segment = fc.oneof(
  { arbitrary: word, weight: 4 },
  { arbitrary: dangerous, weight: 3 },
  { arbitrary: encodedBytes, weight: 2 },
  { arbitrary: fc.tuple(word, dangerous, word).map((p) => p.join('')), weight: 3 },
  { arbitrary: fc.string({ maxLength: 6 }), weight: 1 },
  { arbitrary: fc.constantFrom('documents', 'files', 'objects', 'a', 'b', 'lit'), weight: 4 },
);
const path = fc
  .tuple(fc.array(segment, { maxLength: 7 }), fc.boolean(), fc.option(fc.string({ maxLength: 10 }), { nil: undefined }))
  .map(([segs, trailing, query]) => `/${segs.join('/')}${trailing && segs.length > 0 ? '/' : ''}${query !== undefined ? `?${query}` : ''}`);

const ALLOW = ['slash', 'backslash', 'control', 'nul'] as const;
const allow = fc.subarray([...ALLOW]);
const table = fc.tuple(allow, allow, allow, allow).map(
  ([a, b, c, d]) =>
    new RouteTable([
      { match: 'GET /files/{rest...}', action: 'download', resource: { type: 'file', id: '{rest}' }, allowInSegments: a, at: 'r:1' },
      { match: 'GET /objects/{key}', action: 'get', resource: { type: 'object', id: '{key}' }, allowInSegments: b, at: 'r:2' },
      { match: '* /documents/{id}/{op}', action: '{op}', resource: { type: 'document', id: '{id}' }, allowInSegments: c, at: 'r:3' },
      { match: 'GET /documents/lit', action: 'list', resource: { type: 'document' }, at: 'r:4' },
      { match: 'GET /a/{x}/b/{y...}', action: 'x', resource: { type: 't', id: '{x}', attributes: { y: '{y}' } }, allowInSegments: d, at: 'r:5' },
    ]),
);

function timed<T>(fn: () => T): T {
  const started = Date.now();
  const out = fn();
  expect(Date.now() - started, 'time for one case').to.be.below(CASE_LIMIT_MS);
  return out;
}

/** Every segment of a routed request holds only what its route allows; otherwise it is refused. */
function checkRouted(t: RouteTable, method: string, segments: readonly string[], unsafe: number): void {
  const routed = routeRequest(t, method, segments, unsafe);
  if (routed.kind === 'matched') {
    const allowed = routed.match.route.allowedUnsafe;
    for (const s of segments) expect(referenceClasses(s) & ~allowed, `segment ${JSON.stringify(s)} reached route "${routed.match.route.match}"`).to.equal(0);
    // an id made of single-segment parameters holds nothing the route did not allow ({rest...} joins with "/")
    if (!routed.match.route.match.includes('...}')) expect(referenceClasses(renderTarget(routed.match).id) & ~allowed).to.equal(0);
  } else if (routed.kind === 'unmapped') {
    for (const s of segments) expect(referenceClasses(s), `segment ${JSON.stringify(s)} went unmapped`).to.equal(0);
  } else {
    expect(unsafe).to.not.equal(0);
    expect(routed.problem).to.match(/^the request path has a segment holding /);
  }
}

describe('fuzz: ext_authz path mapping', function () {
  this.timeout(120_000);

  it('pathSegments: never throws, agrees with a reference decoder, and flags exactly what decoded segments hold', () => {
    fc.assert(
      fc.property(path, (p) => {
        const raw = p.split('?')[0]!;
        const got = timed(() => pathSegments(raw));
        const expected = referenceDecode(raw);
        if (expected === undefined) {
          expect(got.segments, `accepted ${JSON.stringify(raw)}`).to.equal(undefined);
          expect(got.problem).to.be.a('string');
        } else {
          expect(got.segments).to.deep.equal(expected);
          expect(got.unsafe).to.equal(expected.reduce((bits, s) => bits | referenceClasses(s), 0));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('route matching: no segment holding "/", "\\", NUL or a control character reaches a route that does not allow it', () => {
    fc.assert(
      fc.property(table, fc.constantFrom('GET', 'POST', 'HEAD'), path, (t, method, p) => {
        const { segments, unsafe } = timed(() => pathSegments(p.split('?')[0]!));
        if (segments) timed(() => checkRouted(t, method, segments, unsafe!));
      }),
      { numRuns: RUNS },
    );
  });

  it('httpView: any Envoy CheckRequest shape is read without a crash, and what it maps obeys the same rule', () => {
    const text = fc.oneof(fc.string({ maxLength: 12 }), path);
    const headers = fc.dictionary(fc.oneof(fc.constantFrom(':path', ':method', ':authority', 'authorization', 'x-request-id', 'Host'), fc.string({ maxLength: 8 })), text, { maxKeys: 5 });
    const http = fc.record(
      {
        method: fc.oneof(fc.constantFrom('GET', 'post', ''), fc.string({ maxLength: 6 })),
        path: fc.oneof(path, text),
        headers,
        headerMap: fc.record({ headers: fc.array(fc.record({ key: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }), value: fc.option(text, { nil: undefined }), rawValue: fc.option(fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)), { nil: undefined }) }, { requiredKeys: [] }), { maxLength: 4 }) }, { requiredKeys: [] }),
        host: text,
        id: text,
      },
      { requiredKeys: [] },
    );
    const message = fc.record(
      {
        attributes: fc.record(
          {
            request: fc.record({ http }, { requiredKeys: [] }),
            source: fc.record({ principal: text, address: fc.record({ socketAddress: fc.record({ address: text, portValue: fc.integer() }, { requiredKeys: [] }) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
            contextExtensions: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(table, message, (t, msg) => {
        const view = timed(() => httpView(msg as EnvoyCheckRequest));
        if (!view) return;
        if (view.segments) {
          expect(view.problem).to.equal(undefined);
          timed(() => checkRouted(t, view.method, view.segments!, view.unsafe));
        } else expect(view.problem).to.be.a('string');
      }),
      { numRuns: RUNS },
    );
  });
});
