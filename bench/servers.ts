/**
 * Servers under test. Each definition starts one server process for a workload and says which
 * wire protocol the load generator must speak to it. To compare another server (Verdict with NATS
 * events on, Cerbos), add a definition here; for a new protocol, add it to bench/grpc/protocols.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { protocol as protocolNamed } from './grpc/protocols.js';
import { ROOT } from './util.js';
import type { WorkloadName } from './workloads.js';

export { ROOT };

export interface ServerContext {
  readonly workload: WorkloadName;
  /** The workload's policies in Verdict's format (a server with another format renders its own). */
  readonly policiesDir: string;
  /** Where the server's stdout/stderr go. */
  readonly logDir: string;
}

export interface RunningServer {
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  /** Where its output went. */
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface ServerDefinition {
  readonly name: string;
  readonly description: string;
  /** Wire protocol of the load generator (bench/grpc/protocols.ts). */
  readonly protocol: string;
  /** The reference the others are compared with (the empty server: the transport ceiling). */
  readonly baseline?: boolean;
  start(ctx: ServerContext): Promise<RunningServer>;
}

/** A free TCP port on 127.0.0.1 (closed again; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls a Check until it answers sensibly (rather than trusting a log line): the server is ready
 * when it decides. Rejects if the process exits or `timeoutMs` passes.
 */
export async function waitUntilAnswering(address: string, protocolName: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const proto = protocolNamed(protocolName);
  const method = proto.method('Check');
  const body = method.encode(proto.messages('example', 'Check')[0]);
  const client = new Client(address, credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before answering`);
      const answer = await new Promise<{ ok: boolean; why: string }>((resolve) => {
        client.makeUnaryRequest(method.path, (b: Buffer) => b, method.decode, body, new Metadata(), { deadline: Date.now() + 1000 }, (err, res) => {
          if (err) return resolve({ ok: false, why: `${err.code} ${err.details}` });
          const problem = proto.problemWith('Check', res);
          resolve(problem ? { ok: false, why: problem } : { ok: true, why: '' });
        });
      });
      if (answer.ok) return;
      last = answer.why;
      await sleep(100);
    }
    throw new Error(`did not answer a Check within ${timeoutMs} ms (last: ${last})`);
  } finally {
    client.close();
  }
}

export interface ProcessServerOptions {
  readonly name: string;
  readonly protocol: string;
  readonly command: string;
  readonly args: (port: number) => string[];
  readonly ctx: ServerContext;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly readyTimeoutMs?: number;
}

/** Spawns a server process on a free port, logs its output to a file, and waits until it answers. */
export async function startProcessServer(o: ProcessServerOptions): Promise<RunningServer> {
  const port = await freePort();
  await mkdir(o.ctx.logDir, { recursive: true });
  const logFile = path.join(o.ctx.logDir, `${o.name}-${o.ctx.workload}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(o.command, o.args(port), { cwd: o.cwd ?? ROOT, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
  };
  const address = `127.0.0.1:${port}`;
  try {
    await waitUntilAnswering(address, o.protocol, child, o.readyTimeoutMs ?? 120_000);
  } catch (err) {
    await stop();
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
    throw new Error(`${o.name} (${o.command} ${o.args(port).join(' ')}): ${(err as Error).message}\n--- ${logFile} ---\n${tail}`);
  }
  return { pid: child.pid!, port, address, logFile, stop };
}

export const emptyServer: ServerDefinition = {
  name: 'empty',
  description: 'grpc-js server on the same proto answering a fixed response (transport ceiling)',
  protocol: 'verdict.v1',
  baseline: true,
  start: (ctx) =>
    startProcessServer({
      name: 'empty',
      protocol: 'verdict.v1',
      command: process.execPath,
      args: (port) => [path.join(ROOT, 'dist/bench/grpc/empty-server.js'), '--listen', `127.0.0.1:${port}`],
      ctx,
    }),
};

/** The environment without VERDICT_* settings, so a server runs with the product defaults plus its flags. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERDICT_')));
}

function verdict(name: string, description: string, extraArgs: readonly string[]): ServerDefinition {
  return {
    name,
    description,
    protocol: 'verdict.v1',
    start: (ctx) =>
      startProcessServer({
        name,
        protocol: 'verdict.v1',
        command: process.execPath,
        args: (port) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--no-events', ...extraArgs],
        env: cleanEnv(),
        ctx,
      }),
  };
}

/** `verdict serve` as operators run it: decision stream off, default worker count (one per CPU). */
export const verdictServer = verdict('verdict', 'verdict serve --no-events (default workers: one per CPU)', []);

/** One process, like the empty server: the per-process comparison. */
export const verdictSingleServer = verdict('verdict-1w', 'verdict serve --no-events --workers 1', ['--workers', '1']);

/** Every server the harness knows, in table order. */
export const SERVERS: readonly ServerDefinition[] = [emptyServer, verdictServer, verdictSingleServer];
