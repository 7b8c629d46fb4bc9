/**
 * Quota counters saved to a small state file, so a monthly quota survives a restart
 * (docs/operations.md#usage-limits). Written atomically (a temporary file renamed over the old one)
 * every usage.saveIntervalMs and at shutdown; read once at start, after the first policy set
 * loaded: a counter comes back only into a limit of the same name and measure whose period is
 * still running. Rates are not saved (a restart gives their keys a full burst, bounded by the burst).
 * One file per instance: under `serve --workers N` the primary writes it from its ledger
 * (worker-sync.ts), and the workers write none.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LimitMeasure, UsageIndex } from '../engine/usage.js';
import type { SavedCounter } from './instance-counters.js';

/** What the file saves and restores: a process's counters (InstanceCounters), or the cluster primary's ledger (worker-sync.ts). */
export interface UsageStateStore {
  save(now: number, keep: (measure: LimitMeasure) => boolean): SavedCounter[];
  restore(saved: readonly SavedCounter[], measureOf: (limit: string) => LimitMeasure | undefined, now: number): number;
}

const FORMAT = 'verdict.usage.v1';

interface StateFile {
  readonly format: typeof FORMAT;
  readonly savedAt: string;
  readonly counters: readonly SavedCounter[];
}

export interface UsageLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class UsageStateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Saves that failed in a row (for health and logs). */
  failures = 0;
  /** The file exists (read or written): an empty state is written only over an existing file. */
  private exists = false;

  constructor(
    private readonly file: string,
    private readonly counters: UsageStateStore,
    private readonly log: UsageLog,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Reads the file (a missing file is an empty state; an unreadable one is logged and ignored). */
  async load(usage: UsageIndex | undefined): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file: this.file, err: (err as Error).message }, 'usage state file could not be read; quota counters start at zero');
      return 0;
    }
    this.exists = true;
    let state: StateFile;
    try {
      state = JSON.parse(text) as StateFile;
      if (state.format !== FORMAT || !Array.isArray(state.counters)) throw new Error(`not a ${FORMAT} file`);
    } catch (err) {
      this.log.warn({ file: this.file, err: (err as Error).message }, 'usage state file is not valid; quota counters start at zero');
      return 0;
    }
    const measures = new Map<string, LimitMeasure>();
    for (const l of usage?.limits ?? []) measures.set(l.name, l.measure);
    const valid = state.counters.filter((c) => c && typeof c.limit === 'string' && typeof c.key === 'string' && typeof c.measure === 'string' && Number.isFinite(c.a) && Number.isFinite(c.b) && Number.isFinite(c.c));
    const restored = this.counters.restore(valid, (name) => measures.get(name), this.clock());
    this.log.info({ file: this.file, restored, saved: state.counters.length }, 'usage quota counters restored');
    return restored;
  }

  /** Writes the quota counters now (one write at a time). */
  save(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  private async write(): Promise<void> {
    const state: StateFile = { format: FORMAT, savedAt: new Date(this.clock()).toISOString(), counters: this.counters.save(this.clock(), () => true) };
    if (state.counters.length === 0 && !this.exists) return;
    const tmp = `${this.file}.tmp`;
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      await writeFile(tmp, JSON.stringify(state));
      await rename(tmp, this.file);
      this.exists = true;
      this.failures = 0;
    } catch (err) {
      this.failures++;
      this.log.warn({ file: this.file, err: (err as Error).message, failures: this.failures }, 'usage state file could not be written; quota counters would not survive a restart');
    }
  }

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => void this.save(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.save();
  }
}
