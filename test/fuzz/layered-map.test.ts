/**
 * The compiler keeps its per-file and per-type state in LayeredMaps (a shared base and a small delta
 * per version). Property: after any sequence of versions, each with any sets and deletes, every
 * version reads exactly like a plain Map given the same operations, and older versions never change.
 * VERDICT_FUZZ_RUNS raises the number of sequences (make fuzz).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { LayeredMap } from '../../src/policy/layered-map.js';
import { PatchedMap } from '../../src/policy/patched-map.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 60);

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 40 }), value: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 40 }) }),
);

function sorted(entries: Iterable<[number, number]>): [number, number][] {
  return [...entries].sort((a, b) => a[0] - b[0]);
}

describe('fuzz: LayeredMap reads like a Map', () => {
  it('every version, after any sets and deletes, old versions unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 30 }), fc.array(fc.array(op, { maxLength: 40 }), { maxLength: 30 }), (initial, versions) => {
        let map = LayeredMap.of(initial.map((k) => [k, k % 4] as [number, number]));
        let model = new Map(initial.map((k) => [k, k % 4] as [number, number]));
        const history: { map: LayeredMap<number, number>; model: [number, number][] }[] = [];
        for (const ops of versions) {
          const draft = map.edit();
          const next = new Map(model);
          for (const o of ops) {
            if (o.kind === 'set') {
              draft.set(o.key, o.value);
              next.set(o.key, o.value);
            } else {
              draft.delete(o.key);
              next.delete(o.key);
            }
            expect(draft.get(o.key)).to.equal(next.get(o.key));
          }
          map = draft.done();
          model = next;
          history.push({ map, model: sorted(model) });
          expect(map.size).to.equal(model.size);
          for (let k = -1; k <= 41; k++) {
            expect(map.get(k)).to.equal(model.get(k));
            expect(map.has(k)).to.equal(model.has(k));
          }
          expect(sorted(map.entries())).to.deep.equal(sorted(model));
          expect([...map.keys()].length).to.equal(model.size);
        }
        for (const h of history) expect(sorted(h.map)).to.deep.equal(h.model);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: PatchedMap (a rescan\'s files) reads like a Map, undefined values included', () => {
  it('every rescan, after any changes and removals, earlier ones unchanged', () => {
    const key = fc.integer({ min: 0, max: 60 }).map(String);
    const change = fc.tuple(key, fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }));
    fc.assert(
      fc.property(fc.array(key, { maxLength: 40 }), fc.array(fc.record({ changes: fc.array(change, { maxLength: 12 }), removed: fc.array(key, { maxLength: 8 }) }), { maxLength: 40 }), (initial, rescans) => {
        let files: ReadonlyMap<string, number | undefined> = new Map(initial.map((k) => [k, Number(k) % 4]));
        let model = new Map(files);
        const history: { files: ReadonlyMap<string, number | undefined>; model: [string, number | undefined][] }[] = [];
        for (const r of rescans) {
          // A path is either stat'ed again (a stamp, or undefined) or gone, as in rescanPaths.
          const changes = new Map(r.changes);
          const removed = r.removed.filter((k) => !changes.has(k));
          files = PatchedMap.patched(files, changes, removed);
          model = new Map(model);
          for (const [k, v] of changes) model.set(k, v);
          for (const k of removed) model.delete(k);
          const entries = [...model].sort();
          history.push({ files, model: entries });
          expect(files.size).to.equal(model.size);
          for (let k = -1; k <= 61; k++) {
            expect(files.get(String(k))).to.equal(model.get(String(k)));
            expect(files.has(String(k))).to.equal(model.has(String(k)));
          }
          expect([...files].sort()).to.deep.equal(entries);
          expect([...files.keys()].sort()).to.deep.equal(entries.map(([k]) => k));
          // Values in the entries' order; valueList is what a worker hands the compiler.
          const inOrder = [...files].map(([, v]) => v);
          expect([...files.values()]).to.deep.equal(inOrder);
          if (files instanceof PatchedMap) expect(files.valueList()).to.deep.equal(inOrder);
        }
        for (const h of history) expect([...h.files].sort()).to.deep.equal(h.model);
      }),
      { numRuns: RUNS },
    );
  });
});
