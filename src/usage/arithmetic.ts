/**
 * The arithmetic of usage counters, pure (times in milliseconds since the epoch, handed in).
 *
 * Rate — GCRA (the generic cell rate algorithm, a token bucket kept as one number): a limit of
 * `count` per `periodMs` has an emission interval T = periodMs / count, and a burst b lets b
 * requests pass at once. The state is the theoretical arrival time (TAT) of the next request; a
 * request of cost c at time t moves it to max(TAT, t) + c·T and passes when that is at most b·T
 * ahead of t. There are no windows: after a full burst, requests pass one per T, never 2× at a
 * boundary.
 *
 * Quota — calendar: `count` per UTC hour, day or month, counted from the period's start.
 * Quota — rolling: `count` per sliding window of W, estimated from the current and previous aligned
 * windows (previous weighted by how much of it the sliding window still covers). Exact when the
 * traffic is even; at worst it is off by the previous window's count times the weighting error.
 */
import type { LimitMeasure, QuotaPeriod } from '../engine/usage.js';

/** One counter's state: rate: a = TAT; calendar: a = period start, b = used; rolling: a = window start, b = used in it, c = used in the previous one. */
export interface CounterState {
  a: number;
  b: number;
  c: number;
}

export interface CounterResult {
  readonly passed: boolean;
  /** Cost units that would pass now (after this request when it passed). */
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
  readonly windowMs: number;
  /** What can pass at once: the burst, or the quota's count. */
  readonly limit: number;
}

const EPS = 1e-6;

/** GCRA: takes `cost` at `now` from `state` (mutated only when the request passes). */
export function takeRate(state: CounterState | undefined, now: number, cost: number, count: number, periodMs: number, burst: number): { result: CounterResult; next: number | undefined } {
  const t = periodMs / count;
  const tau = burst * t;
  const tat = state === undefined ? now : Math.max(state.a, now);
  const newTat = tat + cost * t;
  const limit = burst;
  if (newTat - now > tau + EPS * t) {
    return {
      result: { passed: false, remaining: Math.max(0, Math.floor((tau - (tat - now)) / t + EPS)), retryAfterMs: Math.ceil(newTat - tau - now - EPS * t), resetMs: Math.ceil(tat - now), windowMs: Math.ceil(tau), limit },
      next: undefined,
    };
  }
  return {
    result: { passed: true, remaining: Math.max(0, Math.floor((tau - (newTat - now)) / t + EPS)), retryAfterMs: 0, resetMs: Math.ceil(newTat - now), windowMs: Math.ceil(tau), limit },
    next: newTat,
  };
}

/** Start and end (ms) of the calendar period holding `now`, in UTC. */
export function calendarPeriod(calendar: 'hour' | 'day' | 'month', now: number): { start: number; end: number } {
  if (calendar === 'hour') {
    const start = Math.floor(now / 3_600_000) * 3_600_000;
    return { start, end: start + 3_600_000 };
  }
  if (calendar === 'day') {
    const start = Math.floor(now / 86_400_000) * 86_400_000;
    return { start, end: start + 86_400_000 };
  }
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
}

/** Calendar quota: `count` per period; `state` is mutated when the request passes. */
export function takeCalendar(state: CounterState | undefined, now: number, cost: number, count: number, calendar: 'hour' | 'day' | 'month'): { result: CounterResult; next: { a: number; b: number } | undefined } {
  const { start, end } = calendarPeriod(calendar, now);
  const used = state !== undefined && state.a === start ? state.b : 0;
  const windowMs = end - start;
  if (used + cost > count) {
    return { result: { passed: false, remaining: count - used, retryAfterMs: end - now, resetMs: end - now, windowMs, limit: count }, next: undefined };
  }
  return { result: { passed: true, remaining: count - used - cost, retryAfterMs: 0, resetMs: end - now, windowMs, limit: count }, next: { a: start, b: used + cost } };
}

