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
  /** scope: cluster — counters shared through a NATS JetStream KV bucket (the decision stream's NATS). */
  readonly cluster: UsageClusterConfig;
}

export interface UsageClusterConfig {
  readonly bucket: string;
  readonly syncIntervalMs: number;
  readonly staleAfterMs: number;
  readonly fallback: 'local' | 'deny';
  readonly localShare: number;
}

export const USAGE_DEFAULTS: UsageConfig = {
  maxKeys: 1_000_000,
  stateDir: 'var/usage',
  saveIntervalMs: 10_000,
  headersOnAllow: true,
  cluster: { bucket: 'VERDICT_USAGE', syncIntervalMs: 100, staleAfterMs: 2000, fallback: 'local', localShare: 0.5 },
};
const CLUSTER_KEYS = Object.keys(USAGE_DEFAULTS.cluster);
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
  const cluster = validateCluster(obj.cluster, problems);
  return {
    cluster,
    maxKeys: int('maxKeys', 1000, 100_000_000),
    stateDir: typeof stateDir === 'string' ? stateDir : USAGE_DEFAULTS.stateDir,
    saveIntervalMs: int('saveIntervalMs', 0, 3_600_000),
    headersOnAllow: typeof headers === 'boolean' ? headers : true,
  };
}

function validateCluster(v: unknown, problems: string[]): UsageClusterConfig {
  const d = USAGE_DEFAULTS.cluster;
  if (v === undefined || v === null) return d;
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push('usage.cluster: must be a mapping');
    return d;
  }
  const o = v as Json;
  for (const k of Object.keys(o)) if (!CLUSTER_KEYS.includes(k)) problems.push(`usage.cluster.${k}: unknown setting (known: ${CLUSTER_KEYS.join(', ')})`);
  const num = (k: 'syncIntervalMs' | 'staleAfterMs', min: number, max: number): number => {
    const x = o[k] ?? d[k];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
      problems.push(`usage.cluster.${k}: must be an integer from ${min} to ${max} (got ${JSON.stringify(x)})`);
      return d[k];
    }
    return x;
  };
  const bucket = o.bucket ?? d.bucket;
  if (typeof bucket !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(bucket)) problems.push('usage.cluster.bucket: must be a KV bucket name (letters, digits, _ and -)');
  const fallback = o.fallback ?? d.fallback;
  if (fallback !== 'local' && fallback !== 'deny') problems.push('usage.cluster.fallback: must be "local" (each replica counts alone with localShare of each limit) or "deny"');
  const share = o.localShare ?? d.localShare;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) problems.push('usage.cluster.localShare: must be a number above 0 and at most 1 (e.g. 0.34 for three replicas)');
  return {
    bucket: typeof bucket === 'string' ? bucket : d.bucket,
    syncIntervalMs: num('syncIntervalMs', 10, 60_000),
    staleAfterMs: num('staleAfterMs', 100, 600_000),
    fallback: fallback === 'deny' ? 'deny' : 'local',
    localShare: typeof share === 'number' && share > 0 && share <= 1 ? share : d.localShare,
  };
}
