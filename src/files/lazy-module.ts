import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/**
 * A CommonJS package loaded on first use instead of at start: `verdict serve` without events, a
 * bundle source, --admin or declarations never loads nats, prom-client (and with it
 * @opentelemetry/api) or ajv, which cuts cold start (docs/performance.md, "Cold start").
 * Synchronous, so callers keep their synchronous APIs; types come from `import type`.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireHere(id) as T);
}
