/**
 * Failure categories for the conformance report: which CEL feature a failing test exercises, with a
 * note on why cel-js (or Verdict's configuration) fails it. Rules are tried in order; a failure no
 * rule claims lands in "<file>: other" so new failures after an upgrade still show up.
 */
import type { TestResult } from './run.js';

export type Category = string;

interface Rule {
  readonly name: Category;
  readonly note: string;
  readonly match: (r: TestResult) => boolean;
}

const nonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);
const expectedError = (r: TestResult): boolean => r.code === 'no_error';

const RULES: readonly Rule[] = [
  {
    name: "Verdict's structural limits",
    note: 'The expression exceeds a parse limit of celBaseEnvironment() (maxDepth, maxAstNodes, maxListElements, maxMapEntries or maxCallArguments).',
    match: (r) => r.code === 'limit_exceeded',
  },
  // ---- core ------------------------------------------------------------------------------------
  {
    name: 'Missing range and overflow errors',
    note:
      'Results outside the CEL value ranges come back as values instead of errors: int(double) beyond int64, ' +
      '`-(-9223372036854775808)` and `(-9223372036854775808) / -1` (an "int" of 2^63), timestamps beyond year 1..9999, durations beyond ~10000 years.',
    match: (r) => expectedError(r) && /range|overflow/i.test(r.reason),
  },
  {
    name: 'Invalid UTF-8 accepted by string(bytes)',
    note: '`string(b\'\\000\\xff\')` must fail; cel-js decodes with replacement characters.',
    match: (r) => expectedError(r) && /UTF-8/i.test(r.reason),
  },
  {
    name: 'Missing type-conversion overloads',
    note: 'Not defined in cel-js: `int(uint)`, `int(timestamp)`, `string(timestamp)`, `string(duration)`, and the identities `duration(duration)`, `timestamp(timestamp)`.',
    match: (r) => /no matching overload for '(int|uint|double|string|bytes|bool|duration|timestamp)\((uint|int|double|google\.protobuf\.\w+)\)'/.test(r.reason),
  },
  {
    name: 'Fixed-offset time zones',
    note:
      'Timestamp accessors with a UTC-offset time zone (`getHours(\'+11:00\')`, `\'-09:30\'`) throw a raw JavaScript RangeError (not a CEL EvaluationError); IANA names work.',
    match: (r) => /Invalid time zone/.test(r.reason),
  },
  {
    name: 'Timestamp and duration arithmetic',
    note:
      'Timestamps are JavaScript Dates (millisecond precision), so nanosecond arithmetic is lost; `duration + timestamp` (operands swapped) computes a timestamp but is declared to return a duration, so comparing it with a timestamp fails to type-check; ' +
      '`duration.getMilliseconds()` returns the whole duration in ms instead of the millisecond component.',
    match: (r) => r.file === 'timestamps',
  },
  {
    name: 'Heterogeneous equality and numeric comparison across int/uint/double',
    note:
      'CEL defines `==`, `!=` and `in` across types (`1.0 == 1` is true, `dyn(3u) in [3]` is true, `[\'one\'] == [2, 3]` is false). ' +
      'cel-js raises no_such_overload for mixed-type `==`, finds no mixed-type element in `in`, and does not accept a uint list index.',
    match: (r) =>
      (/no such overload: .* (==|!=) /.test(r.reason) && !/optional</.test(r.reason)) ||
      (r.file === 'lists' && (r.section === 'in' || r.name === 'zero_based_uint')) ||
      /mixed_type_numbers/.test(r.name),
  },
  {
    name: 'int/double ordering near 2^63',
    note:
      'At the int64 boundary the tests expect the int to be converted to double (9223372036854775807 becomes 9223372036854775808.0, so `dyn(9223372036854775807) < 9223372036854775808.0` is false); ' +
      'cel-js compares the exact values and gives the opposite answer.',
    match: (r) => r.file === 'comparisons' && /lossy_double|big_double/.test(r.name),
  },
  {
    name: 'No ordering operators for bytes',
    note: '`<`, `<=`, `>`, `>=` on bytes (lexicographic in CEL) are not defined in cel-js; the checker rejects them.',
    match: (r) => /no such overload: bytes [<>]=? bytes/.test(r.reason),
  },
  {
    name: 'Non-ASCII characters in bytes literals',
    note: 'In `b\'ÿ\'` the character must be encoded as UTF-8 (2 bytes); cel-js stores its code point as a single byte.',
    match: (r) => r.stage === 'compare' && /\bb'[^']*'/.test(r.expr) && nonAscii(r.expr),
  },
  {
    name: 'Map key semantics',
    note:
      'cel-js builds map literals as plain objects with stringified keys: double and null keys are accepted, duplicate keys silently overwrite, ' +
      'and iterating `{6: \'six\'}` yields the string "6" where the checker promised an int.',
    match: (r) =>
      (r.file === 'fields' && /map_key_(float|null)|repeat_key/.test(r.name)) || (r.code === 'variable_type_mismatch' && /\{\s*\d+\s*:/.test(r.expr)),
  },
  {
    name: 'Strict operand types in &&, || and ?:',
    note: 'Unchecked expressions such as `false && 32` or `true ? \'cows\' : 17` are valid CEL (the short circuit decides); cel-js requires bool operands and same-typed branches.',
    match: (r) => r.code === 'invalid_logical_operand' || r.code === 'incompatible_ternary_branches',
  },
  {
    name: 'Undeclared names in unchecked expressions',
    note:
      'Tests with `disable_check` expect an undeclared variable or function to be a runtime error that `|| true` can absorb (`x || true`, `a.as() || true`). ' +
      'cel-js always type-checks before evaluating, so the whole expression fails. With declared names (as in every Verdict policy) this does not arise.',
    match: (r) => (r.code === 'unknown_variable' || r.code === 'no_matching_overload') && /\|\|\s*true\s*$/.test(r.expr),
  },
  {
    name: 'Qualified identifiers and containers',
    note: 'Variables with dotted names (`a.b.c`, `x.y`) and container-relative name resolution are not supported by cel-js.',
    match: (r) => r.file === 'namespace' || (r.file === 'fields' && r.section === 'qualified_identifier_resolution'),
  },
  {
    name: 'has() on non-identifier operands',
    note: '`has({\'a\': 1}.a)` (a select on a literal) is rejected as an invalid has() argument.',
    match: (r) => r.code === 'invalid_macro_argument' && /has\(/.test(r.expr) && !/`/.test(r.expr),
  },
  {
    name: 'Backtick-quoted field names',
    note: 'Field selection with backtick-quoted names (`` m.`content-type` ``, a recent addition to the CEL syntax) is not parsed.',
    match: (r) => r.stage === 'parse' && /\.`/.test(r.expr),
  },
  {
    name: 'Raw bytes literals',
    note: '`br\'...\'` / `bR"..."` (raw bytes literals) do not parse.',
    match: (r) => r.stage === 'parse' && /\bb[rR]['"]/.test(r.expr),
  },
  {
    name: 'Double literals without a leading digit',
    note: '`.99` does not parse (CEL accepts a leading dot).',
    match: (r) => r.stage === 'parse' && /(^|[^\w.])\.\d/.test(r.expr),
  },
  {
    name: 'Comprehension over an empty list literal',
    note: '`[].all(e, e > 0)` fails to type-check with an internal error ("Operator overload \'int > int: bool\' overlaps with \'double > int: bool\'").',
    match: (r) => /overlaps with/.test(r.reason),
  },
  {
    name: 'Parameterized (abstract) types in declarations',
    note: 'Declarations using abstract types such as `tuple(T, U, V)` cannot be expressed in cel-js.',
    match: (r) => r.stage === 'setup' && /abstract type/.test(r.reason),
  },
  {
    name: 'Type deduction differences',
    note: 'The checker\'s inferred type differs: unresolved type parameters leak as `T`, `[].map(x, x)[0]` is typed `undefined`, `[optional.of(1), null]` is not unified.',
    match: (r) => r.file === 'type_deductions',
  },
  // ---- extensions ------------------------------------------------------------------------------
  {
    name: 'Optional types (disabled in Verdict)',
    note: 'Verdict does not set `enableOptionalTypes`, so `optional.*`, `.?field` and `[?key]` are unavailable (the comparison table shows the pass rate with the option on).',
    match: (r) => r.file === 'optionals' || /optional</.test(r.reason),
  },
  {
    name: 'math extension not implemented',
    note: '`math.greatest`, `math.least`, `math.ceil`, `math.abs`, `math.bitAnd`, ... (cel-go ext/math) do not exist in cel-js.',
    match: (r) => r.file === 'math_ext',
  },
  {
    name: 'Two-variable comprehensions not implemented',
    note: '`exists(i, v, ...)`, `all(i, v, ...)`, `existsOne`, `transformList`, `transformMap` (cel-go ext/comprehensions) do not exist in cel-js.',
    match: (r) => r.file === 'macros2',
  },
  {
    name: 'cel.block not implemented',
    note: '`cel.block` / `cel.index` (cel-go ext/bindings, used for common-subexpression elimination) do not exist in cel-js.',
    match: (r) => r.file === 'block_ext',
  },
  {
    name: 'base64 encoders not implemented',
    note: '`base64.encode` / `base64.decode` (cel-go ext/encoders) do not exist (cel-js has `bytes.base64()` instead).',
    match: (r) => r.file === 'encoders_ext',
  },
  {
    name: 'string.format not implemented',
    note: '`"%s".format([...])` (cel-go ext/strings) does not exist in cel-js.',
    match: (r) => r.file === 'string_ext' && /format/.test(r.section),
  },
  {
    name: 'strings.quote not implemented',
    note: '`strings.quote()` does not exist in cel-js.',
    match: (r) => r.file === 'string_ext' && r.section === 'quote',
  },
  {
    name: 'string extension functions missing',
    note: '`charAt`, `replace` (and other cel-go ext/strings functions) are not defined in cel-js.',
    match: (r) => r.file === 'string_ext' && /no matching overload for 'string\./.test(r.reason),
  },
  {
    name: 'Unicode handling in string extension',
    note: '`lowerAscii`/`upperAscii` also change non-ASCII letters, `trim()` uses JavaScript\'s whitespace set (strips U+FEFF, keeps U+0085).',
    match: (r) => r.file === 'string_ext' && r.stage === 'compare',
  },
];

export const CATEGORY_NOTES: Record<Category, string> = Object.fromEntries(RULES.map((r) => [r.name, r.note]));

export function categorize(r: TestResult): Category {
  for (const rule of RULES) if (rule.match(r)) return rule.name;
  return `${r.file}: other`;
}
