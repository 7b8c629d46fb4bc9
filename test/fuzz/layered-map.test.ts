/**
 * The compiler keeps its per-file and per-type state in LayeredMaps (a shared base and a small delta
 * per version). Property: after any sequence of versions, each with any sets and deletes, every
 * version reads exactly like a plain Map given the same operations, and older versions never change.
 * VERDICT_FUZZ_RUNS raises the number of sequences (make fuzz).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { LayeredMap } from '../../src/policy/layered-map.js';

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
