import type { ServiceDefinition } from '@grpc/grpc-js';
import { ProtobufReader, WIRE_LENGTH_DELIMITED } from './wire/protobuf-reader.js';

/**
 * Strict decoders for the grpc.health.v1 requests. protobufjs reads a truncated length or a field
 * with an impossible wire type as an empty message, so such bytes would be answered as a valid
 * request for the whole server (""); these reject them instead (WireFormatError), and the codec
 * guard turns that into INVALID_ARGUMENT.
 */
export function decodeHealthCheckRequest(bytes: Buffer): { service: string } {
  const r = new ProtobufReader(bytes);
  let service = '';
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === ((1 << 3) | WIRE_LENGTH_DELIMITED)) service = r.string();
    else r.skip(tag);
  }
  return { service };
}

/** HealthListRequest has no fields; unknown ones are skipped, malformed ones rejected. */
export function decodeEmptyRequest(bytes: Buffer): Record<string, never> {
  const r = new ProtobufReader(bytes);
  while (r.pos < r.end) r.skip(r.tag());
  return {};
}

/** The health service definition with the strict request decoders. */
export function withStrictHealthDecoding(definition: ServiceDefinition): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const requestType = (method as { requestType?: { type?: { name?: string } } }).requestType?.type?.name;
    const decode = requestType === 'HealthCheckRequest' ? decodeHealthCheckRequest : requestType === 'HealthListRequest' ? decodeEmptyRequest : undefined;
    out[name] = decode ? { ...method, requestDeserialize: decode } : method;
  }
  return out as ServiceDefinition;
}
