/**
 * Starting Cerbos for the benchmark (the `cerbos` and `cerbos-audit` definitions in
 * bench/servers.ts). Each start:
 *  - makes sure the pinned Cerbos binary is in the scratch cache (bench/cerbos/install.ts);
 *  - picks the Cerbos policy set equivalent to the workload's Verdict set: bench/cerbos/policies for
 *    "example", a freshly generated set (bench/cerbos/generate.ts) for "large", with as many types
 *    as the Verdict set the harness wrote;
 *  - writes a config to a private temp directory: gRPC on the harness's free port, HTTP on another
 *    free port on 127.0.0.1, disk storage watching the policy directory (Verdict hot-reloads too),
 *    telemetry off, audit off, or with `audit` on: access and decision logs through the file
 *    backend into a temp file (the counterpart of Verdict with its decision stream on);
 *  - and removes that directory again when the server stops.
 *
 * Cerbos runs with --log-level=warn (BENCH_CERBOS_LOG_LEVEL overrides it): at the default, info, it
 * logs a "Handled request" line for every call, about 1 MB/s at these rates, which the harness would
 * pipe to the log file on the same 2 CPUs. Verdict writes no line per request either; the per-call
 * record is what the audit / decision-stream variants measure.
 */
import { readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startProcessServer, type RunningServer, type ServerContext } from '../servers.js';
import { ROOT } from '../util.js';
import { writeCerbosLargePolicySet } from './generate.js';
import { ensureCerbos } from './install.js';
import { CERBOS_PROTOCOL } from './protocol.js';

/** The Cerbos set equivalent to policies/ (the "example" workload). */
export const CERBOS_EXAMPLE_POLICIES = path.join(ROOT, 'bench/cerbos/policies');

export interface CerbosOptions {
  readonly name: string;
  /** Access and decision logs to a file (`audit.backend: file`). */
  readonly audit: boolean;
}

/** Policy files (not test suites, not hidden) under `dir`, at any depth: the generated set's type count. */
async function countPolicyFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.ya?ml$/.test(entry.name) && !/_test\.ya?ml$/.test(entry.name) && !entry.name.startsWith('.')) n++;
  }
  return n;
}

function configYaml(o: { policiesDir: string; httpPort: number; auditFile?: string }): string {
  const audit = o.auditFile
    ? `audit:
  enabled: true
  accessLogsEnabled: true
  decisionLogsEnabled: true
  backend: file
  file:
    path: ${JSON.stringify(o.auditFile)}
`
    : `audit:
  enabled: false
`;
  return `# Written by bench/cerbos/server.ts for one benchmark run.
server:
  httpListenAddr: "127.0.0.1:${o.httpPort}"
  # grpcListenAddr is set on the command line (--set), to the harness's free port.
engine:
  defaultPolicyVersion: default
storage:
  driver: disk
  disk:
    directory: ${JSON.stringify(o.policiesDir)}
    watchForChanges: true
telemetry:
  disabled: true
${audit}`;
}

/** The environment without CERBOS_* settings (a developer's own config must not leak in). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CERBOS_')));
  return { ...env, CERBOS_NO_TELEMETRY: '1' };
}

export async function startCerbos(ctx: ServerContext, o: CerbosOptions): Promise<RunningServer> {
  const logLevel = process.env.BENCH_CERBOS_LOG_LEVEL || 'warn';
  const bin = await ensureCerbos(undefined, (line) => process.stderr.write(`bench: ${line}\n`));
  const work = await mkdtemp(path.join(os.tmpdir(), `verdict-bench-${o.name}-`));
  try {
    let policiesDir = CERBOS_EXAMPLE_POLICIES;
    if (ctx.workload === 'large') {
      policiesDir = path.join(work, 'policies');
      await writeCerbosLargePolicySet(policiesDir, { types: await countPolicyFiles(ctx.policiesDir) });
    }
    const httpPort = await freePort();
    const debugPort = await freePort();
    const config = path.join(work, 'cerbos.yaml');
    await writeFile(config, configYaml({ policiesDir, httpPort, auditFile: o.audit ? path.join(work, 'audit.log') : undefined }));
    const server = await startProcessServer({
      name: o.name,
      protocol: CERBOS_PROTOCOL,
      command: bin,
      args: (port) => ['server', `--config=${config}`, `--set=server.grpcListenAddr=127.0.0.1:${port}`, `--debug-listen-addr=127.0.0.1:${debugPort}`, `--log-level=${logLevel}`],
      cwd: work,
      env: cleanEnv(),
      ctx,
      // Cerbos compiles the whole set before it answers: the 1,000-type set takes 15-20 s here.
      readyTimeoutMs: 240_000,
    });
    return {
      ...server,
      httpAddress: `127.0.0.1:${httpPort}`,
      stop: async () => {
        await server.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}
