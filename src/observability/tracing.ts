import type { VerdictConfig } from '../config/schema.js';
import type { Logger } from '../server/logger.js';
import type { DecisionTracer } from '../service/decision-hooks.js';

/**
 * The decision tracer when tracing is on (OTEL_TRACES_EXPORTER, see config/observability.ts), else
 * undefined. The SDK is imported here, on demand: with tracing off no OpenTelemetry SDK module is
 * loaded and the service does no tracing work at all.
 */
export async function startTracing(config: VerdictConfig, logger: Logger, version: string): Promise<DecisionTracer | undefined> {
  if (!config.tracing) return undefined;
  const { startOtelTracing } = await import('./otel-sdk.js');
  return startOtelTracing(config.tracing, logger, { version, instanceId: config.events.instanceId });
}
