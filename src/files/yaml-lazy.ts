import type * as Yaml from 'yaml';
import type { Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { lazyModule } from './lazy-module.js';

/**
 * The `yaml` library (about 70 modules), loaded on first use: a start whose policies all take the
 * fast read and that has no configuration, routes or key file to read never loads it
 * (docs/performance.md, "Cold start").
 */
export const yamlLibrary = lazyModule<typeof Yaml>('yaml');

// `yaml`'s own isMap/isSeq/isScalar (its nodes/identity.js) test these registered symbols; the same
// tests here need no import of the library, and also accept the fast read's plain nodes (yaml-fast.ts).
const NODE_TYPE = Symbol.for('yaml.node.type');
const MAP = Symbol.for('yaml.map');
const SEQ = Symbol.for('yaml.seq');
const SCALAR = Symbol.for('yaml.scalar');

const typeOf = (node: unknown): unknown => (!!node && typeof node === 'object' ? (node as Record<symbol, unknown>)[NODE_TYPE] : undefined);

export const isMap = (node: unknown): node is YAMLMap<unknown, unknown> => typeOf(node) === MAP;
export const isSeq = (node: unknown): node is YAMLSeq<unknown> => typeOf(node) === SEQ;
export const isScalar = (node: unknown): node is Scalar<unknown> => typeOf(node) === SCALAR;
