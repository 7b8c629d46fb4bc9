/**
 * Do Verdict and Cerbos decide alike? Starts a Verdict server and a Cerbos server (the definitions
 * of bench/servers.ts, on the same policy sets the benchmark uses), sends every request of the
 * workload to both (each single Check, and each item of each CheckBatch as Cerbos's
 * CheckResources with 10 resources × 3 actions), and compares the effects one by one. The
 * requests are exactly the messages the load generators send (bench/grpc/protocols.ts).
 *
 * For the example workload it also runs every case of the policy test suites (policies/, the
 * *_test.yaml files) against both, which exercises every rule both ways, including the company-wide
 * deny rules the workload never triggers (--no-suites skips that).
 *
 *   node dist/bench/cerbos/check-decisions.js [--workloads example,large] [--types 1000]
 *                                             [--verdict verdict-1w] [--cerbos cerbos] [--verbose] [--no-suites]
 *
 * Prints a line per mismatch (and, with --verbose or for the example workload, every single
 * check), a summary of outcomes, and exits 1 if any decision differs or a workload decision of
 * Verdict met a condition error (Verdict denies on an erroring deny rule, Cerbos skips the rule:
 * such a request would not be a fair comparison).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { attributesToStruct } from '../../src/grpc/struct.js';
import type { CheckRequest } from '../../src/engine/index.js';
import { loadSuites } from '../../src/testing/suite.js';
import { writeLargePolicySet } from '../generate/large-policy-set.js';
import { protocol, type MethodName } from '../grpc/protocols.js';
import { ROOT, SERVERS, type RunningServer, type ServerDefinition } from '../servers.js';
import { parseFlags } from '../util.js';
import { workloadBatches, workloadRequests, type WorkloadName } from '../workloads.js';
import { CERBOS_PROTOCOL, checkRequestToCerbos, type CerbosCheckResourcesRequest, type CerbosCheckResourcesResponse } from './protocol.js';

interface VerdictResult {
  decision?: string;
  rule?: string;
  reason?: string;
  errors?: { message?: string }[];
}

interface Outcome {
  readonly label: string;
  readonly verdict: string;
  readonly verdictRule: string;
  readonly verdictErrors: number;
  readonly cerbos: string;
  readonly cerbosRoles: string;
  /** Set when the request is outside what the comparison can hold the two to (see --suites). */
  readonly skip?: string;
}

function call(client: Client, protocolName: string, method: MethodName, message: unknown, tweak?: (m: unknown) => unknown): Promise<unknown> {
  const p = protocol(protocolName).method(method);
  const body = p.encode(tweak ? tweak(message) : message);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(p.path, (b: Buffer) => b, p.decode, body, new Metadata(), { deadline: Date.now() + 30_000 }, (err, res) => (err ? reject(new Error(`${protocolName} ${method}: ${err.code} ${err.details}`)) : resolve(res)));
  });
}

/** Runs `fn` over `items` with at most `limit` outstanding. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

const short = (e: string | undefined) => (e ?? 'NONE').replace(/^EFFECT_/, '');

/** Asks for Cerbos's metadata (effective derived roles), to explain a mismatch. */
const withMeta = (m: unknown) => ({ ...(m as CerbosCheckResourcesRequest), includeMeta: true });

