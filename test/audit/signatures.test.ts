import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCanonical, classifyRecord } from '../../src/audit/records.js';
import { ChainVerifier, checkpointSignature, type FindingKind } from '../../src/audit/verifier.js';
import { canonicalJson } from '../../src/events/canonical.js';
import { eventHash } from '../../src/events/chain.js';
import { buildCheckpoint, CHECKPOINT_SCHEMA_V2, checkpointSigningText } from '../../src/events/checkpoint.js';
import { CHECKPOINT_SCHEMA } from '../../src/events/event.js';
import { Keyring } from '../../src/keys/keyring.js';
import { KeyError } from '../../src/keys/signing-key.js';
import { chainOfInstance, checkpointOf, keyringOf, keyringText, newKey, type TestKey } from './support.js';

const kinds = (v: ChainVerifier): FindingKind[] => v.findings.map((f) => f.kind);
const parsed = (x: unknown) => JSON.parse(JSON.stringify(x)) as Record<string, any>;

describe('evidence: signed checkpoints and keyrings', () => {
  let dir: string;
  let key: TestKey;
  let other: TestKey;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'verdict-keys-'));
    key = newKey(dir, 'pdp');
    other = newKey(dir, 'mallory');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a v2 checkpoint is canonical JSON, signed over everything but the signature value', () => {
    const { events } = chainOfInstance('pdp-1', 3);
    const cp = checkpointOf(events[2]!, 'pdp-1', key.file, true);
    expect(cp.schema).to.equal(CHECKPOINT_SCHEMA_V2);
    expect(cp.sig).to.include({ alg: 'ed25519', key: key.id });
    expect(JSON.stringify(cp), 'the publisher sends JSON.stringify(body): it must be canonical').to.equal(canonicalJson(cp));
    expect(checkpointSigningText(cp as never)).to.not.include(cp.sig!.value);
    const ring = keyringOf([{ key, instances: ['pdp-*'] }]);
    const c = classifyRecord(parsed(cp));
    expect(c.type).to.equal('checkpoint');
    if (c.type !== 'checkpoint') return;
    expect(checkpointSignature(ring, c.checkpoint, c.record).state).to.equal('valid');
    // Every covered field: change it and the signature no longer verifies.
    for (const [field, value] of [['seq', 2], ['hash', 'a'.repeat(64)], ['chain', 'pdp-1/other'], ['instance', 'pdp-2'], ['time', '2030-01-01T00:00:00.000Z'], ['final', false]] as const) {
      const forged = { ...parsed(cp), [field]: value };
      const fc = classifyRecord(forged);
      if (fc.type !== 'checkpoint') throw new Error(`${field}: ${JSON.stringify(fc)}`);
      expect(checkpointSignature(ring, fc.checkpoint, fc.record).state, field).to.equal('bad-signature');
    }
    const otherKeyId = { ...parsed(cp), sig: { ...cp.sig, key: other.id } };
    const oc = classifyRecord(otherKeyId);
    if (oc.type === 'checkpoint') expect(checkpointSignature(ring, oc.checkpoint, oc.record).state).to.equal('unknown-key');
  });

  it('the key must be allowed for the chain\'s instance; unsigned and v1 checkpoints are "unsigned"', () => {
    const { events } = chainOfInstance('pdp-1', 1);
    const ring = keyringOf([{ key, instances: ['pdp-eu-*'] }, { key: other, keeper: true }]);
    const check = (cp: unknown) => {
      const c = classifyRecord(parsed(cp));
      if (c.type !== 'checkpoint') throw new Error(JSON.stringify(c));
      return checkpointSignature(ring, c.checkpoint, c.record);
    };
    expect(check(checkpointOf(events[0]!, 'pdp-1', key.file)).state).to.equal('key-not-allowed');
    expect(check(checkpointOf(events[0]!, 'pdp-1', other.file)).state, 'a keeper key signs receipts, not checkpoints').to.equal('key-not-allowed');
    expect(check(checkpointOf(events[0]!, 'pdp-1', undefined)).state).to.equal('unsigned');
    const v1 = { chain: events[0]!.link.id, final: false, hash: events[0]!.link.hash, instance: 'pdp-1', schema: CHECKPOINT_SCHEMA, seq: 1, time: '2026-01-02T03:04:05.000Z' };
    expect(check(v1).state).to.equal('unsigned');
    // A key allowed for another instance cannot vouch for this chain by naming that instance.
    const eu = chainOfInstance('pdp-eu-1', 1).events[0]!;
    expect(check(checkpointOf(eu, 'pdp-eu-1', key.file)).state).to.equal('valid');
    const lying = buildCheckpoint({ instanceId: 'pdp-eu-1', signingKeyFile: key.file }, { chain: events[0]!.link.id, seq: 1, hash: events[0]!.link.hash, final: false });
    expect(check(lying).state).to.equal('key-not-allowed');
  });

  it('keyrings: every problem at once, with what to do', () => {
    expect(() => Keyring.parse('keys: []', 'k.yaml')).to.throw(KeyError, /at least one key/);
    const text = keyringText([{ key, instances: ['a'] }]).replace(/id: \w+/, 'id: abcdef0123456789');
    let message = '';
    try {
      Keyring.parse(`${text}  - publicKey: nonsense\n    instances: [x]\n  - id: x\n    publicKey: ${JSON.stringify(key.publicPem)}\n    colour: red\n`, 'k.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.include('keys[0].id: "abcdef0123456789" is not this key\'s id');
    expect(message).to.include('keys[1].publicKey: not a PEM public key');
    expect(message).to.include('keys[2].colour: unknown field');
    expect(message).to.include('keys[2]: signs nothing');
    expect(() => Keyring.parse(keyringText([{ key, instances: ['a'] }, { key, instances: ['b'] }]), 'k.yaml')).to.throw(/listed twice/);
    expect(() => Keyring.parse(`keys:\n  - publicKey: ${JSON.stringify(key.privatePem)}\n    instances: [a]\n`, 'k.yaml')).to.throw(/not a PEM public key/);
  });

  describe('ChainVerifier with a keyring', () => {
    const instance = 'pdp-1';
    const ring = () => keyringOf([{ key, instances: ['pdp-*'], name: 'pdp' }]);
    const feed = (items: unknown[], v = new ChainVerifier({ keyring: ring() })) => {
      items.forEach((d, i) => v.accept(parsed(d), `line ${i + 1}`));
      v.finish();
      return v;
    };

    it('says which records a valid signature covers and which form the unsigned tail', () => {
      const { events } = chainOfInstance(instance, 12);
      const data = events.map((e) => JSON.parse(e.payload));
      const v = feed([...data.slice(0, 5), checkpointOf(events[4]!, instance, key.file), ...data.slice(5, 10), checkpointOf(events[9]!, instance, key.file), ...data.slice(10)]);
      expect(v.findings).to.deep.equal([]);
      const [c] = v.chainSummaries();
      expect(c).to.deep.include({ events: 12, closed: false, signed: [[1, 10]], unsigned: [[11, 12]], signature: 'valid' });
      expect(c!.lastSigned).to.deep.include({ seq: 10, key: key.id });
    });

    it('an event edited and every later event and checkpoint re-hashed: the signatures no longer match', () => {
      const { events } = chainOfInstance(instance, 10);
      const cps = [checkpointOf(events[3]!, instance, key.file), checkpointOf(events[9]!, instance, key.file, true)];
      // The forger's chain: event 6 says ALLOW, everything after re-hashed and re-linked, checkpoints' hashes updated.
      const forged = chainOfInstance(instance, 10, 'boot-1', (i, b) => {
        if (i === 6) b.decision = 'ALLOW';
      }).events;
      const rehashedFinal = { ...parsed(cps[1]), hash: forged[9]!.link.hash };
      const v = feed([...forged.slice(0, 4).map((e) => JSON.parse(e.payload)), cps[0], ...forged.slice(4).map((e) => JSON.parse(e.payload)), rehashedFinal]);
      expect(kinds(v)).to.deep.equal(['bad-signature']);
      const [c] = v.chainSummaries();
      expect(c).to.deep.include({ signed: [[1, 4]], unsigned: [[5, 10]], closed: false });
    });

    it('a forged chain under an unknown key and one with only unsigned (v1) checkpoints are rejected', () => {
      const forged = chainOfInstance('mallory', 3, 'boot-m', (_, b) => {
        b.subject = { id: 'mallory', roles: ['admin'], type: 'user' };
        b.action = 'delete';
        b.resource = { id: 'payroll', type: 'payroll' };
        b.decision = 'ALLOW';
      }).events;
      const v = feed([...forged.map((e) => JSON.parse(e.payload)), checkpointOf(forged[2]!, 'mallory', other.file, true)]);
      expect(kinds(v)).to.deep.equal(['unknown-key', 'unsigned']);
      expect(v.chainSummaries()[0]).to.deep.include({ signed: [], signature: 'unknown-key', closed: false });

      const legacy = chainOfInstance(instance, 2).events;
      const v1 = { chain: legacy[1]!.link.id, final: true, hash: legacy[1]!.link.hash, instance, schema: CHECKPOINT_SCHEMA, seq: 2, time: '2026-01-02T03:04:05.000Z' };
      const w = feed([...legacy.map((e) => JSON.parse(e.payload)), v1, v1]);
      expect(kinds(w), 'unsigned once per chain, then "no record is covered" at the end').to.deep.equal(['unsigned', 'unsigned']);
    });

    it('records after the final checkpoint are reported', () => {
      const { events } = chainOfInstance(instance, 4);
      const data = events.map((e) => JSON.parse(e.payload));
      const v = feed([...data.slice(0, 3), checkpointOf(events[2]!, instance, key.file, true), data[3]]);
      expect(kinds(v)).to.deep.equal(['after-final']);
    });

    it('online: a chain whose records stay unsigned past the grace time is reported once', () => {
      const { events } = chainOfInstance(instance, 3);
      const v = new ChainVerifier({ keyring: ring(), anchorUnknownChains: true });
      events.forEach((e, i) => v.accept(JSON.parse(e.payload), `seq ${i + 1}`));
      v.sweep(Date.now(), 5000, 60_000);
      expect(v.findingCount).to.equal(0);
      v.sweep(Date.now() + 61_000, 5000, 60_000);
      v.sweep(Date.now() + 62_000, 5000, 60_000);
      expect(kinds(v)).to.deep.equal(['unsigned']);
      expect(v.findings[0]!.message).to.include('records 1..3');
    });
  });

  describe('records the keeper accepts', () => {
    const { events } = chainOfInstance('pdp-1', 2);
    const payload = events[0]!.payload;

    it('only canonical JSON: one line, sorted keys, no whitespace, no duplicate keys, valid UTF-8', () => {
      expect(parseCanonical(payload).ok).to.equal(true);
      const pretty = JSON.stringify(JSON.parse(payload), null, 2);
      expect(parseCanonical(pretty)).to.deep.include({ ok: false });
      expect((parseCanonical(pretty) as { reason: string }).reason).to.match(/not canonical JSON/);
      expect((parseCanonical(`${payload}\n{"x":1}`) as { reason: string }).reason).to.match(/not JSON/);
      expect((parseCanonical('{"b":1,"a":2}') as { reason: string }).reason).to.match(/not canonical/);
      expect((parseCanonical('{"a":1,"a":2}') as { reason: string }).reason).to.match(/not canonical/);
      expect((parseCanonical(Buffer.from([0x7b, 0xff, 0x7d])) as { reason: string }).reason).to.equal('not valid UTF-8');
      expect((parseCanonical('mallory ALLOWED to delete payroll') as { reason: string }).reason).to.match(/not JSON/);
    });

    it('schema-checked: decision events, checkpoints and other chained records; anything else is refused with the reason', () => {
      const e = JSON.parse(payload);
      expect(classifyRecord(e).type).to.equal('chained');
      const reason = (x: unknown) => (classifyRecord(x) as { reason?: string }).reason;
      expect(reason({ ...e, decision: 'MAYBE' })).to.match(/decision must be ALLOW or DENY/);
      expect(reason({ ...e, subject: { id: 1 } })).to.match(/subject must be/);
      expect(reason({ ...e, instance: 'someone-else' })).to.match(/does not belong to instance/);
      expect(reason({ ...e, chain: { ...e.chain, seq: 0 } })).to.match(/chain.seq/);
      expect(reason({ hello: 'world' })).to.match(/no "schema"/);
      expect(reason({ schema: 'x.y', data: 1 })).to.match(/unknown schema "x.y" without a chain link/);
      const cp = parsed(checkpointOf(events[1]!, 'pdp-1', undefined));
      expect(reason({ ...cp, extra: 1 })).to.match(/unexpected fields extra/);
      // A chained record of an unknown kind is kept (and reported), so the chain stays whole.
      const unknown = { chain: { id: 'pdp-1/boot-1', prev: events[1]!.link.hash, seq: 3 }, instance: 'pdp-1', schema: 'verdict.something-new.v9', time: '2026-01-02T03:04:05.000Z' } as Record<string, any>;
      unknown.chain.hash = eventHash(unknown);
      expect(classifyRecord(unknown)).to.deep.include({ type: 'chained', known: false });
      const v = new ChainVerifier();
      [e, JSON.parse(events[1]!.payload), unknown].forEach((d, i) => v.accept(d, `line ${i + 1}`));
      v.finish();
      expect(kinds(v)).to.deep.equal(['unknown-schema']);
    });

    it('a publish-refused record turns the gap it explains into "refused by NATS: reason"', () => {
      const chain = chainOfInstance('pdp-1', 4);
      const refusal = { chain: { id: chain.chain.id, prev: chain.events[3]!.link.hash, seq: 5 }, instance: 'pdp-1', reason: 'maximum payload exceeded', refused: { seq: 3 }, schema: 'verdict.publish-refused.v1', time: '2026-01-02T03:04:05.000Z' } as Record<string, any>;
      refusal.chain.hash = eventHash(refusal);
      const v = new ChainVerifier();
      [0, 1, 3].forEach((i) => v.accept(JSON.parse(chain.events[i]!.payload), `line ${i}`));
      v.accept(refusal, 'line 5');
      v.finish();
      expect(kinds(v)).to.deep.equal(['refused']);
      expect(v.findings[0]!.message).to.include('refused by NATS: maximum payload exceeded');
    });
  });
});
