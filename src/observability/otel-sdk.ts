/**
 * The OpenTelemetry SDK, set up from the standard environment variables (the exporter reads
 * OTEL_EXPORTER_OTLP_*, the provider the sampler, the batch processor OTEL_BSP_*, the resource
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES). Imported only when tracing is on
 * (tracing.ts), so a server without tracing never loads it. The provider is not registered
 * globally: Verdict's spans go to its own tracer only.
 */
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TracingSettings } from '../config/schema.js';
import type { Logger } from '../server/logger.js';
import { LogSpanExporter } from './log-span-exporter.js';
import { OtelDecisionTracer } from './otel-tracer.js';

/** At most one OpenTelemetry error line per interval (an unreachable collector fails every export). */
const DIAG_INTERVAL_MS = 60_000;

export interface TracingIdentity {
  readonly version: string;
  /** service.instance.id: the instance id of the decision stream (with -w<N> in a worker). */
  readonly instanceId: string;
}

export function startOtelTracing(settings: TracingSettings, logger: Logger, identity: TracingIdentity): OtelDecisionTracer {
  routeDiagnostics(logger);
  const exporters: SpanExporter[] = settings.exporters.map((e) =>
    e === 'console' ? new LogSpanExporter(logger) : settings.protocol === 'http/json' ? new OtlpHttpJsonExporter() : new OtlpProtoExporter(),
  );
  // Verdict's defaults first; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over them.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'verdict', [ATTR_SERVICE_VERSION]: identity.version, 'service.instance.id': identity.instanceId }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: exporters.map((e) => new BatchSpanProcessor(e)) });
  logger.info({ exporters: settings.exporters, protocol: settings.protocol, sampler: settings.sampler, service: resource.attributes[ATTR_SERVICE_NAME] }, 'tracing on (OpenTelemetry)');
  return new OtelDecisionTracer(provider.getTracer('verdict', identity.version), () => provider.shutdown());
}

let routed = false;

function routeDiagnostics(logger: Logger): void {
  if (routed) return;
  routed = true;
  let last = 0;
  let suppressed = 0;
  const log = (level: 'error' | 'warn') => (message: string, ...args: unknown[]) => {
    const now = Date.now();
    if (now - last < DIAG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    last = now;
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    logger[level]({ component: 'opentelemetry', ...(suppressed ? { suppressed } : {}), ...(detail ? { detail: detail.slice(0, 500) } : {}) }, message);
    suppressed = 0;
  };
  const none = () => undefined;
  diag.setLogger({ error: log('error'), warn: log('warn'), info: none, debug: none, verbose: none }, DiagLogLevel.WARN);
}
