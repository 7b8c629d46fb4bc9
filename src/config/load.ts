import { readFileSync } from 'node:fs';
import os from 'node:os';
import { yamlLibrary } from '../files/yaml-lazy.js';
import { DEFAULT_COST_LIMITS, DEFAULT_REQUEST_LIMITS } from '../engine/limits.js';
import { USAGE_DEFAULTS, validateUsage } from './usage.js';
import { MIN_EVENT_BYTES } from '../events/budget.js';
import { natsServers, natsSettingsProblems } from '../events/nats-options.js';
import { validateGateway, validateTls, validateTokens } from './auth.js';
import { loadSigningKey } from '../keys/signing-key.js';
import { validateHttp } from './http.js';
import { DEFAULT_BUNDLE_LIMITS } from '../bundles/format.js';
import { parseBundleSourceUrl } from '../bundles/source-url.js';
import { tracingFromEnvironment, validateAdmin } from './observability.js';
import type { EventsConfig, LogLevel, VerdictConfig } from './schema.js';

/** A configuration problem: says which setting, what is wrong, and how to fix it. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_CONFIG: VerdictConfig = {
  workers: Math.max(1, os.availableParallelism()),
  workerSemiSpaceMB: 8,
  heapGrowthPercent: 50,
  listen: '127.0.0.1:50051',
  policies: 'policies',
  logLevel: 'info',
  logDecisions: false,
  limits: {
    maxMessageBytes: 1024 * 1024,
    maxBatchItems: 100,
    ...DEFAULT_REQUEST_LIMITS,
    ...DEFAULT_COST_LIMITS,
  },
  reload: { watch: true, debounceMs: 25, settleMs: 2000, pollIntervalMs: 2000 },
  shutdown: { graceMs: 10_000 },
  transport: {
    maxConnections: 1000,
    maxConcurrentStreams: 1000,
    requestTimeoutMs: 10_000,
    maxPendingRequests: 1000,
    maxPendingBytes: 64 * 1024 * 1024,
    idleTimeoutMs: 300_000,
    keepaliveTimeMs: 60_000,
    keepaliveTimeoutMs: 20_000,
    maxConnectionAgeMs: 0,
    maxConnectionAgeGraceMs: 0,
    maxSessionMemoryMb: 32,
  },
  events: {
    enabled: true,
    natsUrl: 'nats://127.0.0.1:4222',
    subjectPrefix: 'verdict.decisions',
    stream: 'VERDICT_DECISIONS',
    maxAgeSeconds: 90 * 24 * 3600,
    duplicateWindowSeconds: 2 * 3600,
    queueSize: 10_000,
    spoolDir: 'var/spool',
    spoolMaxBytes: 1024 * 1024 * 1024,
    publisherThread: true,
    flushIntervalMs: 20,
    checkpointIntervalMs: 100,
    checkpointMaxEvents: 1000,
    ackTimeoutMs: 3000,
    required: false,
    includeAttributes: 'none',
    maskAttributes: [],
    instanceId: `${os.hostname()}-${process.pid}`,
    maxFieldBytes: 1024,
    maxListBytes: 16 * 1024,
    maxEventBytes: 900 * 1024,
    handoffMaxEvents: 50_000,
    handoffMaxBytes: 64 * 1024 * 1024,
    manageStream: true,
    streamCheckIntervalMs: 10_000,
    healthRequiresTrail: false,
    replicas: 1,
    natsUser: '',
    natsPasswordFile: '',
    natsTokenFile: '',
    natsNkeySeedFile: '',
    natsCredsFile: '',
    natsCaFile: '',
    natsCertFile: '',
    natsKeyFile: '',
    signingKeyFile: '',
    headsBucket: 'VERDICT_HEADS',
    headsIntervalMs: 10_000,
    revisionsBucket: 'VERDICT_POLICIES',
    revisionsTimeoutMs: 2000,
  },
  policySource: {
    url: '',
    bucket: 'VERDICT_POLICIES',
    labelsBucket: 'VERDICT_POLICY_LABELS',
    cacheDir: 'var/policy-cache',
    timeoutMs: 5000,
    pollIntervalMs: 10_000,
    maxBundleBytes: DEFAULT_BUNDLE_LIMITS.maxBundleBytes,
  },
  fleet: { bucket: 'VERDICT_FLEET', heartbeatMs: 5000, natsUrl: '' },
  usage: USAGE_DEFAULTS,
};

type Json = Record<string, unknown>;
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Flags of `verdict serve` that map onto settings; later sources win: file < env < flags. */
export interface ConfigOverrides {
  readonly configFile?: string;
  readonly listen?: string;
  readonly policies?: string;
  readonly natsUrl?: string;
  readonly noEvents?: boolean;
  readonly logLevel?: string;
  readonly required?: boolean;
  readonly spoolDir?: string;
  readonly instanceId?: string;
  readonly workers?: string;
  /** --routes: the ext_authz routes file (gateway.routesFile). */
  readonly routes?: string;
  /** --http: serve the AuthZEN HTTP API on HOST:PORT (http.listen). */
  readonly http?: string;
  /** --policy-source: a bundle label in NATS (policySource.url). */
  readonly policySource?: string;
  /** --admin: the admin HTTP listener (admin.listen). */
  readonly admin?: string;
}

