/**
 * `verdict serve` (and other `verdict` commands) as real child processes for integration tests:
 * the server binds a free port (`--listen 127.0.0.1:0`), its pino JSON log lines are parsed from
 * stdout, and the bound address is read from the "verdict serving" line.
 *
 * Every process and temporary directory made through this module is registered; call
 * `cleanupServerProcesses()` from an afterEach (or after) hook and they are killed and removed even
 * when the test failed. Children still alive when the test process exits are SIGKILLed as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

/** Repository root (this file runs from dist/test/support). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const VERDICT_BIN = path.join(REPO_ROOT, 'bin', 'verdict.js');

/** One parsed pino line: `msg`, `level` (30 info, 50 error, 60 fatal), `time`, and the bound fields. */
export type LogLine = Record<string, unknown> & { readonly msg?: string; readonly level?: number };

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What waitForLog matches: the exact `msg`, a RegExp on `msg`, or any predicate on the line. */
export type LogMatcher = string | RegExp | ((line: LogLine) => boolean);

function toPredicate(m: LogMatcher): (line: LogLine) => boolean {
  if (typeof m === 'function') return m;
  if (typeof m === 'string') return (l) => l.msg === m;
  return (l) => m.test(String(l.msg ?? ''));
}

const liveChildren = new Set<ChildProcess>();
const registeredProcesses: VerdictProcess[] = [];
const registeredDirs: string[] = [];

process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** A running (or finished) `verdict` child process with its output kept and parsed. */
export class VerdictProcess {
  /** Every stdout/stderr line that parsed as a JSON object, in arrival order. */
  readonly logs: LogLine[] = [];
  stdout = '';
  stderr = '';
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Set by startServer from the "verdict serving" line. */
  port = 0;
  address = '';
  private status: ExitStatus | undefined;
  private readonly waiters = new Set<{ test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  private readonly exitWaiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    liveChildren.add(child);
    const partial = { stdout: '', stderr: '' };
    const take = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this[which] += text;
      const lines = (partial[which] + text).split('\n');
      partial[which] = lines.pop()!;
      for (const line of lines) this.onLine(line);
    };
    child.stdout?.on('data', take('stdout'));
    child.stderr?.on('data', take('stderr'));
    this.exited = new Promise<ExitStatus>((resolve) => {
      // 'close' (not 'exit'): the output streams are drained by then, so the logs are complete.
      child.once('close', (code, signal) => {
        for (const which of ['stdout', 'stderr'] as const) if (partial[which]) this.onLine(partial[which]);
        this.status = { code, signal };
        liveChildren.delete(child);
        for (const w of this.exitWaiters) w();
        resolve(this.status);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True until the process has exited and its output is drained. */
  get running(): boolean {
    return this.status === undefined;
  }

  private onLine(line: string): void {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) return;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(trimmed) as LogLine;
    } catch {
      return;
    }
    this.logs.push(parsed);
    for (const w of this.waiters) {
      if (w.test(parsed)) {
        this.waiters.delete(w);
        w.resolve(parsed);
      }
    }
  }

  /** The first log line matching `m`, if one arrived already. */
  findLog(m: LogMatcher): LogLine | undefined {
    return this.logs.find(toPredicate(m));
  }

  /**
   * Resolves with the first log line (already seen or still to come) matching `m`. Rejects, with
   * the tail of the output, on timeout or when the process exits without having logged it.
   */
  waitForLog(m: LogMatcher, timeoutMs = 10_000): Promise<LogLine> {
    const test = toPredicate(m);
    const seen = this.logs.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        test,
        resolve: (l: LogLine) => {
          done();
          resolve(l);
        },
      };
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited (${this.describeExit()}) before logging ${String(m)}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(m)} in the logs of ${this.name}:\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.exitWaiters.delete(onExit);
      };
      this.waiters.add(waiter);
      if (this.running) this.exitWaiters.add(onExit);
      else onExit();
    });
  }

  /** Sends a signal (default SIGTERM); false when the process is already gone. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (!this.running) return false;
    return this.child.kill(signal);
  }

  /** Sends `signal`, waits for the exit, and SIGKILLs after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8_000): Promise<ExitStatus> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }

  /** Resolves with the exit status, or rejects (after SIGKILL) if the process outlives `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms:\n${this.tail()}`);
    }
    return result;
  }

  private describeExit(): string {
    return this.status ? (this.status.signal ?? `code ${this.status.code}`) : 'running';
  }

  /** The last lines of output, for failure messages. */
  tail(lines = 20): string {
    return `${this.stdout}\n${this.stderr}`.trim().split('\n').slice(-lines).join('\n');
  }
}

