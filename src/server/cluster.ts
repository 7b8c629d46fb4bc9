import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import type { VerdictConfig } from '../config/schema.js';
import { formatIssue } from '../policy/index.js';
import type { PolicyIssueInfo } from '../service/policy-source.js';
import { Observability } from '../observability/observability.js';
import { createPolicyEvidence } from '../evidence/setup.js';
import type { PolicyEvidence } from '../evidence/policy-evidence.js';
import type { ClosableSink } from '../service/decision-trail.js';
import { VerdictServer } from './app.js';
import { PolicyDistributor, WorkerPolicies, type PolicyToPrimary, type PolicyToWorker } from './cluster-policies.js';
import type { Logger } from './logger.js';
import { createPolicySource, policySourceName } from './policy-source.js';
import { createFleetReporter } from '../bundles/replica-reporter.js';
import type { FleetReporter } from '../bundles/fleet.js';
import { PrimaryUsageLedger, type UsageMergeReply, type UsageMergeRequest } from '../usage/worker-sync.js';
import { UsageStateFile } from '../usage/persistence.js';
import { usageStateFileName } from '../usage/runtime.js';
import { describeStartFailure, logStartFailure, policyFailure, type StartFailure } from './start-failure.js';
import { workerExecArgv } from './v8-memory.js';

/** Messages between the primary and its workers (IPC, structured clone). */
type ToWorker = PolicyToWorker | { type: 'shutdown'; reason: string } | UsageMergeReply;
type ToPrimary =
  | { type: 'listening' }
  | { type: 'ready'; port: number; httpPort: number; revision: string }
  /** `policyIssues`: the set did not load (every worker rejects the same set; the primary logs them once). */
  | { type: 'failed'; message: string; failure: StartFailure; policyIssues?: readonly PolicyIssueInfo[] }
  | PolicyToPrimary
  | UsageMergeRequest;

const WORKER_INDEX = 'VERDICT_CLUSTER_WORKER_INDEX';
const WORKER_INSTANCE = 'VERDICT_CLUSTER_INSTANCE_ID';
const WORKER_SPOOL = 'VERDICT_CLUSTER_SPOOL_DIR';

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_INDEX] !== undefined;
}

/**
 * The primary of a multi-process Verdict: it owns the policy directory (reads and watches it) and
 * hands the files to the workers, changes in two phases so all serve one revision and a broken change
 * reaches none (cluster-policies.ts). Workers share the listening port (Node cluster) and each publishes its own
 * hash chain (instance id suffixed -wN) from its own spool directory. A worker that dies is
 * replaced under the same index, so it replays its own spool.
 */
