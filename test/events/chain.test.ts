import { expect } from 'chai';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash, GENESIS_HASH, HashChain } from '../../src/events/chain.js';
import { AttributeSelector, buildUnchainedEvent, EVENT_SCHEMA, MASK } from '../../src/events/event.js';
import { chainOf, parsed, record } from './fixtures.js';

/** Every leaf of a JSON tree, as a path of keys/indexes. */
function leaves(node: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (node === null || typeof node !== 'object') return [path];
  const entries = Array.isArray(node) ? node.map((v, i) => [i, v] as const) : Object.entries(node as Record<string, unknown>);
  if (entries.length === 0) return [path];
  return entries.flatMap(([k, v]) => leaves(v, [...path, k]));
}

function alter(value: unknown): unknown {
  if (typeof value === 'string') return value === '' ? 'x' : `${value}x`;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  if (value === null) return 0;
  return 'altered';
}

describe('events: hash chain', () => {
  it('links events 1, 2, 3… and each hash verifies with eventHash', () => {
    const { chain, events } = chainOf(5);
    expect(chain.id).to.equal('unit/boot-1');
    let prev = GENESIS_HASH;
    events.forEach((c, i) => {
      expect(c.event.schema).to.equal(EVENT_SCHEMA);
      expect(c.event.chain.seq).to.equal(i + 1);
      expect(c.event.chain.id).to.equal('unit/boot-1');
      expect(c.event.chain.prev).to.equal(prev);
      expect(c.event.chain.hash).to.match(/^[0-9a-f]{64}$/);
      expect(eventHash(c.event)).to.equal(c.event.chain.hash);
      // The bytes published are the canonical JSON of the event, hash included.
      expect(c.payload).to.equal(canonicalJson(c.event));
      expect(eventHash(JSON.parse(c.payload) as Record<string, unknown>)).to.equal(c.event.chain.hash);
      prev = c.event.chain.hash;
    });
    expect(chain.lastSeq).to.equal(5);
    expect(chain.lastHash).to.equal(prev);
  });

  it('a new boot id starts a new chain at seq 1', () => {
    const a = chainOf(2, 'boot-a').events;
    const b = chainOf(2, 'boot-b').events;
    expect(b[0]!.event.chain.seq).to.equal(1);
    expect(b[0]!.event.chain.prev).to.equal(GENESIS_HASH);
    expect(b[0]!.event.chain.hash).to.not.equal(a[0]!.event.chain.hash);
  });

  it('altering any field of an event breaks its hash', () => {
    const selector = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const chain = new HashChain('unit', 'boot-1');
    const rec = record(4, { subjectAttributes: { department: 'eng', tags: ['a', 'b'], level: 2, active: true, none: null } });
    const withErrors = { ...rec, decision: { ...rec.decision, errors: [{ policy: 'p', rule: 'r', message: 'no such key' }] } };
    const c = chain.append(buildUnchainedEvent(withErrors, 'unit', selector));
    const paths = leaves(parsed(c)).filter((p) => p.join('.') !== 'chain.hash');
    expect(paths.length).to.be.greaterThan(25);
    for (const p of ['attributes.subject.attributes.tags.1', 'errors.0.message', 'chain.prev', 'chain.seq', 'decision', 'evaluationUs']) {
      expect(paths.map((x) => x.join('.'))).to.include(p);
    }
    for (const p of paths) {
      const copy = parsed(c);
      let node = copy;
      for (const k of p.slice(0, -1)) node = node[k as string];
      node[p[p.length - 1] as string] = alter(node[p[p.length - 1] as string]);
      expect(eventHash(copy), `altering ${p.join('.')}`).to.not.equal(c.event.chain.hash);
    }
    // Adding a field, or removing one, breaks it too.
    const added = { ...parsed(c), extra: 1 };
    expect(eventHash(added)).to.not.equal(c.event.chain.hash);
    const { rule: _rule, ...removed } = parsed(c);
    expect(eventHash(removed)).to.not.equal(c.event.chain.hash);
  });

  it('hashes canonical JSON: attribute key order does not matter', () => {
    const selector = new AttributeSelector({ includeAttributes: 'all', maskAttributes: ['subject.attributes.email'] });
    const a = record(7, { subjectAttributes: { email: 'a@example.com', department: 'eng', nested: { z: 1, a: [{ y: 1, b: 2 }] } }, context: { ip: '10.0.0.1', region: 'eu' } });
    const b = record(7, { subjectAttributes: { nested: { a: [{ b: 2, y: 1 }], z: 1 }, department: 'eng', email: 'a@example.com' }, context: { region: 'eu', ip: '10.0.0.1' } });
    const ea = new HashChain('unit', 'boot').append(buildUnchainedEvent(a, 'unit', selector));
    const eb = new HashChain('unit', 'boot').append(buildUnchainedEvent(b, 'unit', selector));
    expect(ea.payload).to.equal(eb.payload);
    expect(ea.event.chain.hash).to.equal(eb.event.chain.hash);
    expect((ea.event.attributes?.subject as { attributes: { email: string } }).attributes.email).to.equal(MASK);
    // eventHash of a re-ordered copy (as another tool might write it) is the same.
    const reordered = JSON.parse(ea.payload) as Record<string, unknown>;
    const shuffled = Object.fromEntries(Object.entries(reordered).reverse());
    expect(eventHash(shuffled)).to.equal(ea.event.chain.hash);
  });

  it('canonicalJson sorts keys, drops undefined, keeps array order and rejects non-finite numbers', () => {
    expect(canonicalJson({ b: 1, a: [3, 1, { d: undefined, c: 'x' }], u: undefined })).to.equal('{"a":[3,1,{"c":"x"}],"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).to.equal(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson([undefined])).to.equal('[null]');
    expect(canonicalJson('é\u2028')).to.equal(JSON.stringify('é\u2028'));
    expect(() => canonicalJson({ a: Number.NaN })).to.throw(/non-finite/);
  });

  it('attributes are absent by default, and only listed paths are included, masked as configured', () => {
    const rec = record(2, { subjectAttributes: { email: 'x@example.com', department: 'eng' }, resourceAttributes: { secret: 's3cr3t', department: 'eng' } });
    expect(buildUnchainedEvent(rec, 'unit', new AttributeSelector({ includeAttributes: 'none', maskAttributes: [] }))).to.not.have.property('attributes');
    const listed = buildUnchainedEvent(rec, 'unit', new AttributeSelector({ includeAttributes: ['subject.attributes.email', 'resource.attributes.department'], maskAttributes: ['subject.attributes.email'] }));
    expect(listed.attributes).to.deep.equal({ resource: { attributes: { department: 'eng' } }, subject: { attributes: { email: MASK } } });
    expect(JSON.stringify(listed)).to.not.include('s3cr3t').and.not.include('x@example.com');
  });
});
