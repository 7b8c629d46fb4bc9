/** The `usage` section: counters of the policy's rate limits and quotas (docs/operations.md#usage-limits). */

type Json = Record<string, unknown>;

export interface UsageConfig {
  /** Most (limit, key) counters one process keeps; past it the least recently used is forgotten. */
  readonly maxKeys: number;
  /** Where quota counters are saved so they survive a restart; "" = not saved. */
  readonly stateDir: string;
  /** How often the state file is written (and at shutdown); 0 = only at shutdown. */
  readonly saveIntervalMs: number;
  /** ext_authz: send the RateLimit-Policy/RateLimit header fields on allowed responses a limit applied to. */
  readonly headersOnAllow: boolean;
}

export const USAGE_DEFAULTS: UsageConfig = { maxKeys: 1_000_000, stateDir: 'var/usage', saveIntervalMs: 10_000, headersOnAllow: true };
const KEYS = Object.keys(USAGE_DEFAULTS);

export function validateUsage(raw: Json, problems: string[]): UsageConfig {
  const v = raw.usage;
  if (v === undefined || v === null) return USAGE_DEFAULTS;
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push('usage: must be a mapping');
    return USAGE_DEFAULTS;
  }
  const obj = v as Json;
  for (const k of Object.keys(obj)) if (!KEYS.includes(k)) problems.push(`usage.${k}: unknown setting (known: ${KEYS.join(', ')})`);
  const int = (k: 'maxKeys' | 'saveIntervalMs', min: number, max: number): number => {
    const x = obj[k];
    if (x === undefined) return USAGE_DEFAULTS[k];
    const n = typeof x === 'string' && x.trim() !== '' ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      problems.push(`usage.${k}: must be an integer from ${min} to ${max} (got ${JSON.stringify(x)})`);
      return USAGE_DEFAULTS[k];
    }
    return n;
  };
  const stateDir = obj.stateDir === undefined ? USAGE_DEFAULTS.stateDir : obj.stateDir;
  if (typeof stateDir !== 'string') problems.push('usage.stateDir: must be a directory path, or "" to keep quota counters in memory only');
  const headers = obj.headersOnAllow === undefined ? USAGE_DEFAULTS.headersOnAllow : obj.headersOnAllow;
  if (typeof headers !== 'boolean') problems.push('usage.headersOnAllow: must be true or false');
  return {
    maxKeys: int('maxKeys', 1000, 100_000_000),
    stateDir: typeof stateDir === 'string' ? stateDir : USAGE_DEFAULTS.stateDir,
    saveIntervalMs: int('saveIntervalMs', 0, 3_600_000),
    headersOnAllow: typeof headers === 'boolean' ? headers : true,
  };
}
