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
  const whole = wholeMatchBody(pattern);
  let test: (input: string) => boolean = (input) => re.test(input);
  if (whole !== undefined) {
    // `^X$` matches exactly when X matches the whole input: re2js's anchored check is ~3× faster.
    const anchored = RE2JS.compile(whole);
    // Every match of X starts with its literal prefix (re2js computes it): a cheap first check.
    const prefix = anchored.re2().prefix;
    test = prefix ? (input) => input.startsWith(prefix) && anchored.testExact(input) : (input) => anchored.testExact(input);
  }
  const compiled: CompiledPattern = { source: pattern, test };
  if (cache.size < CACHE_LIMIT) cache.set(pattern, compiled);
  return compiled;
}

/**
 * X when `pattern` is `^X$` with both anchors applying to the whole of X (no top-level `|`, no
 * flag that changes what `^` and `$` mean), else undefined. The scan honours escapes and classes.
 */
export function wholeMatchBody(pattern: string): string | undefined {
  if (pattern.length < 2 || pattern[0] !== '^' || !pattern.endsWith('$')) return undefined;
  const body = pattern.slice(1, -1);
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      if (i === body.length - 1) return undefined; // the final `$` is escaped: `^a\$`
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (body[i + 1] === '^') i++;
      if (body[i + 1] === ']') i++; // a leading `]` is a literal
    } else if (c === '(') {
      if (body[i + 1] === '?' && /^\(\?[a-zA-Z-]*[mU]/.test(body.slice(i))) return undefined;
      depth++;
    } else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return undefined;
  }
  return depth === 0 && !inClass ? body : undefined;
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