export async function runClusterPrimary(config: VerdictConfig, logger: Logger): Promise<number> {
  const workers = new Map<number, Worker>();
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  let stopReason = '';
  let exitCode = 0;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (resolveDone = r));
  const restarts = new Map<number, number>();
  /** Why the start failed: the first worker's report, logged as the last line once all have left. */
  let startFailure: { failure: StartFailure; err: string; worker: number } | undefined;

  // scope: instance counters shared by the workers (worker-sync.ts), saved in the instance's one state file.
  const usage = new PrimaryUsageLedger(config.usage.maxKeys);
  const usageFile = config.usage.stateDir === '' ? undefined : new UsageStateFile(usageStateFileName(config), usage, logger);
  await usageFile?.load(undefined);

  const source = createPolicySource(config, logger);
  let fleet: FleetReporter | undefined;
  // Metrics: the primary counts reloads and serves the admin port, merging every worker's metrics.
  const observability = await Observability.start(config, logger, { kind: 'primary' });
  const policies = new PolicyDistributor(
    source,
    logger,
    (index, message) => {
      const w = workers.get(index);
      if (!w?.isConnected()) return false;
      w.send(message);
      return true;
    },
    () => [...ready],
    (status) => observability.reloaded(status === 'applied' ? 'loaded' : status),
  );
  observability.attachPolicyOwner(policies);
  try {
    await observability.startAdmin();
    await policies.start();
    observability.reloaded('loaded');
  } catch (err) {
    await observability.close();
    const issues = (err as { issues?: readonly PolicyIssueInfo[] }).issues;
    const message = (err as Error).message;
    logStartFailure(logger, issues ? policyFailure(policySourceName(config), { at: new Date(), message, issues }) : describeStartFailure(err, config.listen), message);
    source.close();
    return 1;
  }
  let startFailureLogged = false;
  usageFile?.start(config.usage.saveIntervalMs);

  function broadcast(message: ToWorker): void {
    for (const w of workers.values()) if (w.isConnected()) w.send(message);
  }

  cluster.setupPrimary({ execArgv: workerExecArgv(config.workerSemiSpaceMB) });
  const fork = (index: number): void => {
    const worker = cluster.fork({
      [WORKER_INDEX]: String(index),
      [WORKER_INSTANCE]: `${config.events.instanceId}-w${index}`,
      [WORKER_SPOOL]: path.join(config.events.spoolDir, `w${index}`),
    });
    workers.set(index, worker);
    // A send to a worker that is leaving (a stop while it starts) fails with EPIPE: not fatal here.
    worker.on('error', (err: Error) => logger.debug({ worker: index, err: err.message }, 'message to a worker not delivered'));
    worker.on('message', (msg: ToPrimary) => {
      if (msg.type === 'usage-merge') {
        if (worker.isConnected()) worker.send(usage.handle(msg));
        return;
      }
      // The worker asks once its IPC listener is set up (a message sent on 'online' could be lost).
      // Once stopping, the shutdown broadcast may have been such a lost message: it is sent again
      // instead of policies to start with.
      if (msg.type === 'listening') {
        if (stopping) worker.send({ type: 'shutdown', reason: stopReason });
        else for (const m of policies.messagesForNewWorker()) worker.send(m);
      } else if (msg.type === 'ready') {
        ready.add(index);
        restarts.set(index, 0);
        policies.workerReady(index, msg.revision);
        if (!announced && ready.size === config.workers) {
          announced = true;
          const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
          const http = config.http ? { http: `${config.http.listen.slice(0, config.http.listen.lastIndexOf(':'))}:${msg.httpPort}` } : {};
          logger.info({ listen: `${host}:${msg.port}`, ...http, workers: config.workers, policies: source.name, revision: policies.revision(), events: config.events.enabled }, 'verdict serving');
          fleet = createFleetReporter(config, logger, source, () => ({ revision: policies.revision(), loadedAt: policies.loadedAt(), lastFailure: policies.lastFailure() }), `${host}:${msg.port}`);
          fleet?.start();
        }
      } else if (msg.type === 'failed') {
        if (msg.policyIssues && !startFailureLogged) {
          // Every worker rejects the same set: said once, by the primary.
          startFailureLogged = true;
          logger.error({ errors: msg.policyIssues.map(formatIssue), keptRevision: null }, 'policy set rejected; not serving');
        }
        if (announced) logger.error({ worker: index, code: msg.failure.code, err: msg.message }, `worker failed to start: ${msg.failure.cause}`);
        // A reason beats "exited before it started" (should the exit have been seen first).
        else if (!startFailure || startFailure.failure.code === 'WORKER_EXITED') startFailure = { failure: msg.failure, err: msg.message, worker: index };
      } else policies.onMessage(index, msg);
    });
    worker.on('exit', (code, signal) => {
      const wasReady = ready.delete(index);
      workers.delete(index);
      policies.workerGone(index);
      if (stopping) {
        if (workers.size === 0) resolveDone(exitCode);
        return;
      }
      if (!announced && !wasReady) {
        // A worker that cannot start now will not start on retry either (bad spool dir, port in use).
        // The cause is logged last, once every worker has left (their stop lines come before it).
        startFailure ??= {
          failure: { code: 'WORKER_EXITED', cause: `worker ${index} exited (${signal ?? `code ${code}`}) before it started serving` },
          err: `exit ${signal ?? code}`,
          worker: index,
        };
        exitCode = 1;
        stop('start failed');
        return;
      }
      // Back off when a worker keeps dying, so a crash loop does not eat the machine.
      const n = (restarts.get(index) ?? 0) + 1;
      restarts.set(index, n);
      const delay = Math.min(10_000, 250 * 2 ** Math.min(n, 6));
      logger.error({ worker: index, code, signal, restartInMs: delay }, 'worker exited unexpectedly; starting a replacement');
      setTimeout(() => {
        if (!stopping) fork(index);
      }, delay).unref();
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);
  // A bundle label is always watched: reload.watch is about the directory's file events.
  if (config.reload.watch || config.policySource.url !== '') policies.watch();

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    stopReason = reason;
    // The heartbeat entry is removed before the policy source closes the connection they share.
    void (fleet?.close() ?? Promise.resolve()).finally(() => policies.close());
    logger.info({ reason }, 'verdict stopping');
    broadcast({ type: 'shutdown', reason });
    if (workers.size === 0) resolveDone(exitCode);
    // Workers get the grace period plus time to flush events; then they are killed.
    setTimeout(() => {
      for (const w of workers.values()) w.process.kill('SIGKILL');
    }, config.shutdown.graceMs + 10_000).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading policies');
    policies.reload({ kind: 'sighup' });
  });
  const code = await done;
  // After the workers' last syncs: the instance's quota counters as they stand.
  await usageFile?.stop();
  await observability.close();
  if (startFailure) logStartFailure(logger, startFailure.failure, startFailure.err, { worker: startFailure.worker });
  else if (code === 0) logger.info({ shutdown: 'graceful' }, 'verdict stopped');
  return code;
}

