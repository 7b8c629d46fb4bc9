/**
 * Do Verdict's and Cerbos's AuthZEN endpoints decide the benchmark's AuthZEN requests alike?
 * Starts `verdict-authzen` and `cerbos-authzen` (bench/servers.ts) on the example workload, sends
 * every evaluation and every evaluations call the load generators send (the same bytes), and
 * compares the decisions one by one. Exits 1 on any mismatch.
 *
 *   node dist/bench/http/check-decisions.js
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cerbosAuthzenServer, ROOT, verdictAuthzenServer, type RunningServer } from '../servers.js';
import { authzenProtocol } from './authzen-protocol.js';
import { Http1Transport } from './http1-transport.js';

async function decisions(server: RunningServer, method: 'Check' | 'CheckBatch'): Promise<boolean[][]> {
  const m = authzenProtocol.method(method);
  const bodies = authzenProtocol.messages('example', method).map((x) => m.encode(x));
  const transport = new Http1Transport(server.address, m.path, bodies, 1);
  await transport.ready(5_000);
  try {
    const out: boolean[][] = [];
    for (let i = 0; i < bodies.length; i++) {
      const r = m.decode(await transport.callForResponse(i)) as { decision?: boolean; evaluations?: { decision: boolean }[] };
      out.push(method === 'Check' ? [r.decision === true] : r.evaluations!.map((e) => e.decision));
    }
    return out;
  } finally {
    transport.close();
  }
}

async function main(): Promise<number> {
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'verdict-authzen-check-'));
  const ctx = { workload: 'example' as const, policiesDir: path.join(ROOT, 'policies'), logDir };
  const servers: RunningServer[] = [];
  try {
    const verdict = await verdictAuthzenServer.start(ctx);
    servers.push(verdict);
    const cerbos = await cerbosAuthzenServer.start(ctx);
    servers.push(cerbos);
    let compared = 0;
    let allowed = 0;
    const mismatches: string[] = [];
    for (const method of ['Check', 'CheckBatch'] as const) {
      const [v, c] = [await decisions(verdict, method), await decisions(cerbos, method)];
      v.forEach((call, i) =>
        call.forEach((d, j) => {
          compared++;
          if (d) allowed++;
          if (c[i]?.[j] !== d) mismatches.push(`${method} #${i}${method === 'CheckBatch' ? ` item ${j}` : ''}: verdict ${d}, cerbos ${c[i]?.[j]}`);
        }),
      );
    }
    process.stdout.write(`AuthZEN decisions compared: ${compared} (allowed ${allowed}, denied ${compared - allowed}); mismatches: ${mismatches.length}\n${mismatches.map((m) => `  ${m}\n`).join('')}`);
    return mismatches.length === 0 ? 0 : 1;
  } finally {
    for (const s of servers) await s.stop();
    await rm(logDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
