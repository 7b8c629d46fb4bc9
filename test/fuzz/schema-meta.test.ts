/**
 * The quick meta-schema answer (src/policy/schema-meta.ts) lets declarations skip ajv's meta-schema
 * only for schemas ajv would accept. Property: whenever it says "certainly valid", ajv's draft-07
 * meta-schema validation (as the declarations compile it, strict) agrees. VERDICT_FUZZ_RUNS raises
 * the number of cases.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { certainlyCompiles, certainlyValidSchema } from '../../src/policy/schema-meta.js';

const RUNS = Number(process.env.VERDICT_FUZZ_RUNS ?? 400);
const Ajv = (createRequire(import.meta.url)('ajv') as { default: new (o: object) => { validateSchema(s: unknown): boolean | Promise<unknown> } }).default;
const ajv = new Ajv({ allErrors: true, strict: true });
/** As declarations compile (src/policy/declarations.ts: strict, the schema validated beforehand). */
const newCompiler = () => new Ajv({ allErrors: true, strict: true, validateSchema: false }) as unknown as { compile(s: unknown): unknown };

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

/** Schemas of one declared type with keywords that mostly apply to it (and sometimes not). */
const TYPES = ['string', 'number', 'integer', 'array', 'boolean', 'null', 'object'];
const typedSchema: fc.Arbitrary<unknown> = fc.letrec<{ schema: unknown }>((tie) => ({
  schema: fc
    .tuple(
      fc.oneof(fc.constantFrom(...TYPES), fc.constant(undefined), fc.constant(['string', 'null'])),
      fc.array(
        fc.oneof(
          fc.tuple(fc.constantFrom('minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'minItems', 'maxItems'), fc.integer({ min: 0, max: 9 })),
          fc.tuple(fc.constant('uniqueItems'), fc.boolean()),
          fc.tuple(fc.constantFrom('enum'), fc.uniqueArray(fc.oneof(fc.string({ maxLength: 2 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 3 })),
          fc.tuple(fc.constantFrom('const', 'description', 'title', 'format'), fc.string({ maxLength: 3 })),
          fc.tuple(fc.constant('items'), tie('schema')),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([type, entries]) => {
      const out: Record<string, unknown> = type === undefined ? {} : { type };
      for (const [k, v] of entries) out[k as string] = v;
      return out;
    }),
})).schema;

describe('fuzz: a schema left to compile on first use certainly compiles', () => {
  for (const [name, arbitrary] of [
    ['generated keywords', schema],
    ['typed schemas', typedSchema],
  ] as const) {
    it(`certainly compiles implies ajv (strict) compiles it: ${name}`, () => {
      let accepted = 0;
      fc.assert(
        fc.property(arbitrary, (s) => {
          if (!certainlyCompiles(s)) return true;
          accepted++;
          expect(() => newCompiler().compile(s), JSON.stringify(s)).not.to.throw();
          return true;
        }),
        { numRuns: RUNS },
      );
      if (name === 'typed schemas') expect(accepted).to.be.greaterThan(RUNS / 10);
    });
  }

  it('leaves to the load what strict mode refuses: union types, formats, keywords without their type', () => {
    for (const s of [{ type: 'string', enum: ['a'] }, { type: 'integer', minimum: 0, maximum: 3 }, { type: 'array', items: { type: 'string' }, maxItems: 32 }, { enum: [1, 2] }, true]) {
      expect(certainlyCompiles(s), JSON.stringify(s)).to.equal(true);
      expect(() => newCompiler().compile(s)).not.to.throw();
    }
    for (const s of [{ type: ['string', 'number'] }, { type: 'string', format: 'email' }, { minimum: 0 }, { type: 'string', minimum: 0 }, { type: 'array', items: { minLength: 1 } }]) {
      expect(certainlyCompiles(s), JSON.stringify(s)).to.equal(false);
      expect(() => newCompiler().compile(s), JSON.stringify(s)).to.throw();
    }
    // Compiles, but any type array is left to the load (kept simple: only `[T, null]` unions compile)
    expect(certainlyCompiles({ type: ['string', 'null'] })).to.equal(false);
  });
});
