import type { Metadata } from '@grpc/grpc-js';
import type { CallHooks, TraceParent } from '../service/decision-hooks.js';

/** The caller's W3C trace context from a gRPC call's metadata (traceparent, tracestate), when tracing is on. */
export function traceParentFromMetadata(hooks: CallHooks, metadata: Metadata): TraceParent | undefined {
  return hooks.tracer?.parentFrom((name) => {
    const v = metadata.get(name)[0];
    return typeof v === 'string' ? v : undefined;
  });
}
