import { ConfigError, loadConfig } from '../../config/load.js';
import { createLogger } from '../../server/logger.js';
import { VerdictServer, type ClosableSink } from '../../server/app.js';
import { checkEdgeFiles } from '../../server/edge.js';
import { isClusterWorker, runClusterPrimary, runClusterWorker } from '../../server/cluster.js';
import { parseArgs, stringFlag } from '../args.js';
import type { CliOutput } from '../output.js';

export const serveUsage =
  'verdict serve [--config FILE] [--policies DIR] [--listen HOST:PORT] [--http HOST:PORT] [--workers N] [--routes FILE] [--nats URL] [--no-events] [--audit-required] [--log-level LEVEL]   run the decision service (gRPC; AuthZEN over HTTP with --http)';

/** Builds the decision sink from config; the NATS publisher is loaded only when events are on. */
export type SinkFactory = (config: import('../../config/schema.js').VerdictConfig, logger: import('pino').Logger) => Promise<ClosableSink | undefined>;

let sinkFactory: SinkFactory = async () => undefined;
export function setSinkFactory(factory: SinkFactory): void {
  sinkFactory = factory;
}

export async function serveCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['no-events', 'audit-required', 'help'], ['config', 'policies', 'listen', 'nats', 'log-level', 'spool-dir', 'instance-id', 'workers', 'routes', 'http']);
  if (args.flags.has('help')) {
    io.out(serveUsage);
    return 0;
  }
  let config;
  try {
    config = loadConfig({
      configFile: stringFlag(args, 'config'),
      policies: stringFlag(args, 'policies'),
      listen: stringFlag(args, 'listen'),
      natsUrl: stringFlag(args, 'nats'),
      noEvents: args.flags.has('no-events'),
      required: args.flags.has('audit-required'),
      logLevel: stringFlag(args, 'log-level'),
      spoolDir: stringFlag(args, 'spool-dir'),
      instanceId: stringFlag(args, 'instance-id'),
      workers: stringFlag(args, 'workers'),
      routes: stringFlag(args, 'routes'),
      http: stringFlag(args, 'http'),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      return 2;
    }
    throw err;
  }
  const edgeProblems = checkEdgeFiles(config);
  if (edgeProblems.length > 0) {
    io.err(new ConfigError(edgeProblems).message);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  if (isClusterWorker()) return runClusterWorker(config, logger, sinkFactory);
  if (config.workers > 1) return runClusterPrimary(config, logger);
  const sink = config.events.enabled ? await sinkFactory(config, logger) : undefined;
  const server = new VerdictServer({ config, logger, sink });
  try {
    await server.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'verdict failed to start');
    await server.stop('start failed').catch(() => undefined);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      server.stop(signal).then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'error during shutdown');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      logger.info('SIGHUP: reloading policies');
      void server.reload();
    });
  });
}
