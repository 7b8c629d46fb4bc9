import { expect } from 'chai';
import { calendarPeriod, takeCalendar, takeRate, takeRolling, type CounterState } from '../../src/usage/arithmetic.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** Runs requests at the given offsets (ms from T0) against one GCRA counter; returns pass/fail per request. */
function rateRun(offsets: number[], count: number, periodMs: number, burst: number, cost = 1) {
  let state: CounterState | undefined;
  return offsets.map((dt) => {
    const r = takeRate(state, T0 + dt, cost, count, periodMs, burst);
    if (r.next !== undefined) state = { a: r.next, b: 0, c: 0 };
    return r.result;
  });
}

describe('usage arithmetic', () => {
  describe('GCRA (rate with burst)', () => {
    it('10/1s burst 5: five pass at once, the sixth waits 100 ms, then one per 100 ms', () => {
      const r = rateRun([0, 0, 0, 0, 0, 0, 99, 100, 150, 200], 10, 1000, 5);
      expect(r.map((x) => x.passed)).to.deep.equal([true, true, true, true, true, false, false, true, false, true]);
      // After five at t=0 the bucket is empty: remaining 0, full again 500 ms later.
      expect(r[4]).to.include({ remaining: 0, resetMs: 500, retryAfterMs: 0, limit: 5, windowMs: 500 });
      expect(r[5]).to.include({ remaining: 0, retryAfterMs: 100 });
      expect(r[6]).to.include({ retryAfterMs: 1 });
      expect(r[8]).to.include({ retryAfterMs: 50 });
    });

    it('remaining counts what would pass now, and refills one per emission interval', () => {
      const r = rateRun([0, 250, 10_000], 4, 1000, 4); // T = 250 ms
      expect(r.map((x) => x.remaining)).to.deep.equal([3, 3, 3]);
    });

    it('no 2x at a window boundary: 100/1m burst 1 lets at most 2 requests through around any minute mark', () => {
      // Requests every 100 ms from 59.0 s to 61.0 s: only those 600 ms apart pass.
      const offsets = Array.from({ length: 21 }, (_, i) => 59_000 + i * 100);
      const passed = rateRun([0, ...offsets], 100, 60_000, 1).filter((x) => x.passed).length;
      expect(passed).to.equal(1 + 4); // t=0, then 59.0, 59.6, 60.2, 60.8
    });

    it('over a long run the rate converges to count/period plus the burst', () => {
      const offsets = Array.from({ length: 6000 }, (_, i) => i * 10); // 100/s offered for 60 s
      const passed = rateRun(offsets, 10, 1000, 20).filter((x) => x.passed).length;
      expect(passed).to.equal(20 + 600 - 1); // burst, then one per 100 ms over 59.99 s
    });

    it('a cost takes several units; a cost above the burst never passes', () => {
      const r = rateRun([0, 0, 0], 10, 1000, 5, 3);
      expect(r.map((x) => x.passed)).to.deep.equal([true, false, false]);
      expect(r[1]).to.include({ remaining: 2, retryAfterMs: 100 });
      expect(rateRun([0], 10, 1000, 5, 6)[0]!.passed).to.equal(false);
    });

    it('thirds of a millisecond do not drift: 3/1s burst 1 for an hour passes exactly 3 per second', () => {
      const offsets = Array.from({ length: 3600 * 3 }, (_, i) => (i * 1000) / 3);
      const r = rateRun(offsets, 3, 1000, 1);
      expect(r.filter((x) => !x.passed)).to.have.length(0);
    });
  });

  describe('calendar quota (UTC)', () => {
    it('month periods are UTC calendar months, February included', () => {
      expect(calendarPeriod('month', Date.UTC(2026, 1, 28, 23, 59))).to.deep.equal({ start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) });
      expect(calendarPeriod('day', Date.UTC(2026, 1, 28, 23, 59))).to.deep.equal({ start: Date.UTC(2026, 1, 28), end: Date.UTC(2026, 2, 1) });
    });

    it('500/month: spent on Jan 31 23:59 UTC, open again at Feb 1 00:00 UTC', () => {
      let state: CounterState | undefined;
      const at = (t: number, cost: number) => {
        const r = takeCalendar(state, t, cost, 500, 'month');
        if (r.next) state = { ...r.next, c: 0 };
        return r.result;
      };
      expect(at(Date.UTC(2026, 0, 3), 499)).to.include({ passed: true, remaining: 1 });
      const last = Date.UTC(2026, 0, 31, 23, 59, 0);
      expect(at(last, 1)).to.include({ passed: true, remaining: 0 });
      expect(at(last + 1000, 1)).to.include({ passed: false, remaining: 0, retryAfterMs: 59_000, resetMs: 59_000 });
      expect(at(Date.UTC(2026, 1, 1), 1)).to.include({ passed: true, remaining: 499, windowMs: 28 * 86_400_000 });
    });
  });

  describe('rolling quota', () => {
    it('weights the previous window by how much of it the rolling window still covers', () => {
      let state: CounterState | undefined;
      const at = (t: number) => {
        const r = takeRolling(state, t, 1, 10, 3_600_000);
        if (r.next) state = r.next;
        return r.result;
      };
      const h = Date.UTC(2026, 0, 1, 10);
      for (let i = 0; i < 10; i++) expect(at(h + i * 60_000).passed).to.equal(true);
      expect(at(h + 30 * 60_000)).to.include({ passed: false });
      // At 11:30 the previous hour counts half: 5 used, 5 left.
      const r = at(h + 90 * 60_000);
      expect(r).to.include({ passed: true, remaining: 4 });
    });
  });
});
