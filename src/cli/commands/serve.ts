import { ConfigError, loadConfig } from '../../config/load.js';
import type { VerdictConfig } from '../../config/schema.js';
import { routeLibraryLogs } from '../../server/library-logs.js';
import { createLogger, type Logger } from '../../server/logger.js';
import { describeStartFailure, logStartFailure, policyFailure } from '../../server/start-failure.js';
import { VerdictServer } from '../../server/app.js';
import type { ClosableSink } from '../../service/decision-trail.js';
import { checkEdgeFiles } from '../../server/edge.js';
import { policySourceName } from '../../server/policy-source.js';
import { isClusterWorker, runClusterPrimary, runClusterWorker } from '../../server/cluster.js';
import { applyHeapGrowth } from '../../server/v8-memory.js';
import { Observability } from '../../observability/observability.js';
import { createPolicyEvidence } from '../../evidence/setup.js';
import type { PolicyEvidence } from '../../evidence/policy-evidence.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';

const NO_EVENTS = 'with --no-events no decision is published, so it would have no effect';

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'run the gRPC decision service (and Envoy ext_authz with --routes, AuthZEN over HTTP with --http)',
  details: [
    'Each setting comes from the first of: a flag, a VERDICT_* environment variable, the --config\n' +
      'file, the default (docs/operations.md). Logs are JSON lines on stdout.',
  ],
  flags: [
    { name: 'config', type: 'string', value: 'FILE', description: 'YAML configuration file', defaultNote: 'VERDICT_CONFIG, else none' },
    { name: 'policies', type: 'string', value: 'DIR', description: 'policy directory, watched and hot-reloaded; sets policies', defaultNote: 'policies' },
    { name: 'policy-source', type: 'string', value: 'URL', description: 'serve the bundle a label names in NATS instead of a directory: nats://HOST:PORT/LABEL; sets policySource.url', defaultNote: 'the directory' },
    { name: 'listen', type: 'string', value: 'HOST:PORT', description: 'address to serve on; port 0 picks a free port; sets listen', defaultNote: '127.0.0.1:50051' },
    { name: 'http', type: 'string', value: 'HOST:PORT', description: 'also serve the AuthZEN API over HTTP on this address; sets http.listen', defaultNote: 'off' },
    { name: 'workers', type: 'string', value: 'N', description: 'processes sharing the port; sets workers', defaultNote: 'one per CPU' },
    { name: 'routes', type: 'string', value: 'FILE', description: 'serve Envoy ext_authz with this routes file; sets gateway.routesFile' },
    { name: 'nats', type: 'string', value: 'URL', description: 'NATS server for the decision stream; sets events.natsUrl', defaultNote: 'nats://127.0.0.1:4222' },
    { name: 'no-events', type: 'boolean', description: 'do not publish decisions; sets events.enabled: false' },
    { name: 'audit-required', type: 'boolean', description: 'answer only once the decision is on disk; sets events.required: true' },
    { name: 'spool-dir', type: 'string', value: 'DIR', description: 'the event spool; workers use DIR/w<N>; sets events.spoolDir', defaultNote: 'var/spool' },
    { name: 'instance-id', type: 'string', value: 'ID', description: "names this instance's hash chain (events.instanceId)", defaultNote: '<hostname>-<pid>' },
    { name: 'log-level', type: 'string', value: 'LEVEL', description: 'fatal, error, warn, info, debug, trace or silent; sets logLevel', defaultNote: 'info' },
    { name: 'admin', type: 'string', value: 'HOST:PORT', description: 'serve /metrics (Prometheus), /healthz and /readyz over HTTP; sets admin.listen', defaultNote: 'off' },
  ],
  conflicts: [
    { flags: ['policies', 'policy-source'], why: 'policies come from a directory or from a bundle label, not both' },
    { flags: ['no-events', 'audit-required'], why: NO_EVENTS },
    { flags: ['no-events', 'nats'], why: NO_EVENTS },
    { flags: ['no-events', 'spool-dir'], why: NO_EVENTS },
    { flags: ['no-events', 'instance-id'], why: NO_EVENTS },
  ],
  examples: [
    { what: 'serve the example policies on the default address, publishing to a local NATS', command: 'verdict serve --policies policies' },
    { what: 'accept remote callers, two processes, no decision stream', command: 'verdict serve --policies policies --listen 0.0.0.0:50051 --workers 2 --no-events' },
    { what: 'also answer AuthZEN requests over HTTP on port 8080', command: 'verdict serve --policies policies --http 127.0.0.1:8080' },
    { what: 'serve the bundle the label production names, switching when it changes (verdict policies push)', command: 'verdict serve --policy-source nats://127.0.0.1:4222/production --listen 127.0.0.1:50052' },
    { what: 'everything from a configuration file', command: 'verdict serve --config /etc/verdict/verdict.yaml' },
    { what: 'Prometheus metrics and HTTP probes on port 9464 (tracing: OTEL_TRACES_EXPORTER=otlp, docs/operations.md)', command: 'verdict serve --policies policies --admin 127.0.0.1:9464' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'stopped by SIGTERM or SIGINT' },
    { code: EXIT.FAILURE, meaning: 'could not start (the last log line names the cause), or an error during shutdown' },
    { code: EXIT.USAGE, meaning: 'usage error or invalid configuration (printed on stderr)' },
  ],
  run: runServe,
};

