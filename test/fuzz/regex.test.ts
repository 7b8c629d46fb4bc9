/**
 * Property-based check of matches()'s fast path: a pattern `^X$` is run as a whole-input match of
 * X (re2js's anchored check, after a literal-prefix test). For generated patterns and inputs it
 * must answer exactly as re2js's plain search does. VERDICT_FUZZ_RUNS sets the number of cases.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { compilePattern, wholeMatchBody } from '../../src/cel/regex.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 500) * 4;

const atom = fc.constantFrom('a', 'b', 'ab', '.', '[a-c]', '[^a]', '\\d', '\\w', '\\s', '\\b', '\\$', '\\^', '[$|]', '[]a]', '(?i)a', '(?i:b)', '\\pL', '$', '^', '\\z', '\\A', 'é', '\\x{41}');
const { re } = fc.letrec<{ re: string }>((tie) => ({
  re: fc.oneof(
    { depthSize: 'small' },
    atom,
    fc.tuple(tie('re'), tie('re')).map(([x, y]) => x + y),
    fc.tuple(tie('re'), tie('re')).map(([x, y]) => `(${x}|${y})`),
    fc.tuple(tie('re'), tie('re')).map(([x, y]) => `${x}|${y}`),
    fc.tuple(tie('re'), fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '*?', '+?')).map(([x, q]) => `(?:${x})${q}`),
    tie('re').map((x) => `(?m)${x}`),
  ),
}));
const pattern = fc.oneof(re.map((x) => `^${x}$`), re);
const input = fc.oneof(fc.string({ unit: fc.constantFrom('a', 'b', 'c', '1', ' ', '$', '^', '|', 'A', 'é', '\n'), maxLength: 8 }), fc.string({ maxLength: 6 }));

describe('fuzz: matches() fast path answers as re2js search does', () => {
  it(`^X$ patterns and others, generated inputs (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(pattern, fc.array(input, { minLength: 1, maxLength: 8 }), (p, inputs) => {
        let reference: RE2JS;
        try {
          reference = RE2JS.compile(p);
        } catch {
          return; // not RE2: refused at load, nothing to compare
        }
        const ours = compilePattern(p);
        for (const s of inputs) expect(ours.test(s), `${JSON.stringify(p)} on ${JSON.stringify(s)} (fast path: ${wholeMatchBody(p) !== undefined})`).to.equal(reference.test(s));
      }),
      { numRuns: RUNS },
    );
  });
});