function setPath(target: Json, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Json;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Environment variables understood by Verdict, and the setting each one sets. */
export const ENVIRONMENT_VARIABLES: Record<string, string> = {
  VERDICT_WORKERS: 'workers',
  VERDICT_WORKER_SEMI_SPACE_MB: 'workerSemiSpaceMB',
  VERDICT_HEAP_GROWTH_PERCENT: 'heapGrowthPercent',
  VERDICT_LISTEN: 'listen',
  VERDICT_POLICIES: 'policies',
  VERDICT_LOG_LEVEL: 'logLevel',
  VERDICT_LOG_DECISIONS: 'logDecisions',
  VERDICT_NATS_URL: 'events.natsUrl',
  VERDICT_EVENTS: 'events.enabled',
  VERDICT_AUDIT_REQUIRED: 'events.required',
  VERDICT_SPOOL_DIR: 'events.spoolDir',
  VERDICT_INSTANCE_ID: 'events.instanceId',
  VERDICT_EVENTS_STREAM: 'events.stream',
  VERDICT_EVENTS_SUBJECT_PREFIX: 'events.subjectPrefix',
  VERDICT_SIGNING_KEY_FILE: 'events.signingKeyFile',
  VERDICT_GATEWAY_ROUTES: 'gateway.routesFile',
  VERDICT_RELOAD_SETTLE_MS: 'reload.settleMs',
  VERDICT_HTTP_LISTEN: 'http.listen',
  VERDICT_POLICY_SOURCE: 'policySource.url',
  VERDICT_ADMIN_LISTEN: 'admin.listen',
};

function fromEnvironment(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  for (const [name, setting] of Object.entries(ENVIRONMENT_VARIABLES)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(out, setting, value);
  }
  return out;
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k] !== null && !Array.isArray(out[k])) {
      out[k] = merge(out[k] as Json, v as Json);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Builds and validates the configuration from defaults, a YAML file, the environment and flags. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): VerdictConfig {
  let fileJson: Json = {};
  const configFile = overrides.configFile ?? env.VERDICT_CONFIG;
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new ConfigError([`config file ${configFile}: cannot read it (${(err as Error).message}); check the path given to --config or VERDICT_CONFIG`]);
    }
    try {
      const parsed: unknown = yamlLibrary().parse(text);
      if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        throw new Error('the file must hold a YAML mapping of settings');
      }
      fileJson = (parsed ?? {}) as Json;
    } catch (err) {
      throw new ConfigError([`config file ${configFile}: ${(err as Error).message.split('\n')[0]}`]);
    }
  }
  const flags: Json = {};
  if (overrides.listen !== undefined) flags.listen = overrides.listen;
  if (overrides.workers !== undefined) flags.workers = overrides.workers;
  if (overrides.policies !== undefined) flags.policies = overrides.policies;
  if (overrides.logLevel !== undefined) flags.logLevel = overrides.logLevel;
  if (overrides.natsUrl !== undefined) setPath(flags, 'events.natsUrl', overrides.natsUrl);
  if (overrides.noEvents) setPath(flags, 'events.enabled', false);
  if (overrides.required) setPath(flags, 'events.required', true);
  if (overrides.spoolDir !== undefined) setPath(flags, 'events.spoolDir', overrides.spoolDir);
  if (overrides.instanceId !== undefined) setPath(flags, 'events.instanceId', overrides.instanceId);
  if (overrides.routes !== undefined) setPath(flags, 'gateway.routesFile', overrides.routes);
  if (overrides.http !== undefined) setPath(flags, 'http.listen', overrides.http);
  if (overrides.policySource !== undefined) setPath(flags, 'policySource.url', overrides.policySource);
  if (overrides.admin !== undefined) setPath(flags, 'admin.listen', overrides.admin);
  const raw = merge(merge(merge(DEFAULT_CONFIG as unknown as Json, fileJson), fromEnvironment(env)), flags);
  return validateConfig(raw, configFile, env);
}

