/**
 * Helpers for the decision-stream integration tests: real child processes (`verdict serve`,
 * `verdict audit consume`, private nats-server instances), real sockets, and a registry that
 * kills and removes everything a test started, even when the test failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type JsMsg, type NatsConnection } from 'nats';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../src/grpc/client.js';
import { attributesToStruct } from '../../src/grpc/struct.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const VERDICT_BIN = path.join(REPO_ROOT, 'bin', 'verdict.js');
export const NATS_URL = process.env.VERDICT_TEST_NATS_URL || 'nats://127.0.0.1:4222';
export const NATS_BIN = process.env.VERDICT_TEST_NATS_BIN || '/usr/sbin/nats-server';

export function randomToken(bytes = 5): string {
  return randomBytes(bytes).toString('hex');
}

/** A unique stream name and subject prefix for one test. */
export function uniqueNames(): { stream: string; prefix: string } {
  const r = randomToken();
  return { stream: `VT_${r.toUpperCase()}`, prefix: `vt.${r}` };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns a truthy value; throws with `what` (and the last value) on timeout. */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)}${lastErr ? `, error: ${(lastErr as Error).message}` : ''})`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Every child still running when the test process exits (mocha --exit, Ctrl-C) is killed too. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A child process whose output is kept: JSON lines (pino) parsed, everything kept as text. */
export class Proc {
  readonly logs: Record<string, unknown>[] = [];
  stdout = '';
  stderr = '';
  readonly exit: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let partial = '';
    const onLine = (line: string) => {
      if (!line.startsWith('{')) return;
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    };
    const take = (chunk: Buffer, which: 'stdout' | 'stderr') => {
      const text = chunk.toString('utf8');
      this[which] += text;
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      lines.forEach(onLine);
    };
    child.stdout?.on('data', (c: Buffer) => take(c, 'stdout'));
    child.stderr?.on('data', (c: Buffer) => take(c, 'stderr'));
    this.exit = exited(child);
    live.add(child);
    void this.exit.then(() => live.delete(child));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  log(msg: string | RegExp): Record<string, unknown> | undefined {
    return this.logs.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
  }

  async waitForLog(msg: string | RegExp, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return (await waitFor(`"${String(msg)}" in the logs of ${this.name}`, () => {
      if (!this.running && !this.log(msg)) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}): ${this.tail()}`);
      return this.log(msg);
    }, timeoutMs, 20))!;
  }

  /** The last lines of output, for failure messages. */
  tail(lines = 15): string {
    return `${this.stdout}\n${this.stderr}`.trim().split('\n').slice(-lines).join('\n');
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. Returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<number | null> {
    if (!this.running) return this.exit;
    this.child.kill(signal);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([this.exit, timer])) === 'timeout') {
      this.child.kill('SIGKILL');
    }
    return this.exit;
  }
}

/** Everything one test started; `cleanup()` (in afterEach) kills, deletes and removes it all. */
export class Resources {
  private procs: Proc[] = [];
  private dirs: string[] = [];
  private streams: { url: string; name: string }[] = [];
  private connections: NatsConnection[] = [];
  private clients: { close(): void }[] = [];

  /** A gRPC client for verdict.v1.Authorization at `address`, closed at cleanup. */
  client(address: string): AuthzClient {
    const c = createAuthorizationClient(address);
    this.clients.push(c);
    return c;
  }

  tmpDir(label = 'vt'): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), `verdict-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  track(proc: Proc): Proc {
    this.procs.push(proc);
    return proc;
  }

  /** Deletes the stream at cleanup (deny_delete blocks message deletes, not stream deletion). */
  stream(url: string, name: string): void {
    this.streams.push({ url, name });
  }

  async nats(url: string): Promise<NatsConnection> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    this.connections.push(nc);
    return nc;
  }

  async cleanup(): Promise<void> {
    const procs = this.procs.splice(0);
    // Verdict processes first (they may want NATS while stopping), private nats-servers last.
    procs.sort((a, b) => Number(a.name.startsWith('nats-server')) - Number(b.name.startsWith('nats-server')));
    for (const p of procs) {
      if (p.running) {
        p.child.kill('SIGKILL');
        await p.exit;
      }
    }
    for (const c of this.clients.splice(0)) c.close();
    for (const nc of this.connections.splice(0)) await nc.close().catch(() => undefined);
    for (const { url, name } of this.streams.splice(0)) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({ servers: url, timeout: 2000, maxReconnectAttempts: 0 });
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        await jsm.streams.delete(name).catch(() => undefined);
      } catch {
        // a private server that is already gone takes its streams with it
      } finally {
        await nc?.close().catch(() => undefined);
      }
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** A small policy set: employees read documents; suspended subjects are denied everything. */
export const TEST_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
  - name: deny-suspended
    actions: ["*"]
    effect: deny
    when: has(subject.attributes.suspended) && subject.attributes.suspended
`;

