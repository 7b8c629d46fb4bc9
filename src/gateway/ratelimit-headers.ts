/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers, -10/-11 syntax: Structured
 * Field Lists whose items are the policy names as Strings):
 *
 *   RateLimit-Policy: "export-rate";q=10;w=60, "export-month";q=500;w=2678400
 *   RateLimit: "export-rate";r=0;t=6, "export-month";r=120;t=1296000
 *
 * q per w: a quota's count per period; a rate's burst per the time the burst takes to refill (so
 * 10/1m burst 5 is q=5;w=30). w and t in whole seconds (rounded up); r: what would pass now. Only enforced limits are sent
 * (a shadow limit is the operator's measurement, not the client's business), and those that errored
 * are not. Limit names are letters, digits and _ . : - (checked at load): safe in an sf-string.
 */
import type { LimitState } from '../engine/decision.js';
import type { Header } from './responses.js';

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

export function rateLimitHeaders(states: readonly LimitState[] | undefined): Header[] {
  if (!states) return [];
  let policy = '';
  let current = '';
  for (const s of states) {
    if (s.mode !== 'enforce' || s.outcome === 'error') continue;
    const sep = policy ? ', ' : '';
    policy += `${sep}"${s.name}";q=${s.limit};w=${Math.max(1, seconds(s.windowMs))}`;
    current += `${sep}"${s.name}";r=${Math.max(0, Math.floor(s.remaining))};t=${seconds(s.resetMs)}`;
  }
  return policy ? [['ratelimit-policy', policy], ['ratelimit', current]] : [];
}

/** Retry-After (RFC 9110) in whole seconds, at least 1, for the limit that denied. */
export function retryAfter(state: LimitState): Header {
  return ['retry-after', String(Math.max(1, seconds(state.retryAfterMs)))];
}
