/** `verdict serve` as a child process on a free port, with its JSON log lines kept. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT } from './envoy.js';

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function tempDir(label: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `verdict-gw-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export class ServeProcess {
  readonly lines: Record<string, unknown>[] = [];
  output = '';
  address = '';
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    children.add(child);
    let partial = '';
    const take = (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      this.output += chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        try {
          if (l.trim().startsWith('{')) this.lines.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          /* not a log line */
        }
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => child.once('close', (code) => (children.delete(child), resolve(code))));
  }

  /** The first log line with this msg (string or RegExp) or matching a predicate, waiting for it. */
  async waitFor(msg: string | RegExp | ((line: Record<string, unknown>) => boolean), timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    const test = typeof msg === 'function' ? msg : typeof msg === 'string' ? (l: Record<string, unknown>) => l.msg === msg : (l: Record<string, unknown>) => msg.test(String(l.msg));
    for (;;) {
      const found = this.lines.find(test);
      if (found) return found;
      if (!children.has(this.child)) throw new Error(`verdict exited before logging ${String(msg)}:\n${this.output.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${String(msg)}:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Resolves with the exit code. */
  exit(): Promise<number | null> {
    return this.exited;
  }

  async stop(): Promise<void> {
    if (children.has(this.child)) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 8_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Spawns `verdict serve --workers 1 --listen 127.0.0.1:0 --no-events --config <config>` plus `args`. */
export function spawnServe(dir: string, config: Record<string, unknown>, args: string[] = []): ServeProcess {
  const configFile = path.join(dir, 'verdict.yaml');
  writeFileSync(configFile, stringify(config));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VERDICT_')) env[k] = v;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'verdict.js'), 'serve', '--workers', '1', '--listen', '127.0.0.1:0', '--no-events', '--config', configFile, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ServeProcess(child);
}

/** Spawns and waits for "verdict serving"; `address` is 127.0.0.1:<port>. */
export async function startServe(dir: string, config: Record<string, unknown>, args: string[] = []): Promise<ServeProcess> {
  const p = spawnServe(dir, config, args);
  try {
    const line = await p.waitFor('verdict serving');
    p.address = String(line.listen);
  } catch (err) {
    p.child.kill('SIGKILL');
    throw err;
  }
  return p;
}
