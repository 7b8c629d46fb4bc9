/**
 * Servers under test. Each definition starts one server process for a workload and says which
 * wire protocol the load generator must speak to it. To compare another server (Verdict with NATS
 * events on, Cerbos), add a definition here; for a new protocol, add it to bench/grpc/protocols.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { connect as natsConnect } from 'nats';
import { protocol as protocolNamed } from './grpc/protocols.js';
import { startCerbos } from './cerbos/server.js';
import { AUTHZEN_PROTOCOL } from './http/authzen-protocol.js';
import { waitUntilHttpAnswers } from './http/ready.js';
import { ROOT } from './util.js';
import { verdictClusterLimitServer, verdictLimitServer } from './usage-servers.js';
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
  /** Servers with decision events on: decision events stored so far (checkpoints excluded). */
  countEvents?(): Promise<number>;
  /** A server that also serves HTTP (Cerbos): host:port of its HTTP listener. */
  readonly httpAddress?: string;
}

export interface ServerDefinition {
  readonly name: string;
  readonly description: string;
  /** Wire protocol of the load generator (bench/grpc/protocols.ts). */
  readonly protocol: string;
  /** The reference the others are compared with (the empty server: the transport ceiling). */
  readonly baseline?: boolean;
  /** Workloads it can serve (default: all). */
  readonly workloads?: readonly WorkloadName[];
  /** Runs only when named in --servers (not part of the default set). */
  readonly optIn?: boolean;
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

/**
 * Node/V8 flags for the Verdict servers, this checkout's and BENCH_BASELINE_DIR's alike
 * (BENCH_NODE_FLAGS, split on spaces; empty by default; shown in the report's command). For A/B
 * runs that hold V8's GC phase equal, e.g. "--max-semi-space-size=8" (docs/performance.md).
 */
export const NODE_FLAGS: readonly string[] = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

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
        args: (port) => [...NODE_FLAGS, path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--no-events', ...extraArgs],
        env: cleanEnv(),
        ctx,
      }),
  };
}

/** `verdict serve` as operators run it: decision stream off, default worker count (one per CPU). */
export const verdictServer = verdict('verdict', 'verdict serve --no-events (default workers: one per CPU)', []);

/** One process, like the empty server: the per-process comparison. */
export const verdictSingleServer = verdict('verdict-1w', 'verdict serve --no-events --workers 1', ['--workers', '1']);

/** Cerbos (npm @cerbos/cerbos-linux-x64, pinned in bench/cerbos/install.ts) on the equivalent policy set, audit off. */
export const cerbosServer: ServerDefinition = {
  name: 'cerbos',
  description: 'Cerbos PDP (bench/cerbos: pinned npm binary, equivalent policies in bench/cerbos/policies, CheckResources), audit off',
  protocol: 'cerbos.svc.v1',
  start: (ctx) => startCerbos(ctx, { name: 'cerbos', audit: false }),
};

/** The same with access and decision logs through Cerbos's file audit backend (compare with Verdict with events on). */
export const cerbosAuditServer: ServerDefinition = {
  name: 'cerbos-audit',
  description: 'the same Cerbos with audit on (access + decision logs, file backend, to a temp file)',
  protocol: 'cerbos.svc.v1',
  start: (ctx) => startCerbos(ctx, { name: 'cerbos-audit', audit: true }),
};

/** The same with the admin listener on (`--admin`): Prometheus metrics recorded on every call. */
export const verdictAdminServer: ServerDefinition = { ...verdict('verdict-1w-admin', 'verdict serve --no-events --workers 1 --admin 127.0.0.1:0 (metrics on)', ['--workers', '1', '--admin', '127.0.0.1:0']), optIn: true };

/**
 * `verdict-1w` from another built checkout (BENCH_BASELINE_DIR: a directory with bin/verdict.js,
 * dist/ and node_modules/, e.g. main before a change), for before/after figures in one run.
 */