async function compare(workload: WorkloadName, verdict: RunningServer, cerbos: RunningServer): Promise<Outcome[]> {
  const v = new Client(verdict.address, credentials.createInsecure());
  const c = new Client(cerbos.address, credentials.createInsecure());
  const outcomes: Outcome[] = [];
  try {
    // Single checks: message i of both protocols is request i of the workload.
    const requests = workloadRequests(workload);
    const vMessages = protocol('verdict.v1').messages(workload, 'Check');
    const cMessages = protocol(CERBOS_PROTOCOL).messages(workload, 'Check') as CerbosCheckResourcesRequest[];
    outcomes.push(
      ...(await pool(requests, 32, async (r, i) => {
        const [vr, cr] = await Promise.all([
          call(v, 'verdict.v1', 'Check', vMessages[i]) as Promise<VerdictResult>,
          call(c, CERBOS_PROTOCOL, 'Check', cMessages[i], withMeta) as Promise<CerbosCheckResourcesResponse>,
        ]);
        const result = cr.results?.[0];
        return {
          label: `Check #${i}: ${r.subject.id} [${r.subject.roles.join(',')}] ${r.action} ${r.resource.type}/${r.resource.id}`,
          verdict: short(vr.decision),
          verdictRule: vr.rule || vr.reason || '',
          verdictErrors: vr.errors?.length ?? 0,
          cerbos: short(result?.actions?.[r.action]),
          cerbosRoles: (result?.meta?.effectiveDerivedRoles ?? []).join(','),
        };
      })),
    );
    // Batches: Verdict answers item by item; Cerbos per resource, per action.
    const batches = workloadBatches(workload);
    const vBatches = protocol('verdict.v1').messages(workload, 'CheckBatch');
    const cBatches = protocol(CERBOS_PROTOCOL).messages(workload, 'CheckBatch');
    const perBatch = await pool(batches, 16, async (b, bi) => {
      const [vr, cr] = await Promise.all([
        call(v, 'verdict.v1', 'CheckBatch', vBatches[bi]) as Promise<{ results?: VerdictResult[] }>,
        call(c, CERBOS_PROTOCOL, 'CheckBatch', cBatches[bi], withMeta) as Promise<CerbosCheckResourcesResponse>,
      ]);
      return b.items.map((it, ii) => {
        const result = cr.results?.find((x) => x.resource?.id === it.resource.id && x.resource?.kind === it.resource.type);
        const vi = vr.results?.[ii] ?? {};
        return {
          label: `CheckBatch #${bi} item ${ii}: ${b.subject.id} [${b.subject.roles.join(',')}] ${it.action} ${it.resource.type}/${it.resource.id}`,
          verdict: short(vi.decision),
          verdictRule: vi.rule || vi.reason || '',
          verdictErrors: vi.errors?.length ?? 0,
          cerbos: short(result?.actions?.[it.action]),
          cerbosRoles: (result?.meta?.effectiveDerivedRoles ?? []).join(','),
        };
      });
    });
    outcomes.push(...perBatch.flat());
  } finally {
    v.close();
    c.close();
  }
  return outcomes;
}

/** Verdict's Check message for a request (the form bench/grpc/protocols.ts sends). */
function verdictCheck(r: CheckRequest, requestId: string): unknown {
  return {
    subject: { type: r.subject.type, id: r.subject.id, roles: [...r.subject.roles], attributes: attributesToStruct(r.subject.attributes) },
    action: { name: r.action },
    resource: { type: r.resource.type, id: r.resource.id, attributes: attributesToStruct(r.resource.attributes) },
    context: attributesToStruct(r.context),
    requestId,
  };
}

/**
 * Every case of the policy test suites under `dir` (each *_test.yaml, as `verdict test` runs them),
 * current time (`now` of a case is ignored: Cerbos has no way to set it). Cases Cerbos cannot
 * express (no roles, empty resource id) and cases where Verdict met a condition error are marked
 * as skipped, with the reason: there the two differ by design, not by policy.
 */
