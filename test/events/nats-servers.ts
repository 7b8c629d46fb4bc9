/**
 * nats-server processes with a configuration file (limits, accounts and permissions, TLS, a
 * cluster), started by a test on free ports with their own store directories and stopped by
 * Resources.cleanup(). The plain private server (-js, no config) is PrivateNats in events-harness.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, NATS_BIN, portAccepts, Proc, Resources, waitFor } from '../support/events-harness.js';

export class ConfiguredNats {
  proc: Proc | undefined;

  constructor(
    private readonly res: Resources,
    readonly name: string,
    readonly port: number,
    readonly storeDir: string,
    readonly configFile: string,
    private readonly scheme = 'nats',
  ) {}

  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server whose configuration `conf` builds from its port and store directory (the
   * `listen` and `jetstream` lines are added here).
   */
  static async start(res: Resources, conf: (ports: { port: number; storeDir: string; dir: string }) => string, opts: { name?: string; scheme?: string; ready?: RegExp } = {}): Promise<ConfiguredNats> {
    const n = await ConfiguredNats.prepare(res, conf, opts);
    await n.restart(opts.ready);
    return n;
  }

  /** Port, store directory and configuration file of a server started later with `restart()`. */
  static async prepare(res: Resources, conf: (ports: { port: number; storeDir: string; dir: string }) => string, opts: { name?: string; scheme?: string } = {}): Promise<ConfiguredNats> {
    const dir = res.tmpDir('natscfg');
    const port = await freePort();
    const storeDir = path.join(dir, 'store');
    const configFile = path.join(dir, 'nats.conf');
    const name = opts.name ?? `vt-${port}`;
    writeFileSync(configFile, `server_name: ${name}\nlisten: 127.0.0.1:${port}\njetstream { store_dir: "${storeDir}" }\n${conf({ port, storeDir, dir })}\n`);
    return new ConfiguredNats(res, name, port, storeDir, configFile, opts.scheme);
  }

  async restart(ready = /Server is ready/): Promise<void> {
    if (this.proc?.running) throw new Error(`${this.name} is still running`);
    const child = spawn(NATS_BIN, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = this.res.track(new Proc(`nats-server ${this.name}`, child));
    await waitFor(`nats-server ${this.name} on port ${this.port}`, async () => {
      if (!this.proc!.running) throw new Error(`nats-server exited: ${this.proc!.tail()}`);
      return ready.test(this.proc!.stderr) && (await portAccepts(this.port));
    }, 20_000, 25);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.proc?.stop(signal);
  }
}

/** Three JetStream nodes in one cluster (routes on free ports, a store directory each). */
export async function startCluster(res: Resources, size = 3): Promise<ConfiguredNats[]> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  // Started together: a JetStream cluster waits for its peers before it is ready.
  return Promise.all(
    routePorts.map((routePort, i) =>
      ConfiguredNats.start(res, () => `cluster { name: vtcluster, listen: 127.0.0.1:${routePort}, routes: [${routes}] }`, { name: `vt-n${i + 1}-${routePort}` }),
    ),
  );
}
