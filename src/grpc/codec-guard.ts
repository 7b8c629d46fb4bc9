import { status, type ServiceDefinition } from '@grpc/grpc-js';

export const REJECTED_MESSAGE = Symbol('rejectedMessage');

/** Stand-in for a request that failed size or decoding checks; the handler answers INVALID_ARGUMENT. */
export interface RejectedMessage {
  readonly [REJECTED_MESSAGE]: string;
}

export function rejectionOf(msg: unknown): string | undefined {
  return msg !== null && typeof msg === 'object' && REJECTED_MESSAGE in msg ? (msg as RejectedMessage)[REJECTED_MESSAGE] : undefined;
}

/**
 * Wraps each method's request decoder so an oversized or malformed message reaches the handler as
 * a marker, which is answered with INVALID_ARGUMENT naming the limit (grpc-js would otherwise answer
 * RESOURCE_EXHAUSTED or INTERNAL with a generic text).
 */
export function guardRequestDecoding(definition: ServiceDefinition, maxMessageBytes: number): ServiceDefinition {
  const guarded: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        if (bytes.length > maxMessageBytes) {
          return { [REJECTED_MESSAGE]: `request: message of ${bytes.length} bytes exceeds the limit of ${maxMessageBytes} bytes (limits.maxMessageBytes)` };
        }
        try {
          return decode(bytes);
        } catch (err) {
          return { [REJECTED_MESSAGE]: `request: not a valid ${name} message (${(err as Error).message})` };
        }
      },
    };
  }
  return guarded as ServiceDefinition;
}

type Handler = (call: { request?: unknown; emit(event: string, ...args: unknown[]): boolean }, callback?: (err: unknown) => void) => void;

/**
 * A service that does not know about rejection markers (the standard health service): decoding is
 * guarded as above, and its unary and server-streaming handlers answer a rejected request with
 * INVALID_ARGUMENT themselves instead of seeing the marker. Request-streaming methods are left
 * as they are (a marker would reach code that does not expect it).
 */
export function guardService(
  definition: ServiceDefinition,
  implementation: Record<string, unknown>,
  maxMessageBytes: number,
): { definition: ServiceDefinition; implementation: Record<string, unknown> } {
  const guardedDefinition: Record<string, unknown> = {};
  const guardedImplementation: Record<string, unknown> = { ...implementation };
  const decoding = guardRequestDecoding(definition, maxMessageBytes);
  for (const [name, method] of Object.entries(definition)) {
    if (method.requestStream) {
      guardedDefinition[name] = method;
      continue;
    }
    guardedDefinition[name] = decoding[name];
    const key = typeof implementation[name] === 'function' ? name : (method as { originalName?: string }).originalName;
    const handler = key !== undefined ? implementation[key] : undefined;
    if (typeof handler !== 'function') continue;
    const invalid = (details: string) => ({ code: status.INVALID_ARGUMENT, details, name: 'Error', message: details });
    guardedImplementation[key!] = method.responseStream
      ? ((call) => {
          const rejected = rejectionOf(call.request);
          if (rejected) call.emit('error', invalid(rejected));
          else (handler as Handler).call(implementation, call);
        }) satisfies Handler
      : ((call, callback) => {
          const rejected = rejectionOf(call.request);
          if (rejected) callback!(invalid(rejected));
          else (handler as Handler).call(implementation, call, callback);
        }) satisfies Handler;
  }
  return { definition: guardedDefinition as ServiceDefinition, implementation: guardedImplementation };
}
