/**
 * The quick meta-schema answer (src/policy/schema-meta.ts) lets declarations skip ajv's meta-schema
 * only for schemas ajv would accept. Property: whenever it says "certainly valid", ajv's draft-07
 * meta-schema validation (as the declarations compile it, strict) agrees. VERDICT_FUZZ_RUNS raises
 * the number of cases.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { certainlyValidSchema } from '../../src/policy/schema-meta.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 400);
const Ajv = (createRequire(import.meta.url)('ajv') as { default: new (o: object) => { validateSchema(s: unknown): boolean | Promise<unknown> } }).default;
const ajv = new Ajv({ allErrors: true, strict: true });

/** Values that sit on either side of each keyword's rule. */
const anyValue = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 2.5, 0.5, 3, 1e21, Number.MAX_SAFE_INTEGER, Infinity, -Infinity, NaN, true, false, null, '', 'string', 'number', 'integer', 'object', 'x'),
  fc.double(),
  fc.integer({ min: -5, max: 40 }),
  fc.string({ maxLength: 4 }),
  fc.array(fc.constantFrom('string', 'number', 'null', 'array', 'bogus', 1, null, true, 'string'), { maxLength: 4 }),
  fc.array(fc.oneof(fc.string({ maxLength: 2 }), fc.integer({ min: -2, max: 2 }), fc.constantFrom(null, true, false, 0, -0, NaN, Infinity)), { maxLength: 4 }),
  fc.constant({}),
  fc.constant({ type: 'string' }),
  fc.constant([{ type: 'string' }]),
);
const KEYWORDS = ['type', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'minItems', 'maxItems', 'items', 'description', 'title', '$comment', 'format', 'uniqueItems', 'pattern', 'properties', 'required', 'additionalItems', '$ref', 'default', 'typo', '__proto__'];

const schema: fc.Arbitrary<unknown> = fc.letrec<{ schema: unknown }>((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc
      .array(fc.tuple(fc.constantFrom(...KEYWORDS), fc.oneof({ arbitrary: anyValue, weight: 4 }, { arbitrary: tie('schema'), weight: 1 })), { maxLength: 4 })
      .map((entries) => {
        const out: Record<string, unknown> = {};
        for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        return out;
      }),
  ),
})).schema;

describe('fuzz: the quick meta-schema answer never accepts what ajv refuses', () => {
  it('certainly valid implies valid against the draft-07 meta-schema', () => {
    let accepted = 0;
    fc.assert(
      fc.property(schema, (s) => {
        if (!certainlyValidSchema(s)) return true;
        accepted++;
        expect(ajv.validateSchema(s), JSON.stringify(s)).to.equal(true);
        return true;
      }),
      { numRuns: RUNS },
    );
    // Vacuous if nothing were ever accepted.
    expect(accepted).to.be.greaterThan(RUNS / 20);
  });

  it('accepts the schemas declarations are usually written with, and leaves other forms to ajv', () => {
    for (const s of [{ type: 'string', enum: ['a', 'b'] }, { type: 'integer', minimum: 0, maximum: 3 }, { type: 'array', items: { type: 'string' }, maxItems: 32 }, { type: ['string', 'null'] }, true]) {
      expect(certainlyValidSchema(s), JSON.stringify(s)).to.equal(true);
    }
    for (const s of [{ type: 'strin' }, { enum: [] }, { enum: ['a', 'a'] }, { minimum: Infinity }, { maxLength: -1 }, { multipleOf: 0 }, { pattern: 'a+' }, { items: [{}] }, { $ref: '#' }, null, []]) {
      expect(certainlyValidSchema(s), JSON.stringify(s)).to.equal(false);
    }
  });
});
