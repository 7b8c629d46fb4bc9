/**
 * The fleet view. Every replica (a single process, or a cluster's primary for all its workers)
 * puts a heartbeat in a NATS KV bucket every fleet.heartbeatMs (and at once when its revision or
 * standing failure changes): who it is, which policy source and
 * revision it serves, since when, and its standing policy failure. The bucket keeps an entry for
 * three heartbeats (its TTL), so a replica that died disappears; one that missed two is stale.
 * A replica that stops gracefully deletes its entry. `verdict fleet` reads the bucket.
 */
import os from 'node:os';
import type { KV, NatsConnection } from 'nats';
import { headKey } from '../events/checkpoint.js';
import type { Logger } from '../server/logger.js';
import type { PolicyLoadFailure } from '../service/live-policy.js';
import type { BackgroundNats } from './connection.js';

export const FLEET_SCHEMA = 'verdict.fleet-replica.v1';
/** Longest failure message reported (the log has all of it). */
const MAX_FAILURE_CHARS = 2000;
const MAX_REPORT_BYTES = 64 * 1024;

export interface ReplicaSource {
  readonly kind: 'nats' | 'directory';
  /** The URL (nats://HOST:PORT/LABEL) or the directory. */
  readonly name: string;
  readonly label?: string;
  readonly labelsBucket?: string;
  /** The revision the label named when last read (nats sources). */
  readonly wanted?: string | null;
  readonly connected?: boolean;
}

export interface ReplicaReport {
  readonly schema: typeof FLEET_SCHEMA;
  readonly instance: string;
  readonly host: string;
  readonly pid: number;
  readonly workers: number;
  readonly version: string;
  readonly listen: string;
  readonly startedAt: string;
  readonly reportedAt: string;
  readonly heartbeatMs: number;
  readonly source: ReplicaSource;
  readonly revision: string | null;
  readonly loadedAt: string | null;
  readonly lastFailure: { readonly at: string; readonly message: string } | null;
}

/** What the replica knows about itself at each heartbeat. */
export interface ReplicaState {
  readonly revision: string | undefined;
  readonly loadedAt: Date | undefined;
  readonly lastFailure: PolicyLoadFailure | undefined;
  readonly source: ReplicaSource;
}

export interface ReplicaIdentity {
  readonly instance: string;
  readonly workers: number;
  readonly version: string;
  readonly listen: string;
}

export interface FleetReporterOptions {
  readonly bucket: string;
  readonly heartbeatMs: number;
  readonly timeoutMs: number;
}

/** Heartbeats of one replica into the fleet bucket. */
export class FleetReporter {
  private kv: { nc: NatsConnection; kv: Promise<KV> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private changeTimer: NodeJS.Timeout | undefined;
  /** Revision and failure time of the last report: a change is reported at once. */
  private reported = '';
  private soon: NodeJS.Timeout | undefined;
  private stopUp: (() => void) | undefined;
  private readonly startedAt = new Date().toISOString();
  private readonly key: string;
  private closed = false;
  private writing = false;
  private again = false;
  private lastFailureLog = 0;

  constructor(
    private readonly link: BackgroundNats,
    /** The reporter closes the connection when it made it (not when it shares the policy source's). */
    private readonly ownsLink: boolean,
    private readonly options: FleetReporterOptions,
    private readonly identity: ReplicaIdentity,
    private readonly state: () => ReplicaState,
    private readonly logger: Logger,
  ) {
    this.key = headKey(identity.instance);
  }

  start(): void {
    this.link.start();
    this.stopUp = this.link.onUp(() => this.poke());
    this.timer = setInterval(() => void this.report(), this.options.heartbeatMs);
    this.timer.unref();
    // A policy change (or failure) is reported at once, not at the next heartbeat: one comparison
    // every 250 ms, whoever owns the policies (a single process, or a cluster primary).
    this.changeTimer = setInterval(() => {
      if (this.signature() !== this.reported) this.poke();
    }, 250);
    this.changeTimer.unref();
  }

  private signature(): string {
    const s = this.state();
    return `${s.revision ?? ''}|${s.lastFailure?.at.getTime() ?? ''}`;
  }

  /** Reports soon (after a policy change), instead of at the next heartbeat. */
  poke(): void {
    if (this.closed || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.report();
    }, 20);
    this.soon.unref();
  }

