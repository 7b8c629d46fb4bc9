import { expect } from 'chai';
import { newDecisionId } from '../../src/service/ids.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds a UUIDv7 carries in its first 48 bits. */
function msOf(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

describe('decision ids (UUIDv7)', () => {
  it('carry the millisecond they were made in, also when consecutive ids change millisecond', () => {
    // Alternating times: the time part is reused within a millisecond and must follow each change.
    const times = [1_733_561_000_000, 1_733_561_000_001, 1_733_561_000_000, 0, 0xffff_ffff_ffff, 255, 256, 1_733_561_000_001];
    for (const t of times) {
      const id = newDecisionId(t);
      expect(id).to.match(UUID_V7);
      expect(msOf(id), id).to.equal(t);
    }
  });

  it('sort by time and are distinct within one millisecond', () => {
    const t = Date.now();
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newDecisionId(t));
    expect(ids.size).to.equal(10_000);
    const later = newDecisionId(t + 1);
    for (const id of ids) expect(id < later, `${id} < ${later}`).to.equal(true);
  });
});
