import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { CUT_MARKER, cutString, fitFields } from '../../src/events/budget.js';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash } from '../../src/events/chain.js';
import { AttributeSelector, buildUnchainedEvent } from '../../src/events/event.js';
import { EventBuilder } from '../../src/events/event-builder.js';
import { decisionSubject, isSafeSubject, subjectToken } from '../../src/events/subjects.js';
import { prng } from '../../bench/generate/large-policy-set.js';
import type { DecisionRecord } from '../../src/service/decision-record.js';
import { NO_ATTRIBUTES, record } from './fixtures.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const config = { ...DEFAULT_CONFIG.events, instanceId: 'unit', subjectPrefix: 'vt.unit' };

function built(r: DecisionRecord, selector = NO_ATTRIBUTES, overrides: Partial<typeof config> = {}) {
  const builder = new EventBuilder({ ...config, ...overrides });
  const { entry, cut } = builder.event(buildUnchainedEvent(r, 'unit', selector));
  const event = JSON.parse(entry.payload) as Record<string, any>;
  return { entry, cut, event };
}

describe('events: byte budgets and safe subjects', () => {
  it('a 200 KB request_id of control characters (a 1.2 MB event before) is cut to its budget, with its size and digest', () => {
    const requestId = '\u0001'.repeat(200 * 1024);
    const { entry, cut, event } = built({ ...record(1), requestId });
    expect(cut).to.equal(true);
    expect(bytes(entry.payload)).to.be.lessThan(16 * 1024);
    expect(bytes(event.requestId)).to.be.at.most(DEFAULT_CONFIG.events.maxFieldBytes);
    expect(event.requestId.endsWith(CUT_MARKER)).to.equal(true);
    expect(event.cut).to.deep.equal({ requestId: { bytes: requestId.length, sha256: sha256(requestId) } });
    // Still a valid chained event: canonical, and its hash verifies.
    expect(entry.payload).to.equal(canonicalJson(event));
    expect(eventHash(event)).to.equal(event.chain.hash);
  });

  it('budgets count UTF-8 bytes, not UTF-16 units, and never split a character', () => {
    const id = 'é€😀'.repeat(200); // 2 + 3 + 4 bytes; 4 UTF-16 units per repeat
    expect(id.length * 1).to.be.lessThan(1024);
    expect(bytes(id)).to.be.greaterThan(1024);
    const { event } = built({ ...record(2), request: { ...record(2).request, subject: { ...record(2).request.subject, id } } });
    expect(bytes(event.subject.id)).to.be.at.most(1024);
    expect(event.subject.id).to.not.include('\ufffd');
    expect(id.startsWith(event.subject.id.slice(0, -CUT_MARKER.length))).to.equal(true);
    expect(event.cut['subject.id']).to.deep.equal({ bytes: bytes(id), sha256: sha256(id) });
  });

  it('leaves ordinary events untouched (the same object: nothing allocated)', () => {
    const body = buildUnchainedEvent(record(3), 'unit', NO_ATTRIBUTES);
    expect(fitFields(body, { fieldBytes: 1024, listBytes: 16384 })).to.equal(body);
    expect(built(record(3)).cut).to.equal(false);
    expect(built(record(3)).event).to.not.have.property('cut');
  });

  it('cuts each role to the field budget and the roles list to the list budget, keeping leading roles', () => {
    const roles = Array.from({ length: 300 }, (_, i) => `role-${i}-${'x'.repeat(100)}`);
    roles[1] = 'y'.repeat(5000);
    const r = record(4);
    const { event } = built({ ...r, request: { ...r.request, subject: { ...r.request.subject, roles } } });
    expect(event.subject.roles[0]).to.equal(roles[0]);
    expect(bytes(event.subject.roles[1])).to.be.at.most(1024);
    expect(event.cut['subject.roles.1']).to.deep.equal({ bytes: 5000, sha256: sha256(roles[1]!) });
    expect(bytes(JSON.stringify(event.subject.roles))).to.be.at.most(DEFAULT_CONFIG.events.maxListBytes);
    expect(event.subject.roles.length).to.be.lessThan(roles.length);
    expect(event.cut['subject.roles']).to.deep.equal({ bytes: bytes(canonicalJson(roles)), sha256: sha256(canonicalJson(roles)), count: 300 });
  });

  it('an event over the event budget loses its attributes first (truncated + cut.attributes), then everything is cut to the minimum', () => {
    const all = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const big = 'a'.repeat(40 * 1024);
    const r = record(5, { resourceAttributes: { blob: big } });
    const { event } = built(r, all, { maxEventBytes: 16 * 1024 });
    expect(event).to.not.have.property('attributes');
    expect(event.truncated).to.equal('attributes');
    const attrs = canonicalJson(all.select(r));
    expect(event.cut.attributes).to.deep.equal({ bytes: bytes(attrs), sha256: sha256(attrs) });
    expect(event.requestId).to.equal(r.requestId);

    // Worst case: every field at its budget, all of it control characters (6 bytes each in JSON).
    const ctl = '\u0002'.repeat(1024);
    const roles = Array.from({ length: 256 }, () => '\u0003'.repeat(60));
    const worst: DecisionRecord = {
      ...r,
      requestId: ctl,
      request: { ...r.request, action: ctl, subject: { ...r.request.subject, id: ctl, type: ctl, roles }, resource: { ...r.request.resource, id: ctl, type: ctl } },
    };
    const w = built(worst, all, { maxEventBytes: 16 * 1024 });
    expect(bytes(w.entry.payload)).to.be.at.most(16 * 1024);
    expect(w.event.cut.requestId).to.deep.equal({ bytes: 1024, sha256: sha256(ctl) });
    expect(eventHash(w.event)).to.equal(w.event.chain.hash);
  });

  it('the chain does not skip a seq when an event is rebuilt smaller', () => {
    const builder = new EventBuilder({ ...config, maxEventBytes: 16 * 1024 });
    const all = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    const seqs = [record(6), record(7, { resourceAttributes: { blob: 'b'.repeat(50_000) } }), record(8)].map((r) => JSON.parse(builder.event(buildUnchainedEvent(r, 'unit', all)).entry.payload).chain.seq);
    expect(seqs).to.deep.equal([1, 2, 3]);
  });

  it('cutString keeps the marker within the budget', () => {
    const c = cutString('x'.repeat(100), 20);
    expect(bytes(c.value)).to.be.at.most(20);
    expect(c.value.endsWith(CUT_MARKER)).to.equal(true);
  });

  it('for hostile strings of any size (control characters, lone surrogates, astral, quotes), every event fits its budgets, hashes right and digests what it cut', () => {
    const runs = Number(process.env.VERDICT_FUZZ_RUNS ?? 100);
    const seed = Number(process.env.VERDICT_FUZZ_SEED ?? 20261207);
    const rand = prng(seed);
    const alphabet = ['a', 'Z', '0', '.', '*', '>', ' ', '~', '"', '\\', '\u0000', '\u0001', '\u001f', '\u007f', 'é', '€', '😀', '\ud800', '\udfff', '\u2028', '\u202e'];
    const str = (max: number) => {
      const n = Math.floor(rand() ** 3 * max);
      let out = '';
      for (let i = 0; i < n; i++) out += alphabet[Math.floor(rand() * alphabet.length)]!;
      return out;
    };
    const all = new AttributeSelector({ includeAttributes: 'all', maskAttributes: [] });
    for (let i = 0; i < runs; i++) {
      const maxFieldBytes = 64 + Math.floor(rand() * 2048);
      const maxListBytes = 512 + Math.floor(rand() * 8192);
      const maxEventBytes = 16 * 1024 + Math.floor(rand() * 32 * 1024);
      const base = record(i);
      const r: DecisionRecord = {
        ...base,
        requestId: str(6000),
        request: {
          ...base.request,
          action: str(3000),
          subject: { ...base.request.subject, id: str(3000), type: str(200), roles: Array.from({ length: Math.floor(rand() * 40) }, () => str(800)) },
          resource: { ...base.request.resource, id: str(3000), type: str(3000), attributes: { blob: str(40_000) } },
        },
        decision: { ...base.decision, errors: Array.from({ length: Math.floor(rand() * 4) }, () => ({ message: str(3000), policy: str(100), rule: str(100) })) },
      };
      const where = `seed ${seed}, case ${i}`;
      const builder = new EventBuilder({ ...config, maxFieldBytes, maxListBytes, maxEventBytes });
      const { entry } = builder.event(buildUnchainedEvent(r, 'unit', all));
      expect(bytes(entry.payload), where).to.be.at.most(maxEventBytes);
      const event = JSON.parse(entry.payload) as Record<string, any>;
      expect(entry.payload, where).to.equal(canonicalJson(event));
      expect(eventHash(event), where).to.equal(event.chain.hash);
      expect(isSafeSubject('vt.unit', entry.subject), `${where}: ${entry.subject}`).to.equal(true);
      const original: Record<string, string> = { requestId: r.requestId, action: r.request.action, 'subject.id': r.request.subject.id, 'subject.type': r.request.subject.type, 'resource.id': r.request.resource.id, 'resource.type': r.request.resource.type };
      for (const [path, value] of Object.entries(original)) {
        const stored = path.split('.').reduce((o, k) => o[k], event) as unknown as string;
        if (event.cut?.[path]) {
          expect(event.cut[path], `${where}: ${path}`).to.deep.equal({ bytes: bytes(value), sha256: sha256(value) });
          expect(stored.endsWith(CUT_MARKER), `${where}: ${path}`).to.equal(true);
        } else {
          // Untouched, except that a lone surrogate cannot be held by UTF-8 JSON unescaped: the value round-trips.
          expect(stored, `${where}: ${path}`).to.equal(value);
        }
        expect(bytes(stored), `${where}: ${path}`).to.be.at.most(event.cut?.[path] ? maxFieldBytes : Infinity);
      }
    }
  });

  describe('subjects', () => {
    it('keeps <prefix>.<type>.<allow|deny> for ordinary types (dots, wildcards, whitespace become _)', () => {
      expect(decisionSubject('p', 'document', 'ALLOW')).to.equal('p.document.allow');
      expect(decisionSubject('p', 'report.v2', 'DENY')).to.equal('p.report_v2.deny');
      expect(decisionSubject('p', 'a*b>c d', 'DENY')).to.equal('p.a_b_c_d.deny');
      expect(decisionSubject('p', 'ns:doc/x', 'ALLOW')).to.equal('p.ns:doc/x.allow');
    });

    it('a long or unsafe type becomes "~" + 32 hex digits of its SHA-256; the event keeps it in full', () => {
      const long = 't'.repeat(5000); // a subject over NATS's 4 KiB control line dropped the connection
      expect(subjectToken(long)).to.equal(`~${sha256(long).slice(0, 32)}`);
      for (const unsafe of ['dokumént', 'a\u0000b', 'x~y', '\u202edoc']) expect(subjectToken(unsafe)).to.match(/^~[0-9a-f]{32}$/);
      const { entry, event } = built({ ...record(10), request: { ...record(10).request, resource: { ...record(10).request.resource, type: long } } }, NO_ATTRIBUTES, { maxFieldBytes: 65_536, maxEventBytes: 1024 * 1024 });
      expect(entry.subject).to.equal(`vt.unit.~${sha256(long).slice(0, 32)}.allow`);
      expect(entry.subject.length).to.be.lessThan(64);
      expect(event.resource.type).to.equal(long);
    });

    it('isSafeSubject refuses what an older version may have spooled (too long, unsafe characters)', () => {
      expect(isSafeSubject('p', 'p.document.allow')).to.equal(true);
      expect(isSafeSubject('p', `p.${'t'.repeat(5000)}.allow`)).to.equal(false);
      expect(isSafeSubject('p', 'p.dokumént.allow')).to.equal(false);
      expect(isSafeSubject('q', 'p.document.allow')).to.equal(false);
    });
  });
});