  private bucket(nc: NatsConnection): Promise<KV> {
    if (this.kv?.nc !== nc) {
      // The bucket forgets an entry after three heartbeats: a replica that is gone disappears.
      const kv = nc.jetstream({ timeout: this.options.timeoutMs }).views.kv(this.options.bucket, { ttl: 3 * this.options.heartbeatMs, history: 1, timeout: this.options.timeoutMs, description: 'Verdict replicas: one heartbeat each' });
      this.kv = { nc, kv };
      kv.catch(() => {
        if (this.kv?.kv === kv) this.kv = undefined;
      });
    }
    return this.kv.kv;
  }

  /** The report as it would be sent now. */
  build(): ReplicaReport {
    const s = this.state();
    const f = s.lastFailure;
    return {
      schema: FLEET_SCHEMA,
      instance: this.identity.instance,
      host: os.hostname(),
      pid: process.pid,
      workers: this.identity.workers,
      version: this.identity.version,
      listen: this.identity.listen,
      startedAt: this.startedAt,
      reportedAt: new Date().toISOString(),
      heartbeatMs: this.options.heartbeatMs,
      source: s.source,
      revision: s.revision ?? null,
      loadedAt: s.loadedAt?.toISOString() ?? null,
      lastFailure: f ? { at: f.at.toISOString(), message: f.message.slice(0, MAX_FAILURE_CHARS) } : null,
    };
  }

  private async report(): Promise<void> {
    if (this.closed) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    const nc = this.link.connection();
    if (!nc) return;
    this.writing = true;
    try {
      const kv = await this.bucket(nc);
      const signature = this.signature();
      if (!this.closed) await kv.put(this.key, JSON.stringify(this.build()));
      this.reported = signature;
    } catch (err) {
      if (Date.now() - this.lastFailureLog > 60_000) {
        this.lastFailureLog = Date.now();
        this.logger.warn({ err: (err as Error).message, bucket: this.options.bucket }, 'fleet heartbeat not recorded in NATS KV');
      }
    } finally {
      this.writing = false;
    }
    if (this.again) {
      this.again = false;
      void this.report();
    }
  }

  /** Stops reporting and removes this replica's entry (a stopped replica is not stale, it is gone). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.changeTimer) clearInterval(this.changeTimer);
    if (this.soon) clearTimeout(this.soon);
    this.stopUp?.();
    const nc = this.link.connection();
    if (nc) {
      const removed = this.bucket(nc).then((kv) => kv.delete(this.key));
      await Promise.race([removed.catch(() => undefined), new Promise((r) => setTimeout(r, Math.min(2000, this.options.timeoutMs)).unref())]);
    }
    if (this.ownsLink) await this.link.close();
  }
}

export interface FleetEntry {
  readonly key: string;
  /** When NATS stored the heartbeat (its clock). */
  readonly stored: Date;
  readonly report?: ReplicaReport;
  /** Why the value is not a report. */
  readonly problem?: string;
}

/** Parses a heartbeat value; throws saying what is wrong. */
export function parseReport(value: Uint8Array): ReplicaReport {
  if (value.length > MAX_REPORT_BYTES) throw new Error(`${value.length} bytes; a report is at most ${MAX_REPORT_BYTES}`);
  const raw = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || raw.schema !== FLEET_SCHEMA) throw new Error(`not a ${FLEET_SCHEMA} report`);
  for (const k of ['instance', 'host', 'version', 'listen', 'reportedAt']) if (typeof raw[k] !== 'string') throw new Error(`${k} must be a string`);
  for (const k of ['pid', 'workers', 'heartbeatMs']) if (typeof raw[k] !== 'number') throw new Error(`${k} must be a number`);
  if (typeof raw.source !== 'object' || raw.source === null) throw new Error('source must be an object');
  return raw as unknown as ReplicaReport;
}

/** Every entry of the fleet bucket; an empty list when the bucket does not exist. */
export async function readFleet(nc: NatsConnection, bucket: string, timeoutMs: number): Promise<FleetEntry[]> {
  let kv: KV;
  try {
    kv = await nc.jetstream({ timeout: timeoutMs }).views.kv(bucket, { bindOnly: true, timeout: timeoutMs });
  } catch (err) {
    if (/not found/i.test((err as Error).message)) return [];
    throw err;
  }
  const out: FleetEntry[] = [];
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  for (const key of keys.sort()) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    try {
      out.push({ key, stored: e.created, report: parseReport(e.value) });
    } catch (err) {
      out.push({ key, stored: e.created, problem: (err as Error).message });
    }
  }
  return out;
}
