import { RE2JS } from 're2js';

/**
 * `matches()` runs on re2js, a pure-JavaScript port of RE2 (Go's regexp): matching is linear in
 * the input, whatever the pattern. Patterns are policy literals, compiled once at load; what RE2
 * cannot run (backreferences, lookaround, repetition counts over 1,000, ...) is a load error.
 * CEL's `matches` is RE2's partial match: true when the pattern matches anywhere in the string.
 */
export interface CompiledPattern {
  readonly source: string;
  test(input: string): boolean;
}

/** Patterns by source: the same literal in many conditions is compiled once per process. */
const cache = new Map<string, CompiledPattern>();
const CACHE_LIMIT = 10_000;

/** Compiles an RE2 pattern; throws an Error that says why a pattern is refused. */
export function compilePattern(pattern: string): CompiledPattern {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new Error(`regular expression ${JSON.stringify(pattern)} is not valid RE2 syntax: ${describe(err)}`);
  }
  const compiled: CompiledPattern = { source: pattern, test: (input) => re.test(input) };
  if (cache.size < CACHE_LIMIT) cache.set(pattern, compiled);
  return compiled;
}

/** re2js messages are Go's ("invalid escape sequence: `\\1`"); add the hint a policy author needs. */
function describe(err: unknown): string {
  const message = (err as Error)?.message?.replace(/^error parsing regexp: /, '') ?? String(err);
  if (/invalid escape sequence: `\\[1-9]`/.test(message)) return `${message} (backreferences are not supported: RE2 matches in linear time)`;
  if (/invalid or unsupported Perl syntax: `\(\?<?[=!]|invalid named capture: `\(\?<[=!]/.test(message)) return `${message} (lookahead and lookbehind are not supported: RE2 matches in linear time)`;
  if (/invalid repeat count/.test(message)) return `${message} (a counted repetition may not exceed 1000, nested counts included)`;
  if (/invalid escape sequence: `\\u`/.test(message)) return `${message} (write a code point as \\x{41} or the character itself)`;
  return message;
}

/** undefined when `pattern` compiles, else why not (used by the load-time linter). */
export function checkRegexPattern(pattern: string): string | undefined {
  try {
    compilePattern(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
