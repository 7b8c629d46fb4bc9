/** `verdict fleet`: every replica's heartbeat, which revision it serves, and whether that is its label's. */
import { readFleet, type FleetEntry } from '../../bundles/fleet.js';
import { readLabel, type LabelState } from '../../bundles/store.js';
import { DEFAULT_CONFIG } from '../../config/load.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';
import { ago, cliNats, CONFIG_FLAG, connectCli, flagOrConfig, JSON_FLAG, LABEL_FLAG, LABELS_BUCKET_FLAG, NATS_FLAG, table } from './bundle-flags.js';

export const fleetCommand: CommandSpec = {
  name: 'fleet',
  summary: 'list the replicas reporting to NATS: identity, policy source, revision, whether it is the label\'s current one, staleness',
  details: [
    'A replica reports every fleet.heartbeatMs (5 s). It is stale when its last heartbeat is older than\n' +
      'two heartbeats; the bucket forgets it after three, and a replica that stops gracefully removes\n' +
      'itself. A replica serving a bundle label is compared with that label\'s current revision (or\n' +
      "every replica with --label's).",
  ],
  flags: [
    NATS_FLAG,
    { name: 'bucket', type: 'string', value: 'NAME', description: 'KV bucket of the heartbeats (fleet.bucket)', default: DEFAULT_CONFIG.fleet.bucket, validate: (v) => (/^[A-Za-z0-9_-]{1,64}$/.test(v) ? undefined : 'must be 1 to 64 letters, digits, _ and -') },
    { ...LABEL_FLAG, defaultNote: undefined, description: "compare every replica with this label's current revision (default: each with its own label)" },
    CONFIG_FLAG,
    { ...LABELS_BUCKET_FLAG, description: 'KV bucket of the labels for --label (a replica names its own)' },
    JSON_FLAG,
  ],
  examples: [
    { what: 'which replica runs which revision, and which are stale', command: 'verdict fleet --nats nats://127.0.0.1:4222' },
    { what: 'as JSON, every replica compared with the label production', command: 'verdict fleet --label production --json' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'listed (also when no replica reports)' },
    { code: EXIT.FAILURE, meaning: 'NATS cannot be reached' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: fleet,
};

/** One replica as listed. */
export interface FleetRow {
  readonly instance: string;
  readonly host: string;
  readonly pid: number;
  readonly workers: number;
  readonly version: string;
  readonly listen: string;
  readonly source: string;
  readonly label: string | null;
  readonly revision: string | null;
  readonly loadedAt: string | null;
  /** The label's current revision, if there is a label to compare with. */
  readonly labelRevision: string | null;
  /** true / false; null when there is no label to compare with. */
  readonly current: boolean | null;
  readonly lastHeartbeat: string;
  readonly stale: boolean;
  readonly lastFailure: { readonly at: string; readonly message: string } | null;
}

async function fleet(args: ParsedArgs, io: CliOutput): Promise<number> {
  const nats = cliNats(args);
  let nc;
  try {
    nc = await connectCli(nats, 'fleet');
  } catch (err) {
    io.err(`verdict fleet: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
  try {
    const bucket = flagOrConfig(args, 'bucket', nats.config?.fleet.bucket || undefined);
    const entries = await readFleet(nc, bucket, 10_000);
    const labels = new Map<string, Promise<LabelState | null>>();
    const labelOf = (labelsBucket: string, label: string): Promise<LabelState | null> => {
      const key = `${labelsBucket}/${label}`;
      if (!labels.has(key)) {
        labels.set(
          key,
          readLabel(nc!, labelsBucket, label, 10_000).catch(() => null),
        );
      }
      return labels.get(key)!;
    };
    const now = new Date();
    const rows: FleetRow[] = [];
    const unreadable: FleetEntry[] = [];
    for (const e of entries) {
      const r = e.report;
      if (!r) {
        unreadable.push(e);
        continue;
      }
      const label = args.string('label') ?? r.source.label ?? null;
      const labelsBucket = args.has('label') ? flagOrConfig(args, 'labels-bucket', nats.config?.policySource.labelsBucket) : (r.source.labelsBucket ?? args.string('labels-bucket')!);
      const state = label ? await labelOf(labelsBucket, label) : null;
      const labelRevision = state?.record.revision ?? null;
      rows.push({
        instance: r.instance,
        host: r.host,
        pid: r.pid,
        workers: r.workers,
        version: r.version,
        listen: r.listen,
        source: r.source.name,
        label,
        revision: r.revision,
        loadedAt: r.loadedAt,
        labelRevision,
        current: labelRevision ? r.revision === labelRevision : null,
        lastHeartbeat: e.stored.toISOString(),
        stale: now.getTime() - e.stored.getTime() > 2 * r.heartbeatMs,
        lastFailure: r.lastFailure,
      });
    }
    if (args.flag('json')) {
      io.out(JSON.stringify({ bucket, replicas: rows, unreadable: unreadable.map((e) => ({ key: e.key, problem: e.problem })) }, null, 2));
      return EXIT.OK;
    }
    if (rows.length === 0 && unreadable.length === 0) {
      io.out(`no replica reports to ${bucket}`);
      return EXIT.OK;
    }
    const lines = [
      table(
        ['INSTANCE', 'HOST', 'PID', 'WORKERS', 'VERSION', 'SOURCE', 'REVISION', 'CURRENT', 'LOADED', 'HEARTBEAT', 'STATE'],
        rows.map((r) => [
          r.instance,
          r.host,
          String(r.pid),
          String(r.workers),
          r.version,
          r.source,
          r.revision ?? '-',
          r.current === null ? '-' : r.current ? 'yes' : `NO (${r.label}: ${r.labelRevision})`,
          r.loadedAt ? ago(new Date(r.loadedAt), now) : '-',
          ago(new Date(r.lastHeartbeat), now),
          [r.stale ? 'STALE' : 'ok', r.lastFailure ? 'FAILING' : ''].filter(Boolean).join(', '),
        ]),
      ),
    ];
    for (const r of rows.filter((x) => x.lastFailure)) lines.push(`${r.instance}: last failure at ${r.lastFailure!.at}: ${r.lastFailure!.message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')}`);
    for (const e of unreadable) lines.push(`${e.key}: not a replica report (${e.problem})`);
    io.out(lines.join('\n'));
    return EXIT.OK;
  } catch (err) {
    io.err(`verdict fleet: NATS: ${(err as Error).message}`);
    return EXIT.FAILURE;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
