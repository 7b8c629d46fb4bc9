/**
 * Subject tokens refused, by problem (expired, bad_signature, keys_unavailable when a JWKS could
 * not be fetched, …), and JWKS files that failed to reload. Problems are a fixed vocabulary; any
 * other value is counted as "other", so the series stay bounded.
 */
import type { Registry } from 'prom-client';
import type { TokenVerifier } from '../auth/tokens.js';
import { registerCollector } from './metric-table.js';

const PROBLEM = /^[a-z][a-z_]{0,39}$/;
const MAX_PROBLEMS = 32;

export class TokenMetrics {
  private readonly problems = new Map<string, number>();
  private jwksReloadFailures = 0;

  refused(problem: string): void {
    let p = PROBLEM.test(problem) ? problem : 'other';
    if (!this.problems.has(p) && this.problems.size >= MAX_PROBLEMS) p = 'other';
    this.problems.set(p, (this.problems.get(p) ?? 0) + 1);
  }

  jwksReloadFailed(): void {
    this.jwksReloadFailures++;
  }

  /**
   * Counts every refused token of `verifier`, whichever adapter asked. The instance's verify is
   * wrapped (rather than TokenVerifier changed) so the verifier stays free of metrics.
   */
  observe(verifier: TokenVerifier): void {
    const verify = verifier.verify.bind(verifier);
    verifier.verify = async (token) => {
      const result = await verify(token);
      if (!result.ok) this.refused(result.problem);
      return result;
    };
  }

  register(registry: Registry): void {
    registerCollector(registry, 'verdict_token_errors_total', 'Subject tokens refused, by problem (keys_unavailable: the issuer keys could not be fetched).', 'counter', () =>
      [...this.problems].map(([problem, value]) => ({ value, labels: { problem } })),
    );
    registerCollector(registry, 'verdict_jwks_reload_failures_total', 'Changes to a local JWKS file (tokens.issuers[].jwksFile) that could not be read; the previous keys stay in use.', 'counter', () => [
      { value: this.jwksReloadFailures, labels: {} },
    ]);
  }
}