export const verdictBaselineServer: ServerDefinition = {
  name: 'verdict-1w-base',
  optIn: true,
  description: `verdict serve --no-events --workers 1 from the checkout in BENCH_BASELINE_DIR (${process.env.BENCH_BASELINE_DIR ?? 'not set'})`,
  protocol: 'verdict.v1',
  start: (ctx) => {
    const dir = process.env.BENCH_BASELINE_DIR;
    if (!dir) throw new Error('verdict-1w-base needs BENCH_BASELINE_DIR: a built checkout to compare with (see docs/performance.md)');
    return startProcessServer({
      name: 'verdict-1w-base',
      protocol: 'verdict.v1',
      command: process.execPath,
      args: (port) => [...NODE_FLAGS, path.join(dir, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--no-events', '--workers', '1'],
      cwd: dir,
      env: cleanEnv(),
      ctx,
    });
  },
};

/** NATS for the events-on servers: VERDICT_BENCH_NATS_URL, VERDICT_TEST_NATS_URL, or a local one. */
export const BENCH_NATS_URL = process.env.VERDICT_BENCH_NATS_URL ?? process.env.VERDICT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * `verdict serve --workers 1` with decision events on, to real NATS JetStream: a stream and subject
 * prefix of its own per start (deleted again after the server stopped) and a fresh spool dir.
 */
function verdictEvents(name: string, description: string, extraArgs: readonly string[], protocol = 'verdict.v1', workloads?: readonly WorkloadName[]): ServerDefinition {
  return {
    name,
    description,
    protocol,
    ...(workloads ? { workloads } : {}),
    async start(ctx) {
      const tag = randomBytes(5).toString('hex');
      const stream = `VBENCH_${tag}`;
      const prefix = `vbench.${tag}`;
      const spool = await mkdtemp(path.join(os.tmpdir(), `verdict-bench-spool-${name}-`));
      const nc = await natsConnect({ servers: BENCH_NATS_URL, name: `verdict-bench-${name}` });
      const jsm = await nc.jetstreamManager();
      const cleanup = async () => {
        await jsm.streams.delete(stream).catch(() => false);
        await nc.close().catch(() => undefined);
        await rm(spool, { recursive: true, force: true });
      };
      let server: RunningServer;
      try {
        server = await startProcessServer({
          name,
          protocol,
          command: process.execPath,
          args: (port) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--workers', '1', '--nats', BENCH_NATS_URL, '--spool-dir', spool, ...extraArgs],
          env: { ...cleanEnv(), VERDICT_EVENTS_STREAM: stream, VERDICT_EVENTS_SUBJECT_PREFIX: prefix },
          ctx,
        });
      } catch (err) {
        await cleanup();
        throw err;
      }
      return {
        ...server,
        async stop() {
          await server.stop();
          await cleanup();
        },
        async countEvents() {
          // Decision events are <prefix>.<type>.<effect>; <prefix>._chain.> holds checkpoints.
          const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}.*.*` });
          return Object.entries(info.state.subjects ?? {})
            .filter(([subject]) => !subject.startsWith(`${prefix}._`))
            .reduce((sum, [, n]) => sum + n, 0);
        },
      };
    },
  };
}

/** Events on, as operators run it with the defaults (best-effort delivery, spooled when NATS is away). */
export const verdictEventsServer = verdictEvents('verdict-events', `verdict serve --workers 1 with decision events on to NATS JetStream (${BENCH_NATS_URL}, a fresh stream per start)`, []);

/** Events on and required: a decision is answered only once its event is durable. */
export const verdictRequiredServer = verdictEvents('verdict-required', 'the same with --audit-required', ['--audit-required']);

/** Envoy ext_authz on the example routes (examples/gateway/routes.yaml), one process, events off. */
export const verdictExtAuthzServer: ServerDefinition = {
  name: 'verdict-extauthz',
  description: 'verdict serve --workers 1 --no-events --routes examples/gateway/routes.yaml, called as Envoy ext_authz (envoy.service.auth.v3.Authorization/Check)',
  protocol: 'envoy.auth.v3',
  workloads: ['example'],
  start: (ctx) =>
    startProcessServer({
      name: 'verdict-extauthz',
      protocol: 'envoy.auth.v3',
      command: process.execPath,
      args: (port) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--no-events', '--workers', '1', '--routes', path.join(ROOT, 'examples/gateway/routes.yaml')],
      env: cleanEnv(),
      ctx,
    }),
};

/** ext_authz with decision events on: the gateway path as operators run it. */
export const verdictExtAuthzEventsServer = verdictEvents(
  'verdict-extauthz-events',
  'the same as verdict-extauthz with decision events on to NATS JetStream (a fresh stream per start)',
  ['--routes', path.join(ROOT, 'examples/gateway/routes.yaml')],
  'envoy.auth.v3',
  ['example'],
);

/**
 * Verdict's AuthZEN API: `verdict serve --no-events --http` with the default workers, the same
 * process shape as `verdict`, so AuthZEN evaluation compares with gRPC Check in one run. Ready once
 * a gRPC Check and then an AuthZEN evaluation are answered.
 */
export const verdictAuthzenServer: ServerDefinition = {
  name: 'verdict-authzen',
  description: 'verdict serve --no-events --http HOST:PORT (default workers), called over AuthZEN (HTTP/1.1, JSON)',
  protocol: AUTHZEN_PROTOCOL,
  async start(ctx) {
    const httpPort = await freePort();
    const server = await startProcessServer({
      name: 'verdict-authzen',
      protocol: 'verdict.v1',
      command: process.execPath,
      args: (port) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', ctx.policiesDir, '--listen', `127.0.0.1:${port}`, '--http', `127.0.0.1:${httpPort}`, '--no-events'],
      env: cleanEnv(),
      ctx,
    });
    const address = `127.0.0.1:${httpPort}`;
    try {
      await waitUntilHttpAnswers(address, ctx.workload, 30_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return { ...server, port: httpPort, address };
  },
};

/** Cerbos's own AuthZEN endpoints (/access/v1/evaluation[s] on its HTTP port), audit off, same policies as `cerbos`. */
export const cerbosAuthzenServer: ServerDefinition = {
  name: 'cerbos-authzen',
  description: "the same Cerbos as `cerbos`, called on its own AuthZEN endpoints (HTTP/1.1, JSON; roles in subject.properties[\"cerbos.roles\"])",
  protocol: AUTHZEN_PROTOCOL,
  async start(ctx) {
    const server = await startCerbos(ctx, { name: 'cerbos-authzen', audit: false });
    const address = server.httpAddress!;
    try {
      await waitUntilHttpAnswers(address, ctx.workload, 60_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return { ...server, address, port: Number(address.slice(address.lastIndexOf(':') + 1)) };
  },
};

/** Every server the harness knows, in table order. */
export const SERVERS: readonly ServerDefinition[] = [emptyServer, verdictServer, verdictSingleServer, verdictLimitServer, verdictClusterLimitServer, verdictAdminServer, verdictBaselineServer, verdictEventsServer, verdictRequiredServer, verdictExtAuthzServer, verdictExtAuthzEventsServer, verdictAuthzenServer, cerbosServer, cerbosAuditServer, cerbosAuthzenServer];
