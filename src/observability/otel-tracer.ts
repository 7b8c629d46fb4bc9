/**
 * The DecisionTracer on OpenTelemetry: continues the caller's W3C trace context and makes a SERVER
 * span per call, named after the API, with the decision's outcome as attributes; a call with several
 * decisions (CheckBatch, AuthZEN evaluations) gets one child span per decision. Spans carry the
 * outcome, the rule, the revision, the resource type and the action, never ids or attributes of the
 * subject or resource. Loaded only when tracing is on.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { CallTrace, DecisionTracer, TraceParent } from '../service/decision-hooks.js';
import type { DecisionRecord } from '../service/decision-record.js';
import type { CheckOutcome } from '../service/decision-service.js';

/** Span names by API: RPC spans as `package.Service/Method` (OpenTelemetry's RPC conventions), HTTP as `METHOD route`. */
const SPAN_NAMES: Readonly<Record<string, { name: string; rpc?: [service: string, method: string] }>> = {
  check: { name: 'verdict.v1.Authorization/Check', rpc: ['verdict.v1.Authorization', 'Check'] },
  check_batch: { name: 'verdict.v1.Authorization/CheckBatch', rpc: ['verdict.v1.Authorization', 'CheckBatch'] },
  ext_authz: { name: 'envoy.service.auth.v3.Authorization/Check', rpc: ['envoy.service.auth.v3.Authorization', 'Check'] },
  authzen_evaluation: { name: 'POST /access/v1/evaluation' },
  authzen_evaluations: { name: 'POST /access/v1/evaluations' },
};

interface Parent extends TraceParent {
  readonly context: Context;
}

const HEADERS = ['traceparent', 'tracestate'];
const getter: TextMapGetter<(name: string) => string | undefined> = {
  get: (header, key) => header(key),
  keys: () => HEADERS,
};

export class OtelDecisionTracer implements DecisionTracer {
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(
    private readonly tracer: Tracer,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  parentFrom(header: (name: string) => string | undefined): TraceParent | undefined {
    if (header('traceparent') === undefined) return undefined;
    const context = this.propagator.extract(ROOT_CONTEXT, header, getter);
    // A malformed traceparent yields no span context: the call then starts a new trace.
    if (!trace.getSpanContext(context)) return undefined;
    const parent: Parent = { traceParent: true, context };
    return parent;
  }

  startCall(source: string, parent: TraceParent | undefined, startTime: number | undefined): CallTrace {
    const named = SPAN_NAMES[source];
    const attributes: Attributes = { 'verdict.source': source };
    if (named?.rpc) {
      attributes['rpc.system'] = 'grpc';
      attributes['rpc.service'] = named.rpc[0];
      attributes['rpc.method'] = named.rpc[1];
    }
    const span = this.tracer.startSpan(
      named?.name ?? `verdict ${source}`,
      { kind: SpanKind.SERVER, attributes, ...(startTime ? { startTime } : {}) },
      parent ? (parent as Parent).context : ROOT_CONTEXT,
    );
    return new OtelCallTrace(span, this.tracer);
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

class OtelCallTrace implements CallTrace {
  readonly traceId: string;

  constructor(
    private readonly span: Span,
    private readonly tracer: Tracer,
  ) {
    this.traceId = span.spanContext().traceId;
  }

  answered(records: readonly DecisionRecord[], outcomes: readonly CheckOutcome[]): void {
    const span = this.span;
    if (span.isRecording()) {
      if (outcomes.length === 1) {
        describe(span, records[0]!, outcomes[0]!);
      } else {
        span.setAttribute('verdict.decisions', outcomes.length);
        const parent = trace.setSpan(ROOT_CONTEXT, span);
        const now = performance.now();
        for (let i = 0; i < outcomes.length; i++) {
          // Each decision's span shows its engine time, ending as the call answers.
          const record = records[i]!;
          const child = this.tracer.startSpan('verdict decision', { kind: SpanKind.INTERNAL, startTime: now - record.evaluationNs / 1e6 }, parent);
          describe(child, record, outcomes[i]!);
          child.end(now);
        }
      }
    }
    span.end();
  }
}

function describe(span: Span, record: DecisionRecord, outcome: CheckOutcome): void {
  const d = outcome.decision;
  span.setAttributes({
    'verdict.decision.id': outcome.decisionId,
    'verdict.decision.effect': d.effect,
    'verdict.decision.reason': d.reason,
    'verdict.decision.policy': d.policy,
    'verdict.decision.rule': d.rule,
    'verdict.policy.revision': d.revision,
    'verdict.resource.type': record.request.resource.type,
    'verdict.action': record.request.action,
    'verdict.evaluation.duration_us': Math.round(record.evaluationNs / 10) / 100,
  });
  if (d.reason === 'INTERNAL_ERROR') span.setStatus({ code: SpanStatusCode.ERROR, message: d.errors[0]?.message ?? 'internal error while deciding' });
}