/** A cluster worker: serves with policies handed over by the primary. */
export async function runClusterWorker(
  baseConfig: VerdictConfig,
  baseLogger: Logger,
  makeSink: (config: VerdictConfig, logger: Logger) => Promise<ClosableSink | undefined>,
): Promise<number> {
  const index = Number(process.env[WORKER_INDEX]);
  // Per-worker chain and spool: set by the primary, and they win over flags (a shared spool would corrupt).
  const config: VerdictConfig = {
    ...baseConfig,
    events: { ...baseConfig.events, instanceId: process.env[WORKER_INSTANCE]!, spoolDir: process.env[WORKER_SPOOL]! },
  };
  const logger = baseLogger.child({ worker: index });
  const send = (m: ToPrimary) => process.send?.(m);
  // The primary logs the cause as the start's last line; the message must be out before we leave.
  const reportFailure = (err: unknown) =>
    new Promise<void>((resolve) => {
      const message = err instanceof Error ? err.message : String(err);
      if (!process.connected || !process.send) return resolve();
      process.send({ type: 'failed', message, failure: describeStartFailure(err, config.listen) } satisfies ToPrimary, undefined, {}, () => resolve());
    });
  let server: VerdictServer;
  let evidence: PolicyEvidence | undefined;
  try {
    const observability = await Observability.start(config, logger, { kind: 'worker', index });
    const sink = config.events.enabled ? await makeSink(config, logger) : undefined;
    // Each worker records the changes it applies in its own chain.
    evidence = createPolicyEvidence(config, logger, sink, observability);
    server = new VerdictServer({ config, logger, sink, managedPolicies: true, observability, beforePolicySwap: evidence?.beforeSwap, atPolicySwap: evidence?.atSwap, afterPolicyChange: evidence?.afterChange });
  } catch (err) {
    await reportFailure(err);
    if (process.connected) process.disconnect();
    return 1;
  }
  let started = false;
  return new Promise<number>((resolve) => {
    let stopRequested = false;
    const stop = (reason: string) => {
      stopRequested = true;
      const leave = (code: number) => {
        // The IPC channel would keep this process alive after the server stopped.
        if (process.connected) process.disconnect();
        resolve(code);
      };
      server.stop(reason).finally(() => evidence?.close()).then(
        () => leave(0),
        () => leave(1),
      );
    };
    const policies = new WorkerPolicies(server.store, send, logger);
    // Policy messages are handled one at a time, in the order the primary sent them.
    let queue: Promise<void> = Promise.resolve();
    process.on('message', (msg: ToWorker) => {
      if (msg.type === 'usage-merged') {
        return; // the usage counters' (usage/runtime.ts)
      } else if (msg.type === 'shutdown') {
        stop(msg.reason);
      } else if (msg.type === 'policy-load') {
        // A stop that came first wins: starting now would bind a port after the shutdown.
        if (started || stopRequested) return;
        started = true;
        queue = queue.then(async () => {
          const first = await policies.load(msg);
          const r = first.result;
          if (r.status === 'rejected') {
            // Sent before leaving, so the primary can log the issues and the cause.
            await new Promise<void>((resolve) => {
              if (!process.connected || !process.send) return resolve();
              const failure = policyFailure(policySourceName(config), { at: first.at, message: r.message, issues: r.issues });
              process.send({ type: 'failed', message: r.message, failure, policyIssues: r.issues } satisfies ToPrimary, undefined, {}, () => resolve());
            });
            stop('start failed');
            return;
          }
          if (stopRequested) return;
          server.start().then(
            (port) => send({ type: 'ready', port, httpPort: server.httpPort, revision: first.revision }),
            // A start cut short by a stop is not a failure: the stop is already under way.
            (err: unknown) => (stopRequested ? undefined : void reportFailure(err).then(() => stop('start failed'))),
          );
        });
      } else {
        queue = queue.then(() => policies.handle(msg)).catch((err: unknown) => logger.error({ err: (err as Error).message }, 'policy message from the primary failed'));
      }
    });
    // The primary is gone (killed): finish what is in flight and leave.
    process.on('disconnect', () => stop('primary exited'));
    // A terminal's Ctrl-C reaches every process of the group: the primary coordinates the stop.
    process.on('SIGINT', () => undefined);
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => undefined);
    send({ type: 'listening' });
  });
}
