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
  if (/\\[1-9]|\\k<|\(\?<?[=!]/.test(pattern)) {
    return `regular expression ${JSON.stringify(pattern)} uses backreferences or lookaround, which are not allowed (RE2 semantics: matching must run in linear time)`;
  }
  enableLinearRegexFallback();
  try {
    new RegExp(pattern, 'l');
    return undefined;
  } catch {
    // V8's linear engine also refuses large counted repetitions such as [0-9a-f]{32}. Those are
    // safe unless a quantified group contains another quantifier (the shape of catastrophic
    // backtracking, e.g. (a+)+ or (x{1,40}){1,40}); accept them, refuse nesting.
    if (hasNestedQuantifier(pattern)) {
      return `regular expression ${JSON.stringify(pattern)} nests quantifiers with counted repetition; it cannot be guaranteed to run in linear time (simplify it, e.g. without the outer quantifier)`;
    }
    return undefined;
  }
}

/** True when a parenthesised group that contains a quantifier is itself quantified. */
function hasNestedQuantifier(pattern: string): boolean {
  const stack: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push(false);
    else if (c === ')') {
      const innerQuantified = stack.pop() ?? false;
      const next = pattern[i + 1];
      const quantified = next === '*' || next === '+' || next === '?' || next === '{';
      if (innerQuantified && quantified) return true;
      if (stack.length > 0 && (innerQuantified || quantified)) stack[stack.length - 1] = true;
    } else if ((c === '*' || c === '+' || c === '{') && stack.length > 0) {
      stack[stack.length - 1] = true;
    }
  }
  return false;
}