async function compareSuites(dir: string, verdict: RunningServer, cerbos: RunningServer): Promise<Outcome[]> {
  const { tests, errors } = await loadSuites(dir);
  if (errors.length > 0) throw new Error(`test suites under ${dir}: ${errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('; ')}`);
  const v = new Client(verdict.address, credentials.createInsecure());
  const c = new Client(cerbos.address, credentials.createInsecure());
  try {
    return await pool(tests, 16, async (t, i) => {
      const r = t.request;
      const label = `suite ${t.file}:${t.line} "${t.name}"`;
      const vr = (await call(v, 'verdict.v1', 'Check', verdictCheck(r, `suite-${i}`))) as VerdictResult;
      const base = { label, verdict: short(vr.decision), verdictRule: vr.rule || vr.reason || '', verdictErrors: vr.errors?.length ?? 0 };
      if (r.subject.roles.length === 0 || r.resource.id === '') {
        return { ...base, cerbos: '-', cerbosRoles: '', skip: 'Cerbos requires at least one role and a resource id' };
      }
      const cr = (await call(c, CERBOS_PROTOCOL, 'Check', checkRequestToCerbos(r, `suite-${i}`), withMeta)) as CerbosCheckResourcesResponse;
      const result = cr.results?.[0];
      const outcome: Outcome = { ...base, cerbos: short(result?.actions?.[r.action]), cerbosRoles: (result?.meta?.effectiveDerivedRoles ?? []).join(',') };
      if (outcome.verdictErrors > 0 || vr.reason === 'RULE_ERROR') {
        return { ...outcome, skip: 'a condition errored: Verdict denies on an erroring deny rule, Cerbos skips the rule' };
      }
      return outcome;
    });
  } finally {
    v.close();
    c.close();
  }
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2));
  const workloads = flags.list('workloads', ['example']) as WorkloadName[];
  const types = flags.int('types', 1000);
  const verbose = flags.bool('verbose');
  const suites = !flags.has('no-suites');
  const byName = (n: string): ServerDefinition => {
    const d = SERVERS.find((s) => s.name === n);
    if (!d) throw new Error(`unknown server "${n}" (known: ${SERVERS.map((s) => s.name).join(', ')})`);
    return d;
  };
  const verdictDef = byName(flags.str('verdict', 'verdict-1w'));
  const cerbosDef = byName(flags.str('cerbos', 'cerbos'));
  const work = await mkdtemp(path.join(os.tmpdir(), 'verdict-cerbos-check-'));
  let failures = 0;
  try {
    for (const workload of workloads) {
      let policiesDir = path.join(ROOT, 'policies');
      if (workload === 'large') {
        policiesDir = path.join(work, 'large-policies');
        await writeLargePolicySet(policiesDir, { types });
      }
      const ctx = { workload, policiesDir, logDir: path.join(work, 'logs') };
      const running: RunningServer[] = [];
      try {
        const verdict = await verdictDef.start(ctx);
        running.push(verdict);
        const cerbos = await cerbosDef.start(ctx);
        running.push(cerbos);
        const outcomes = await compare(workload, verdict, cerbos);
        const suiteOutcomes = workload === 'example' && suites ? await compareSuites(policiesDir, verdict, cerbos) : [];
        const print = (o: Outcome, always: boolean) => {
          const bad = !o.skip && (o.verdict !== o.cerbos || o.verdictErrors > 0);
          if (!bad && !always && !verbose) return;
          const tag = o.skip ? 'skipped ' : bad ? (o.verdict !== o.cerbos ? 'MISMATCH' : 'ERRORS  ') : 'ok      ';
          process.stdout.write(
            `${tag} ${o.label}: verdict ${o.verdict} (${o.verdictRule || '-'}${o.verdictErrors ? `, ${o.verdictErrors} errors` : ''}), cerbos ${o.cerbos}${o.cerbosRoles ? ` (derived roles ${o.cerbosRoles})` : ''}${o.skip ? ` [${o.skip}]` : ''}\n`,
          );
        };
        for (const o of outcomes) print(o, workload === 'example' && o.label.startsWith('Check #'));
        for (const o of suiteOutcomes) print(o, o.skip !== undefined);
        const mismatches = outcomes.filter((o) => o.verdict !== o.cerbos);
        const erroring = outcomes.filter((o) => o.verdictErrors > 0);
        if (suites && suiteOutcomes.length > 0) {
          const compared = suiteOutcomes.filter((o) => !o.skip);
          const suiteMismatches = compared.filter((o) => o.verdict !== o.cerbos);
          process.stdout.write(
            `policy test suites: ${compared.length} of ${suiteOutcomes.length} cases compared: ${suiteMismatches.length} mismatches; ${suiteOutcomes.length - compared.length} skipped (outside what Cerbos can express, or condition errors)\n`,
          );
          failures += suiteMismatches.length;
        }
        const tally = (f: (o: Outcome) => string) => Object.entries(outcomes.reduce<Record<string, number>>((m, o) => ((m[f(o)] = (m[f(o)] ?? 0) + 1), m), {})).map(([k, n]) => `${k} ${n}`).join(', ');
        process.stdout.write(
          `${workload}: ${outcomes.length} decisions compared (${verdictDef.name} vs ${cerbosDef.name}): ${mismatches.length} mismatches, ${erroring.length} Verdict decisions with condition errors; outcomes ${tally((o) => o.verdict)}\n`,
        );
        failures += mismatches.length + erroring.length;
      } finally {
        for (const s of running) await s.stop();
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`check-decisions: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
