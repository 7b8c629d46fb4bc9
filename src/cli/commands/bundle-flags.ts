/** Flags and NATS access shared by `verdict policies …` and `verdict fleet`. */
import os from 'node:os';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../config/load.js';
import type { VerdictConfig } from '../../config/schema.js';
import { connectWithin, natsClientOptions } from '../../bundles/connection.js';
import { DEFAULT_BUNDLE_LIMITS } from '../../bundles/format.js';
import { DEFAULT_LABEL, labelProblem, parseBundleSourceUrl } from '../../bundles/source-url.js';
import { BundleStore } from '../../bundles/store.js';
import { UsageError, type FlagSpec, type ParsedArgs } from '../spec.js';

const bucketName = (v: string) => (/^[A-Za-z0-9_-]{1,64}$/.test(v) ? undefined : 'must be 1 to 64 letters, digits, _ and -');

export const NATS_FLAG: FlagSpec = { name: 'nats', type: 'string', value: 'URL', description: 'NATS server (nats://HOST:PORT, several comma-separated)', defaultNote: `from --config, else VERDICT_NATS_URL, else ${DEFAULT_CONFIG.events.natsUrl}` };
export const LABEL_FLAG: FlagSpec = { name: 'label', type: 'string', value: 'LABEL', description: 'the label (environment) whose current revision is read or set', defaultNote: `the label of --config's policySource.url, else ${DEFAULT_LABEL}`, validate: (v) => labelProblem(v) };
export const BUCKET_FLAG: FlagSpec = { name: 'bucket', type: 'string', value: 'NAME', description: 'Object Store bucket of the bundles (policySource.bucket)', default: DEFAULT_CONFIG.policySource.bucket, validate: bucketName };
export const LABELS_BUCKET_FLAG: FlagSpec = { name: 'labels-bucket', type: 'string', value: 'NAME', description: 'KV bucket of the labels (policySource.labelsBucket)', default: DEFAULT_CONFIG.policySource.labelsBucket, validate: bucketName };
export const JSON_FLAG: FlagSpec = { name: 'json', type: 'boolean', description: 'print JSON instead of text' };

/** NATS must answer within this time, else the command fails (exit 1). */
const CONNECT_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 10_000;

export const CONFIG_FLAG: FlagSpec = {
  name: 'config',
  type: 'string',
  value: 'FILE',
  description: 'a verdict configuration file: NATS credentials and TLS (events.nats*), the NATS address and label (policySource.url, else events.natsUrl) and the bucket names; flags win',
};

/** Where and how a command talks to NATS: flags, else the --config file (and VERDICT_* as serve reads them), else defaults. */
export interface CliNats {
  readonly servers: string[];
  readonly options: Partial<ConnectionOptions>;
  /** The file's configuration, when --config was given. */
  readonly config: VerdictConfig | undefined;
  /** The label: --label, else the one in the file's policySource.url, else "default". */
  readonly label: string;
}

function serversOf(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^[a-z]+:\/\//.test(s) ? s : `nats://${s}`));
}

/** Reads --config (a bad file is a usage error, exit 2) and works out the NATS settings. */
export function cliNats(args: ParsedArgs): CliNats {
  let config: VerdictConfig | undefined;
  const file = args.has('config') ? args.string('config') : undefined;
  if (file !== undefined) {
    try {
      config = loadConfig({ configFile: file });
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  const source = config && config.policySource.url !== '' ? parseBundleSourceUrl(config.policySource.url) : undefined;
  const servers = args.has('nats') ? serversOf(args.string('nats')!) : source ? [...source.servers] : serversOf(config?.events.natsUrl ?? process.env.VERDICT_NATS_URL ?? DEFAULT_CONFIG.events.natsUrl);
  const label = args.has('label') ? args.string('label')! : (source?.label ?? DEFAULT_LABEL);
  return { servers, options: config ? natsClientOptions(config) : {}, config, label };
}

/** A flag's value when given, else the configuration file's, else the flag's default. */
export function flagOrConfig(args: ParsedArgs, flag: string, fromConfig: string | undefined): string {
  return args.has(flag) ? args.string(flag)! : (fromConfig ?? args.string(flag)!);
}

export async function connectCli(nats: CliNats, what: string): Promise<NatsConnection> {
  return connectWithin(nats.servers, `verdict ${what}`, nats.options, CONNECT_TIMEOUT_MS);
}

/** Opens the bundle buckets; `create` makes them if missing (push), otherwise they must exist. */
export function openBundleStore(nc: NatsConnection, args: ParsedArgs, nats: CliNats, create: boolean): Promise<BundleStore> {
  const objects = flagOrConfig(args, 'bucket', nats.config?.policySource.bucket);
  const labels = flagOrConfig(args, 'labels-bucket', nats.config?.policySource.labelsBucket);
  return BundleStore.open(nc, { objects, labels }, { create, limits: DEFAULT_BUNDLE_LIMITS, timeoutMs: REQUEST_TIMEOUT_MS });
}

/** Who runs the command, for the label history: user@host. */
export function whoAmI(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = os.userInfo().username || user;
  } catch {
    // no passwd entry (containers): the environment's USER
  }
  return `${user}@${os.hostname()}`;
}

/** A table with aligned columns (the last column is not padded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** "12 s ago", "3 min ago", for times in listings. */
export function ago(then: Date, now = new Date()): string {
  const s = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}