export function writePolicies(dir: string, text = TEST_POLICY): string {
  writeFileSync(path.join(dir, 'document.yaml'), text);
  return dir;
}

export interface ServeOptions {
  readonly policies: string;
  readonly natsUrl: string;
  readonly stream: string;
  readonly prefix: string;
  readonly spoolDir: string;
  readonly instanceId?: string;
  readonly required?: boolean;
  /** YAML text of a config file (written into the spool dir's parent). */
  readonly configYaml?: string;
  readonly configDir?: string;
  readonly logLevel?: string;
}

export interface ServerProc extends Proc {
  address: string;
}

/** Starts `verdict serve` on a free port and waits until it serves. */
export async function startVerdict(res: Resources, opts: ServeOptions): Promise<ServerProc> {
  const args = [VERDICT_BIN, 'serve', '--policies', opts.policies, '--listen', '127.0.0.1:0', '--nats', opts.natsUrl, '--spool-dir', opts.spoolDir, '--log-level', opts.logLevel ?? 'info'];
  if (opts.instanceId) args.push('--instance-id', opts.instanceId);
  if (opts.required) args.push('--audit-required');
  if (opts.configYaml !== undefined) {
    const file = path.join(opts.configDir ?? res.tmpDir('cfg'), `verdict-${randomToken(3)}.yaml`);
    writeFileSync(file, opts.configYaml);
    args.push('--config', file);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, VERDICT_EVENTS_STREAM: opts.stream, VERDICT_EVENTS_SUBJECT_PREFIX: opts.prefix };
  for (const k of ['VERDICT_CONFIG', 'VERDICT_AUDIT_REQUIRED', 'VERDICT_NATS_URL', 'VERDICT_SPOOL_DIR', 'VERDICT_INSTANCE_ID', 'VERDICT_EVENTS']) delete env[k];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = res.track(new Proc(`verdict serve (${opts.instanceId ?? 'default id'})`, child)) as ServerProc;
  const serving = await proc.waitForLog('verdict serving', 15_000);
  proc.address = String(serving.listen);
  return proc;
}

/** Starts `verdict audit consume` writing into `outDir`, and waits until it runs. */
export async function startConsumer(res: Resources, opts: { natsUrl: string; stream: string; prefix: string; outDir: string; durable: string; onlyDenials?: boolean; rotateBytes?: number }): Promise<Proc> {
  const args = [VERDICT_BIN, 'audit', 'consume', '--nats', opts.natsUrl, '--stream', opts.stream, '--subject-prefix', opts.prefix, '--out', opts.outDir, '--durable', opts.durable];
  if (opts.onlyDenials) args.push('--only-denials');
  if (opts.rotateBytes) args.push('--rotate-bytes', String(opts.rotateBytes));
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = res.track(new Proc(`audit consume ${opts.durable}`, child));
  await proc.waitForLog('audit consumer started', 15_000);
  return proc;
}