/** Checks every setting, collecting all problems; coerces strings from the environment. */
export function validateConfig(raw: Json, source = 'configuration', env: NodeJS.ProcessEnv = {}): VerdictConfig {
  const problems: string[] = [];
  const known: Record<string, readonly string[]> = {
    '': ['workers', 'workerSemiSpaceMB', 'heapGrowthPercent', 'listen', 'policies', 'logLevel', 'logDecisions', 'limits', 'reload', 'shutdown', 'transport', 'events', 'tls', 'tokens', 'gateway', 'http', 'admin', 'policySource', 'fleet', 'usage'],
    limits: Object.keys(DEFAULT_CONFIG.limits),
    reload: Object.keys(DEFAULT_CONFIG.reload),
    shutdown: Object.keys(DEFAULT_CONFIG.shutdown),
    transport: Object.keys(DEFAULT_CONFIG.transport),
    events: Object.keys(DEFAULT_CONFIG.events),
    policySource: Object.keys(DEFAULT_CONFIG.policySource),
    fleet: Object.keys(DEFAULT_CONFIG.fleet),
  };
  for (const [section, keys] of Object.entries(known)) {
    const obj = section ? raw[section] : raw;
    if (obj === undefined) continue;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      problems.push(`${section}: must be a mapping`);
      continue;
    }
    for (const k of Object.keys(obj)) {
      if (!keys.includes(k)) problems.push(`${section ? `${section}.` : ''}${k}: unknown setting in ${source} (known: ${keys.join(', ')})`);
    }
  }
  const get = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Json)[k] : undefined), raw);
  const str = (path: string): string => {
    const v = get(path);
    if (typeof v !== 'string' || v === '') problems.push(`${path}: must be a non-empty string (got ${JSON.stringify(v)})`);
    return String(v);
  };
  const bool = (path: string): boolean => {
    const v = get(path);
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === '1' || v === 'yes') return true;
    if (v === 'false' || v === '0' || v === 'no') return false;
    problems.push(`${path}: must be true or false (got ${JSON.stringify(v)})`);
    return false;
  };
  const int = (path: string, min: number, max: number): number => {
    const v = get(path);
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      problems.push(`${path}: must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return min;
    }
    return n;
  };
  const optionalString = (path: string): string => {
    const v = get(path);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') problems.push(`${path}: must be a string (got ${JSON.stringify(v)})`);
    return typeof v === 'string' ? v : '';
  };
  const list = (path: string): string[] => {
    const v = get(path);
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    problems.push(`${path}: must be a list of strings`);
    return [];
  };

  const listen = str('listen');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$/.test(listen) || Number(listen.split(':').pop()) > 65535) {
    problems.push(`listen: "${listen}" must be HOST:PORT, e.g. 127.0.0.1:50051 or [::]:50051`);
  }
  const logLevel = str('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`logLevel: "${logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);
  const natsUrl = str('events.natsUrl');
  for (const url of natsServers(natsUrl)) {
    if (!/^(nats|tls|wss?):\/\/[^\s]+$/.test(url) && !/^[^\s/:]+:\d+$/.test(url)) {
      problems.push(`events.natsUrl: "${url.replace(/\/\/[^/@]*@/, '//…@')}" must look like nats://host:4222 (several: comma-separated)`);
    } else if (/\/\/[^/@]*@/.test(url)) {
      problems.push('events.natsUrl: must not hold credentials (they would be logged); use events.natsUser and events.natsPasswordFile, natsTokenFile, natsNkeySeedFile or natsCredsFile');
    }
  }
  const natsAuth = {
    natsUser: optionalString('events.natsUser'),
    natsPasswordFile: optionalString('events.natsPasswordFile'),
    natsTokenFile: optionalString('events.natsTokenFile'),
    natsNkeySeedFile: optionalString('events.natsNkeySeedFile'),
    natsCredsFile: optionalString('events.natsCredsFile'),
    natsCaFile: optionalString('events.natsCaFile'),
    natsCertFile: optionalString('events.natsCertFile'),
    natsKeyFile: optionalString('events.natsKeyFile'),
  };
  // The files are read now, so a missing or broken one stops the start with a message (never the secret).
  // The policy source and the fleet heartbeats use the same settings, with or without events.
  const natsInUse = (get('events.enabled') !== false && get('events.enabled') !== 'false') || Boolean(get('policySource.url')) || Boolean(get('fleet.natsUrl'));
  if (natsInUse) problems.push(...natsSettingsProblems(natsAuth));
  const include = get('events.includeAttributes');
  let includeAttributes: EventsConfig['includeAttributes'] = 'none';
  if (include === 'none' || include === 'all') includeAttributes = include;
  else if (Array.isArray(include) || (typeof include === 'string' && include.includes('.'))) includeAttributes = list('events.includeAttributes');
  else problems.push('events.includeAttributes: must be "none", "all" or a list of attribute paths such as resource.attributes.department');
  const prefix = str('events.subjectPrefix');
  if (!/^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$/.test(prefix)) problems.push(`events.subjectPrefix: "${prefix}" must be NATS subject tokens separated by dots, without wildcards`);
  if (prefix.length > 128) problems.push(`events.subjectPrefix: at most 128 characters (got ${prefix.length})`);
  const instanceId = str('events.instanceId');
  // It is in every event and names the chain; a subject uses it only as a bounded token (subjects.ts).
  if (Buffer.byteLength(instanceId) > 256 || /[\u0000-\u001f\u007f]/.test(instanceId)) problems.push('events.instanceId: at most 256 bytes, without control characters');
  const stream = str('events.stream');
  if (!/^[A-Za-z0-9_\-]+$/.test(stream)) problems.push(`events.stream: "${stream}" must be letters, digits, _ and -`);
  const signingKeyFile = optionalString('events.signingKeyFile');
  if (signingKeyFile) {
    try {
      loadSigningKey(signingKeyFile);
    } catch (err) {
      problems.push(`events.signingKeyFile: ${(err as Error).message}`);
    }
  }
  const headsBucket = optionalString('events.headsBucket');
  if (headsBucket && !/^[A-Za-z0-9_\-]+$/.test(headsBucket)) problems.push(`events.headsBucket: "${headsBucket}" must be letters, digits, _ and - ("" = do not record heads)`);
  const revisionsBucket = optionalString('events.revisionsBucket');
  if (revisionsBucket && !/^[A-Za-z0-9_\-]+$/.test(revisionsBucket)) problems.push(`events.revisionsBucket: "${revisionsBucket}" must be letters, digits, _ and - ("" = do not store policy text)`);

  const bucketName = (path: string, allowEmpty: boolean): string => {
    const v = allowEmpty ? optionalString(path) : str(path);
    if (v !== '' && !/^[A-Za-z0-9_\-]{1,64}$/.test(v)) problems.push(`${path}: "${v}" must be 1 to 64 letters, digits, _ and -${allowEmpty ? ' ("" = off)' : ''}`);
    return v;
  };
  const policySourceUrl = optionalString('policySource.url');
  if (policySourceUrl !== '') {
    try {
      parseBundleSourceUrl(policySourceUrl);
    } catch (err) {
      problems.push(`policySource.url: ${(err as Error).message}`);
    }
  }
  const fleetNatsUrl = optionalString('fleet.natsUrl');
  if (fleetNatsUrl !== '' && !/^(nats|tls|wss?):\/\/[^\s]+$/.test(fleetNatsUrl) && !/^[^\s/:]+:\d+$/.test(fleetNatsUrl)) {
    problems.push(`fleet.natsUrl: "${fleetNatsUrl}" must look like nats://host:4222 ("" = the policy source's NATS)`);
  }

  const tokens = validateTokens(raw, problems);
  const config: VerdictConfig = {
    workers: int('workers', 1, 256),
    workerSemiSpaceMB: int('workerSemiSpaceMB', 0, 1024),
    heapGrowthPercent: int('heapGrowthPercent', 0, 1000),
    listen,
    policies: str('policies'),
    logLevel,
    logDecisions: bool('logDecisions'),
    limits: {
      maxMessageBytes: int('limits.maxMessageBytes', 1024, 64 * 1024 * 1024),
      maxBatchItems: int('limits.maxBatchItems', 1, 10_000),
      maxAttributeDepth: int('limits.maxAttributeDepth', 1, 64),
      maxRoles: int('limits.maxRoles', 1, 10_000),
      maxIdentifierLength: int('limits.maxIdentifierLength', 16, 65_536),
      maxAttributes: int('limits.maxAttributes', 1, 100_000),
      maxAttributeItems: int('limits.maxAttributeItems', 1, 1_000_000),
      maxStringBytes: int('limits.maxStringBytes', 16, 64 * 1024 * 1024),
      maxAttributeBytes: int('limits.maxAttributeBytes', 16, 64 * 1024 * 1024),
      maxConditionCost: int('limits.maxConditionCost', 1000, 1e12),
      maxDecisionCost: int('limits.maxDecisionCost', 1000, 1e12),
      maxBatchCost: int('limits.maxBatchCost', 1000, 1e12),
    },
    reload: {
      watch: bool('reload.watch'),
      debounceMs: int('reload.debounceMs', 0, 60_000),
      settleMs: int('reload.settleMs', 0, 600_000),
      pollIntervalMs: int('reload.pollIntervalMs', 0, 3_600_000),
    },
    shutdown: { graceMs: int('shutdown.graceMs', 0, 600_000) },
    transport: {
      maxConnections: int('transport.maxConnections', 1, 1_000_000),
      maxConcurrentStreams: int('transport.maxConcurrentStreams', 1, 1_000_000),
      requestTimeoutMs: int('transport.requestTimeoutMs', 100, 600_000),
      maxPendingRequests: int('transport.maxPendingRequests', 1, 1_000_000),
      maxPendingBytes: int('transport.maxPendingBytes', 1024, 16 * 1024 * 1024 * 1024),
      idleTimeoutMs: int('transport.idleTimeoutMs', 0, 86_400_000),
      keepaliveTimeMs: int('transport.keepaliveTimeMs', 0, 86_400_000),
      keepaliveTimeoutMs: int('transport.keepaliveTimeoutMs', 100, 600_000),
      maxConnectionAgeMs: int('transport.maxConnectionAgeMs', 0, 30 * 86_400_000),
      maxConnectionAgeGraceMs: int('transport.maxConnectionAgeGraceMs', 0, 86_400_000),
      maxSessionMemoryMb: int('transport.maxSessionMemoryMb', 1, 65_536),
    },
    events: {
      enabled: bool('events.enabled'),
      natsUrl,
      subjectPrefix: prefix,
      stream,
      maxAgeSeconds: int('events.maxAgeSeconds', 0, 100 * 365 * 24 * 3600),
      duplicateWindowSeconds: int('events.duplicateWindowSeconds', 1, 7 * 24 * 3600),
      queueSize: int('events.queueSize', 1, 10_000_000),
      spoolDir: str('events.spoolDir'),
      spoolMaxBytes: int('events.spoolMaxBytes', 0, Number.MAX_SAFE_INTEGER),
      publisherThread: bool('events.publisherThread'),
      flushIntervalMs: int('events.flushIntervalMs', 0, 1000),
      checkpointIntervalMs: int('events.checkpointIntervalMs', 0, 60_000),
      checkpointMaxEvents: int('events.checkpointMaxEvents', 1, 1_000_000),
      ackTimeoutMs: int('events.ackTimeoutMs', 100, 600_000),
      required: bool('events.required'),
      includeAttributes,
      maskAttributes: list('events.maskAttributes'),
      instanceId,
      maxFieldBytes: int('events.maxFieldBytes', 64, 65_536),
      maxListBytes: int('events.maxListBytes', 512, 1024 * 1024),
      maxEventBytes: int('events.maxEventBytes', MIN_EVENT_BYTES, 64 * 1024 * 1024),
      handoffMaxEvents: int('events.handoffMaxEvents', 1, 10_000_000),
      handoffMaxBytes: int('events.handoffMaxBytes', 64 * 1024, 16 * 1024 * 1024 * 1024),
      manageStream: bool('events.manageStream'),
      streamCheckIntervalMs: int('events.streamCheckIntervalMs', 0, 3_600_000),
      healthRequiresTrail: bool('events.healthRequiresTrail'),
      replicas: int('events.replicas', 1, 5),
      ...natsAuth,
      signingKeyFile,
      headsBucket,
      headsIntervalMs: int('events.headsIntervalMs', 1000, 3_600_000),
      revisionsBucket,
      revisionsTimeoutMs: int('events.revisionsTimeoutMs', 100, 60_000),
    },
    tls: validateTls(raw, problems),
    tokens,
    gateway: validateGateway(raw, problems),
    http: validateHttp(raw, problems, tokens),
    policySource: {
      url: policySourceUrl,
      bucket: bucketName('policySource.bucket', false),
      labelsBucket: bucketName('policySource.labelsBucket', false),
      cacheDir: str('policySource.cacheDir'),
      timeoutMs: int('policySource.timeoutMs', 100, 600_000),
      pollIntervalMs: int('policySource.pollIntervalMs', 0, 3_600_000),
      maxBundleBytes: int('policySource.maxBundleBytes', 1024, 1024 * 1024 * 1024),
    },
    fleet: {
      bucket: bucketName('fleet.bucket', true),
      heartbeatMs: int('fleet.heartbeatMs', 1000, 600_000),
      natsUrl: fleetNatsUrl,
    },
    admin: validateAdmin(raw, problems),
    usage: validateUsage(raw, problems),
    tracing: tracingFromEnvironment(env, problems),
  };
  const { transport, limits } = config;
  if (transport.maxPendingBytes < limits.maxMessageBytes) {
    problems.push(`transport.maxPendingBytes: ${transport.maxPendingBytes} is below limits.maxMessageBytes (${limits.maxMessageBytes}), so the largest request allowed could never arrive; raise it to at least ${limits.maxMessageBytes}`);
  }
  if (limits.maxBatchCost < limits.maxDecisionCost) {
    problems.push(`limits.maxBatchCost: must be at least limits.maxDecisionCost (${limits.maxDecisionCost}): a batch may always spend what one decision may`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
