/**
 * Property-based fuzzing of the gateway routes file (src/gateway/routes-file.ts): generated and
 * mutated YAML never makes the loader throw anything but RoutesError, never hangs, and a file that
 * loads gives a table whose matching never throws.
 * VERDICT_FUZZ_RUNS sets the number of cases (make fuzz sets it high).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { pathSegments } from '../../src/gateway/http-request.js';
import { RoutesError, routeRequest } from '../../src/gateway/route-table.js';
import { parseGatewayRoutes, type GatewaySettings } from '../../src/gateway/routes-file.js';
import { REPO_ROOT } from '../support/server-process.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 300);
/** Far above what any case takes (a few ms); a case over it is a hang. */
const CASE_LIMIT_MS = 2_000;
const EXAMPLE = readFileSync(path.join(REPO_ROOT, 'examples/gateway/routes.yaml'), 'utf8');

/** Loads a routes file: the settings, or the RoutesError; anything else thrown fails the property. */
function load(text: string): GatewaySettings | RoutesError {
  const started = Date.now();
  try {
    return parseGatewayRoutes('fuzz.yaml', text);
  } catch (err) {
    if (!(err instanceof RoutesError)) throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    expect(err.problems.length).to.be.greaterThan(0);
    for (const p of err.problems) expect(p).to.be.a('string').and.not.equal('');
    return err;
  } finally {
    expect(Date.now() - started, 'time to load one file').to.be.below(CASE_LIMIT_MS);
  }
}

/** Matching any path against a loaded table never throws. */
function probe(settings: GatewaySettings, paths: string[]): void {
  for (const p of paths) {
    const { segments, unsafe } = pathSegments(p);
    if (segments) routeRequest(settings.table, 'GET', segments, unsafe ?? 0);
  }
}

const segment = fc.oneof(
  fc.constantFrom('documents', 'files', 'a', '{id}', '{path...}', '{op}', '{id}{op}', 'x{id}', '{', '}', '{1}', '{a.b}', '*', '..', '.', '%2F', '\\', ''),
  fc.string({ maxLength: 8 }),
);
const match = fc.oneof(
  fc.tuple(fc.constantFrom('GET', 'POST', 'GET,HEAD', '*', 'get', 'FETCH!', '', 'GET,'), fc.array(segment, { maxLength: 6 })).map(([m, segs]) => `${m} /${segs.join('/')}`),
  fc.string({ maxLength: 40 }),
);
const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('{id}', '{path}', 'report:{op}', '{nope}', '{', '}{'));
const route = fc.record(
  {
    match,
    action: scalar,
    resource: fc.oneof(scalar, fc.record({ type: scalar, id: scalar, attributes: fc.dictionary(fc.string({ maxLength: 6 }), scalar, { maxKeys: 3 }) }, { requiredKeys: [] })),
    allowInSegments: fc.oneof(fc.array(fc.constantFrom('slash', 'backslash', 'control', 'nul', 'quote', ''), { maxLength: 4 }), scalar),
    extra: scalar,
  },
  { requiredKeys: [] },
);
const routesDocument = fc.record(
  {
    apiVersion: fc.oneof(fc.constant('verdict/v1'), scalar),
    kind: fc.oneof(fc.constant('GatewayRoutes'), scalar),
    unmapped: fc.oneof(fc.constantFrom('deny', 'route'), scalar),
    subjects: fc.oneof(fc.record({ peer: fc.oneof(fc.boolean(), scalar), peerType: scalar, peerRoles: fc.oneof(fc.array(scalar, { maxLength: 3 }), scalar) }, { requiredKeys: [] }), scalar),
    context: fc.oneof(fc.record({ headers: fc.oneof(fc.constant('all'), fc.array(fc.oneof(fc.constantFrom('authorization', 'user-agent'), fc.string({ maxLength: 10 })), { maxLength: 4 }), scalar) }, { requiredKeys: [] }), scalar),
    upstream: fc.oneof(
      fc.record(
        { decisionHeader: scalar, subjectHeader: scalar, headers: fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(scalar, fc.constantFrom('{subject.id}', '{subject.roles}', '{caller.id}')), { maxKeys: 3 }), removeAuthorization: fc.oneof(fc.boolean(), scalar) },
        { requiredKeys: [] },
      ),
      scalar,
    ),
    realm: scalar,
    routes: fc.oneof(fc.array(fc.oneof(route, scalar), { maxLength: 8 }), scalar),
  },
  { requiredKeys: [] },
);

/** Text edits: what a half-written, hand-broken or hostile file looks like. */
const edit = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.nat({ max: 40 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(':', '- ', '\n', '  ', '{', '}', '[', ']', '"', "'", '&a ', '*a', '<<: *a', '!!binary ', '---\n', '...\n', '\t', '#', '%YAML 1.1\n', '? ', '|\n', '>-\n')) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.nat({ max: 200 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

function apply(text: string, e: Edit): string {
  const at = text.length === 0 ? 0 : e.at % (text.length + 1);
  switch (e.kind) {
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.length);
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'duplicate':
      return text.slice(0, at) + text.slice(at, at + e.length) + text.slice(at);
    case 'truncate':
      return text.slice(0, at);
  }
}

const probePaths = fc.array(
  fc.array(fc.oneof(fc.constantFrom('documents', 'files', 'reports', 'd1', 'public', '%2F', '%00', '..%2F', '%zz', 'a%5Cb', '', '.'), fc.string({ maxLength: 6 })), { maxLength: 6 }).map((s) => `/${s.join('/')}`),
  { maxLength: 5 },
);

describe('fuzz: gateway routes file', function () {
  this.timeout(120_000);

  it('generated routes files: loaded or refused with RoutesError, never anything else, never slow', () => {
    fc.assert(
      fc.property(routesDocument, probePaths, (doc, paths) => {
        const result = load(stringify(doc));
        if (!(result instanceof RoutesError)) probe(result, paths);
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated example routes file: loaded or refused with RoutesError, never anything else, never slow', () => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), probePaths, (edits, paths) => {
        const result = load(edits.reduce(apply, EXAMPLE));
        if (!(result instanceof RoutesError)) probe(result, paths);
      }),
      { numRuns: RUNS },
    );
  });

  it('arbitrary text and YAML bombs: refused with RoutesError', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`), 'routes: *j'].join('\n');
    expect(load(bomb)).to.be.instanceOf(RoutesError);
    expect(load(`${'['.repeat(5000)}${']'.repeat(5000)}`)).to.be.instanceOf(RoutesError);
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (text) => {
        load(text);
      }),
      { numRuns: RUNS },
    );
  });
});
