/**
 * The cost meter of the decision being made. Conditions charge it as they run (see
 * cost-model.ts for what each operation costs); when a decision's budget is spent, the next charge
 * throws CostLimitError, an evaluation error like any other: an erroring allow rule does not
 * apply, an erroring deny rule denies.
 *
 * It is one object per thread, armed by the engine for one decision at a time. That is safe
 * because evaluation is synchronous (no CEL function Verdict registers is async): no two decisions
 * ever interleave on a thread. Unarmed (programs run outside `decide`), the budget is unlimited.
 */
export class CostLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CostLimitError';
  }
}

interface MeterState {
  /** Units left; below zero once the budget is spent (every later charge throws again). */
  remaining: number;
  limit: number;
  /** The setting that set the limit, for the message (limits.maxDecisionCost or limits.maxBatchCost). */
  setting: string;
  error: CostLimitError | undefined;
}

const meter: MeterState = { remaining: Infinity, limit: Infinity, setting: '', error: undefined };

/** Starts metering a decision with `limit` units; returns nothing, read `disarmMeter()` after. */
export function armMeter(limit: number, setting: string): void {
  meter.remaining = limit;
  meter.limit = limit;
  meter.setting = setting;
  meter.error = undefined;
}

/** Stops metering; returns the units the decision used (its whole limit when it ran out). */
export function disarmMeter(): number {
  // A refused charge was never spent: a decision that ran out used exactly its limit.
  const used = Math.min(meter.limit - meter.remaining, meter.limit);
  meter.remaining = Infinity;
  meter.limit = Infinity;
  meter.error = undefined;
  return used;
}

/** Units the decision may still spend (Infinity when unarmed): a bound for measuring operands. */
export function unitsLeft(): number {
  return meter.remaining;
}

/** Charges `units`; throws once the decision's budget is spent. Hot: keep it tiny. */
export function charge(units: number): void {
  if ((meter.remaining -= units) < 0) exceeded();
}

function exceeded(): never {
  // One error object per decision: conditions that keep running after the budget is spent (CEL
  // lets `||`, `&&` and exists/all absorb an error) throw it again cheaply, without a new stack.
  meter.error ??= new CostLimitError(
    `cost limit exceeded: evaluation stopped after ${meter.limit} cost units (${meter.setting}); ` +
      'the condition counts as an error (an allow rule does not apply, a deny rule denies)',
  );
  throw meter.error;
}
