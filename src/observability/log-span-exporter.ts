/**
 * OTEL_TRACES_EXPORTER=console: each finished span as one JSON log line (`msg: "span"`), so traces
 * can be looked at without a collector and every line on stdout stays JSON. (OpenTelemetry's own
 * ConsoleSpanExporter prints multi-line objects.)
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../server/logger.js';

const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];

export class LogSpanExporter implements SpanExporter {
  constructor(private readonly logger: Logger) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const s of spans) {
      const ctx = s.spanContext();
      this.logger.info(
        {
          component: 'opentelemetry',
          traceId: ctx.traceId,
          spanId: ctx.spanId,
          parentSpanId: s.parentSpanContext?.spanId ?? '',
          name: s.name,
          kind: KINDS[s.kind] ?? String(s.kind),
          durationMs: Math.round((s.duration[0] * 1e3 + s.duration[1] / 1e6) * 1000) / 1000,
          status: s.status.code === 2 ? 'error' : 'ok',
          attributes: s.attributes,
        },
        'span',
      );
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  async shutdown(): Promise<void> {}
}
