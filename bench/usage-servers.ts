/**
 * Verdict with a usage limit that applies to every allowed request of the workload, next to
 * verdict-1w without one (same run): the cost of a limit per check. The limit is generous (nothing
 * is denied), so the load is the same and only the counting differs.
 *   verdict-1w-limit:   scope: instance (an in-process GCRA bucket per subject)
 *   verdict-1w-cluster: scope: cluster (the same, synced through NATS KV every 100 ms)
 */
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BENCH_NATS_URL, ROOT, startProcessServer, type ServerContext, type ServerDefinition } from './servers.js';

function limitPolicy(scope: 'instance' | 'cluster'): string {
  return `apiVersion: verdict/v1
kind: ResourcePolicy
resource: "*"
description: bench only - a limit on every allowed request, never reached
rules: []
limits:
  - name: bench-per-subject
    actions: ["*"]
    key: subject.id
    rate: 1000000000/1s
    burst: 1000000000
    scope: ${scope}
`;
}

async function withLimit(ctx: ServerContext, scope: 'instance' | 'cluster'): Promise<{ policies: string; config: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `verdict-bench-limit-${scope}-`));
  const policies = path.join(dir, 'policies');
  await cp(ctx.policiesDir, policies, { recursive: true, filter: (src) => !src.endsWith('_test.yaml') });
  await writeFile(path.join(policies, 'zz-bench-limit.yaml'), limitPolicy(scope));
  const config = path.join(dir, 'verdict.yaml');
  await writeFile(config, `events:\n  natsUrl: ${JSON.stringify(BENCH_NATS_URL)}\nusage:\n  stateDir: ""\n  cluster:\n    bucket: VERDICT_BENCH_USAGE\n`);
  return { policies, config };
}

function limited(name: string, scope: 'instance' | 'cluster', description: string): ServerDefinition {
  return {
    name,
    description,
    protocol: 'verdict.v1',
    workloads: ['example'],
    start: async (ctx) => {
      const { policies, config } = await withLimit(ctx, scope);
      return startProcessServer({
        name,
        protocol: 'verdict.v1',
        command: process.execPath,
        args: (port) => [path.join(ROOT, 'bin/verdict.js'), 'serve', '--policies', policies, '--config', config, '--listen', `127.0.0.1:${port}`, '--no-events', '--workers', '1'],
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERDICT_'))),
        ctx,
      });
    },
  };
}

export const verdictLimitServer = limited('verdict-1w-limit', 'instance', 'verdict-1w with a rate limit (scope: instance, key subject.id) on every allowed request, never reached');
export const verdictClusterLimitServer = limited('verdict-1w-cluster', 'cluster', "the same limit with scope: cluster, synced through NATS KV (the bench NATS, as for verdict-events) every 100 ms");