/** Rolling quota (sliding window estimate over two aligned windows of `windowMs`). */
export function takeRolling(state: CounterState | undefined, now: number, cost: number, count: number, windowMs: number): { result: CounterResult; next: CounterState | undefined } {
  const start = Math.floor(now / windowMs) * windowMs;
  let cur = 0;
  let prev = 0;
  if (state !== undefined) {
    if (state.a === start) {
      cur = state.b;
      prev = state.c;
    } else if (state.a === start - windowMs) prev = state.b;
  }
  const weight = 1 - (now - start) / windowMs;
  const used = prev * weight + cur;
  const end = start + windowMs;
  if (used + cost > count + EPS) {
    // When the previous window's share will have faded enough (or, if the current window alone is too
    // much, once it has become the previous one and faded).
    let retry: number;
    const room = count - cur - cost;
    if (room >= 0 && prev > 0) retry = start + windowMs * (1 - room / prev) - now;
    else {
      const roomNext = count - cost;
      retry = roomNext >= 0 && cur > 0 ? end + windowMs * (1 - roomNext / cur) - now : end - now;
    }
    return { result: { passed: false, remaining: Math.max(0, Math.floor(count - used + EPS)), retryAfterMs: Math.max(1, Math.ceil(retry)), resetMs: end - now, windowMs, limit: count }, next: undefined };
  }
  return {
    result: { passed: true, remaining: Math.max(0, Math.floor(count - used - cost + EPS)), retryAfterMs: 0, resetMs: end - now, windowMs, limit: count },
    next: { a: start, b: cur + cost, c: prev },
  };
}

/** True when a counter holds nothing that would change an answer at `now`: it can be forgotten. */
export function idle(measure: LimitMeasure, state: CounterState, now: number): boolean {
  if (measure.kind === 'rate') return state.a <= now;
  return quotaIdle(measure.period, state, now);
}

function quotaIdle(period: QuotaPeriod, state: CounterState, now: number): boolean {
  if ('calendar' in period) return state.a !== calendarPeriod(period.calendar, now).start;
  return state.a + 2 * period.rollingMs <= now;
}

/** Takes `cost` from the counter `state` of `measure` (pure: returns the next state, or undefined when unchanged). */
export function take(measure: LimitMeasure, state: CounterState | undefined, now: number, cost: number): { result: CounterResult; next: CounterState | undefined } {
  if (measure.kind === 'rate') {
    const r = takeRate(state, now, cost, measure.count, measure.periodMs, measure.burst);
    return { result: r.result, next: r.next === undefined ? undefined : { a: r.next, b: 0, c: 0 } };
  }
  const period = measure.period;
  if ('calendar' in period) {
    const r = takeCalendar(state, now, cost, measure.count, period.calendar);
    return { result: r.result, next: r.next && { a: r.next.a, b: r.next.b, c: 0 } };
  }
  return takeRolling(state, now, cost, measure.count, period.rollingMs);
}

/**
 * Adds `delta` cost units taken elsewhere (another replica, since the last sync) to the shared
 * state `global` at `now` (cluster scope): a rate's TAT moves on by delta × T from at least now; a
 * quota's count grows within its current period (a delta from a period that just ended counts in
 * the new one: conservative).
 */
export function mergeDelta(measure: LimitMeasure, global: CounterState | undefined, delta: number, now: number): CounterState {
  if (measure.kind === 'rate') {
    const t = measure.periodMs / measure.count;
    const tat = global === undefined ? now : Math.max(global.a, now);
    return { a: delta > 0 ? tat + delta * t : global?.a ?? now, b: 0, c: 0 };
  }
  const period = measure.period;
  if ('calendar' in period) {
    const { start } = calendarPeriod(period.calendar, now);
    const used = global !== undefined && global.a === start ? global.b : 0;
    return { a: start, b: used + delta, c: 0 };
  }
  const w = period.rollingMs;
  const start = Math.floor(now / w) * w;
  let cur = 0;
  let prev = 0;
  if (global !== undefined) {
    if (global.a === start) {
      cur = global.b;
      prev = global.c;
    } else if (global.a === start - w) prev = global.b;
  }
  return { a: start, b: cur + delta, c: prev };
}