/** Runs the verdict CLI to completion. */
export async function runVerdict(args: readonly string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [VERDICT_BIN, ...args], { cwd: REPO_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = new Proc(`verdict ${args[0] ?? ''}`, child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await proc.exit;
  clearTimeout(timer);
  return { code, stdout: proc.stdout, stderr: proc.stderr };
}

/** A private nats-server with JetStream on its own port and store directory; restartable. */
export class PrivateNats {
  proc: Proc | undefined;

  private constructor(
    private readonly res: Resources,
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(res: Resources): Promise<PrivateNats> {
    const n = await PrivateNats.reserve(res);
    await n.restart();
    return n;
  }

  /** A port and store directory for a server started later with `restart()`. */
  static async reserve(res: Resources): Promise<PrivateNats> {
    return new PrivateNats(res, await freePort(), res.tmpDir('nats'));
  }

  /** (Re)starts the server on the same port and store directory; resolves once it accepts clients. */
  async restart(): Promise<void> {
    if (this.proc?.running) throw new Error('nats-server is still running');
    const child = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = this.res.track(new Proc(`nats-server :${this.port}`, child));
    await waitFor(`nats-server on port ${this.port}`, async () => {
      if (!this.proc!.running) throw new Error(`nats-server exited: ${this.proc!.tail()}`);
      return /Server is ready/.test(this.proc!.stderr) && (await portAccepts(this.port));
    }, 15_000, 25);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.proc?.stop(signal);
  }
}

/** A stored message of the stream. */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Record<string, unknown>;
  readonly raw: string;
  readonly msgId: string | undefined;
}

/** Reads the whole stream in order with an ordered consumer. */
export async function readStream(nc: NatsConnection, stream: string, timeoutMs = 10_000): Promise<StoredMessage[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const last = info.state.last_seq;
  const out: StoredMessage[] = [];
  if (info.state.messages === 0) return out;
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
    let lastSeq = out.length > 0 ? out[out.length - 1]!.seq : 0;
    for await (const m of batch as AsyncIterable<JsMsg>) {
      const raw = m.string();
      out.push({ seq: m.seq, subject: m.subject, data: JSON.parse(raw) as Record<string, unknown>, raw, msgId: m.headers?.get('Nats-Msg-Id') || undefined });
      lastSeq = m.seq;
    }
    if (lastSeq >= last) return out;
  }
  throw new Error(`read only ${out.length} messages of stream ${stream} (last seq ${last})`);
}

/** Number of decision events (3-token subjects; checkpoints have 4) stored in the stream. */
export async function countEvents(nc: NatsConnection, stream: string, prefix: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}.*.*` });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

export async function streamExists(nc: NatsConnection, stream: string): Promise<boolean> {
  try {
    await (await nc.jetstreamManager()).streams.info(stream);
    return true;
  } catch {
    return false;
  }
}

/** The trail files of a consumer's output directory, in name (= time) order. */
export function trailFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => path.join(dir, f));
}

export interface TrailRecord {
  readonly seq: number;
  readonly subject: string;
  readonly data: Record<string, unknown>;
}

export function readTrail(dir: string): TrailRecord[] {
  const out: TrailRecord[] = [];
  for (const f of trailFiles(dir)) {
    for (const line of readFileSync(f, 'utf8').split('\n')) if (line.trim() !== '') out.push(JSON.parse(line) as TrailRecord);
  }
  return out;
}

export type AuthzClient = ReturnType<typeof createAuthorizationClient>;

/** The fields of verdict.v1.CheckResponse the tests look at. */
export interface CheckResponse {
  decision: string;
  allowed: boolean;
  policy: string;
  rule: string;
  reason: string;
  revision: string;
  decisionId: string;
}

export function check(client: AuthzClient, req: JsonCheckRequest, requestId = '', deadlineMs = 10_000): Promise<CheckResponse> {
  return unary<CheckResponse>(client, 'Check', toProtoCheckRequest(req, { requestId }), deadlineMs);
}

export function checkBatch(
  client: AuthzClient,
  subject: JsonCheckRequest['subject'],
  items: { action: string; resource: JsonCheckRequest['resource'] }[],
  requestId = '',
  context: Record<string, unknown> = {},
): Promise<{ results: CheckResponse[]; revision: string }> {
  const base = toProtoCheckRequest({ subject, action: 'x', resource: { type: 'x' }, context });
  return unary(client, 'CheckBatch', {
    subject: base.subject,
    context: base.context,
    requestId,
    items: items.map((i) => ({ action: { name: i.action }, resource: { type: i.resource.type, id: i.resource.id ?? '', attributes: attributesToStruct(i.resource.attributes ?? {}) } })),
  });
}
