import type { ServiceDefinition } from '@grpc/grpc-js';

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