/** A fresh directory under the OS temp dir, removed by cleanupServerProcesses(). */
export function makeTempDir(label = 'grpc'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `verdict-${label}-`));
  registeredDirs.push(dir);
  return dir;
}

/** Writes `text` to dir/relPath (creating parent directories). */
export function writeFile(dir: string, relPath: string, text: string): string {
  const full = path.join(dir, relPath);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

/**
 * Replaces dir/relPath in one step: written to a hidden file (policy loading skips dot files) and
 * renamed over the target, so a watcher never sees a half-written file.
 */
export function replaceFile(dir: string, relPath: string, text: string): string {
  const full = path.join(dir, relPath);
  mkdirSync(path.dirname(full), { recursive: true });
  const tmp = path.join(path.dirname(full), `.${path.basename(full)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, full);
  return full;
}

/**
 * Environment for children: the caller's, without VERDICT_* settings that would change behaviour,
 * except VERDICT_WORKERS, which defaults to one process (as test/support/mocha-env.ts sets it).
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VERDICT_') && k !== 'VERDICT_WORKERS') delete env[k];
  env.VERDICT_WORKERS ??= '1';
  return { ...env, ...extra };
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly name?: string;
}

/** Starts `node bin/verdict.js ...args` as a registered child process; does not wait for anything. */
export function spawnVerdict(args: readonly string[], opts: SpawnOptions = {}): VerdictProcess {
  const child = spawn(process.execPath, [VERDICT_BIN, ...args], { cwd: REPO_ROOT, env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = new VerdictProcess(opts.name ?? `verdict ${args.slice(0, 1).join(' ')}`, child);
  registeredProcesses.push(proc);
  return proc;
}

export interface StartServerOptions extends SpawnOptions {
  /** Policy directory (--policies). */
  readonly policies: string;
  /** Settings written to a temporary YAML file passed as --config (a string is written as is). */
  readonly config?: Record<string, unknown> | string;
  /** Default 127.0.0.1:0 (any free port). */
  readonly listen?: string;
  /** More arguments after the defaults. */
  readonly args?: readonly string[];
  /** Default true: pass --no-events (no NATS needed). */
  readonly noEvents?: boolean;
  /** --workers N (a Node cluster when N > 1); default: VERDICT_WORKERS, else one process. */
  readonly workers?: number;
  readonly startTimeoutMs?: number;
}

/** The arguments of `verdict serve` for these options (writes the config file if there is one). */
export function serveArgs(opts: StartServerOptions): string[] {
  const args = ['serve', '--policies', opts.policies, '--listen', opts.listen ?? '127.0.0.1:0'];
  if (opts.noEvents !== false) args.push('--no-events');
  if (opts.workers !== undefined) args.push('--workers', String(opts.workers));
  if (opts.config !== undefined) {
    const text = typeof opts.config === 'string' ? opts.config : toYaml(opts.config);
    args.push('--config', writeFile(makeTempDir('config'), 'verdict.yaml', text));
  }
  args.push(...(opts.args ?? []));
  return args;
}

/**
 * The "verdict serving" line of the process itself. In a cluster every worker logs one too (with a
 * `worker` field); the primary's own line comes once all workers serve.
 */
export const isServingLine = (l: LogLine): boolean => l.msg === 'verdict serving' && l.worker === undefined;

/**
 * Starts `verdict serve` and resolves once it logged "verdict serving", with `port` and `address`
 * taken from that line's `listen` field. Rejects (process killed) if it exits or times out first.
 */
export async function startServer(opts: StartServerOptions): Promise<VerdictProcess> {
  const proc = spawnVerdict(serveArgs(opts), { ...opts, name: opts.name ?? 'verdict serve' });
  let serving: LogLine;
  try {
    serving = await proc.waitForLog(isServingLine, opts.startTimeoutMs ?? 15_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  const listen = String(serving.listen);
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in the "verdict serving" line: ${JSON.stringify(serving)}`);
  proc.address = listen;
  proc.port = port;
  return proc;
}

export interface RunResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
  readonly logs: readonly LogLine[];
}

/** Runs a `verdict` command to completion (SIGKILL after `timeoutMs`). */
export async function runVerdict(args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const proc = spawnVerdict(args, opts);
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  const status = await proc.exited;
  clearTimeout(timer);
  return { ...status, stdout: proc.stdout, stderr: proc.stderr, logs: proc.logs };
}

/** Kills every registered process still running (SIGKILL), waits for it, and removes temp dirs. */
export async function cleanupServerProcesses(): Promise<void> {
  const procs = registeredProcesses.splice(0);
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  for (const dir of registeredDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
