import v8 from 'node:v8';

let fallbackEnabled = false;

/**
 * CEL's `matches()` runs on JavaScript's backtracking RegExp engine, where `(a+)+$` on a short
 * input can take seconds. V8 can switch a regex to its linear-time engine once backtracking gets
 * excessive; we turn that on process-wide before any policy is compiled. Together with the
 * load-time check below (every pattern must be linear-time compatible), no pattern can stall a
 * decision.
 */
export function enableLinearRegexFallback(): void {
  if (fallbackEnabled) return;
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  v8.setFlagsFromString('--enable-experimental-regexp-engine');
  fallbackEnabled = true;
}

/**
 * Returns undefined when `pattern` is usable in a policy, else why not. We accept the subset of
 * JavaScript regex syntax that V8's linear engine accepts: this is RE2's model (no backreferences,
 * no lookaround), so a pattern that loads can always run in linear time.
 */
export function checkRegexPattern(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
  } catch (err) {
    return `invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`;
  }
  enableLinearRegexFallback();
  try {
    new RegExp(pattern, 'l');
  } catch {
    return `regular expression ${JSON.stringify(pattern)} cannot run in linear time (backreferences and lookaround are not allowed, as in RE2)`;
  }
  return undefined;
}