/** Builds the decision sink from config; the NATS publisher is loaded only when events are on. */
export type SinkFactory = (config: import('../../config/schema.js').VerdictConfig, logger: import('pino').Logger) => Promise<ClosableSink | undefined>;

let sinkFactory: SinkFactory = async () => undefined;
export function setSinkFactory(factory: SinkFactory): void {
  sinkFactory = factory;
}

async function runServe(args: ParsedArgs, io: CliOutput): Promise<number> {
  let config;
  try {
    config = loadConfig({
      configFile: args.string('config'),
      policies: args.string('policies'),
      listen: args.string('listen'),
      natsUrl: args.string('nats'),
      noEvents: args.flag('no-events'),
      required: args.flag('audit-required'),
      logLevel: args.string('log-level'),
      spoolDir: args.string('spool-dir'),
      instanceId: args.string('instance-id'),
      workers: args.string('workers'),
      routes: args.string('routes'),
      http: args.string('http'),
      policySource: args.string('policy-source'),
      admin: args.string('admin'),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      return EXIT.USAGE;
    }
    throw err;
  }
  const edgeProblems = checkEdgeFiles(config);
  if (edgeProblems.length > 0) {
    io.err(new ConfigError(edgeProblems).message);
    return EXIT.USAGE;
  }
  const logger = createLogger(config.logLevel);
  routeLibraryLogs(logger, config.logLevel);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, `verdict crashed: ${err.message}`);
    process.exit(EXIT.FAILURE);
  });
  // Before the policies load: every process (a single one, the primary, each worker) sets its own.
  logger.debug({ heapGrowth: applyHeapGrowth(config.heapGrowthPercent) }, 'V8 old-generation growth before a full collection');
  if (isClusterWorker()) return runClusterWorker(config, logger, sinkFactory);
  if (config.workers > 1) return runClusterPrimary(config, logger);
  return runSingleProcess(config, logger);
}

async function runSingleProcess(config: VerdictConfig, logger: Logger): Promise<number> {
  let server: VerdictServer | undefined;
  let evidence: PolicyEvidence | undefined;
  try {
    const observability = await Observability.start(config, logger, { kind: 'single' });
    const sink = config.events.enabled ? await sinkFactory(config, logger) : undefined;
    // Policy changes go into the decision chain (and their text into NATS) before they decide.
    evidence = createPolicyEvidence(config, logger, sink, observability);
    server = new VerdictServer({ config, logger, sink, observability, beforePolicySwap: evidence?.beforeSwap, atPolicySwap: evidence?.atSwap, afterPolicyChange: evidence?.afterChange });
    await server.start();
  } catch (err) {
    const failed = server?.store.current() === undefined ? server?.store.lastFailure() : undefined;
    const failure = failed ? policyFailure(policySourceName(config), failed) : describeStartFailure(err, config.listen);
    // Stop first (its lines come before), so the cause is the last line a supervisor shows.
    await server?.stop('start failed').catch(() => undefined);
    await evidence?.close();
    logStartFailure(logger, failure, (err as Error).message);
    return EXIT.FAILURE;
  }
  const running = server;
  const stopEvidence = evidence;
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      running.stop(signal).finally(() => stopEvidence?.close()).then(
        () => resolve(EXIT.OK),
        (err: unknown) => {
          logger.error({ err }, 'error during shutdown');
          resolve(EXIT.FAILURE);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      logger.info('SIGHUP: reloading policies');
      void running.reload();
    });
  });
}
