import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { ProtoCheckBatchRequest, ProtoCheckBatchResponse, ProtoCheckRequest, ProtoCheckResponse } from '../translate.js';
import { decodeCheckBatchRequest, decodeCheckRequest } from './verdict-requests.js';
import { encodeCheckBatchResponse, encodeCheckResponse } from './verdict-responses.js';

/**
 * The server's verdict.v1.Authorization definition with Check and CheckBatch on the hand-written
 * wire codec (protobufjs's generic Struct decoding was most of their per-call CPU). Everything else
 * about the methods (path, streaming flags, the client-side serializers) is proto-loader's, and
 * GetPolicySet stays on proto-loader entirely. codec-guard still wraps the request decoders.
 */
export function withWireCodec(definition: ServiceDefinition): ServiceDefinition {
  const check = definition.Check as MethodDefinition<ProtoCheckRequest, ProtoCheckResponse> | undefined;
  const batch = definition.CheckBatch as MethodDefinition<ProtoCheckBatchRequest, ProtoCheckBatchResponse> | undefined;
  if (!check || !batch) throw new Error('withWireCodec: the definition has no Check/CheckBatch (not verdict.v1.Authorization?)');
  const wireCheck: MethodDefinition<ProtoCheckRequest, ProtoCheckResponse> = { ...check, requestDeserialize: decodeCheckRequest, responseSerialize: encodeCheckResponse };
  const wireBatch: MethodDefinition<ProtoCheckBatchRequest, ProtoCheckBatchResponse> = { ...batch, requestDeserialize: decodeCheckBatchRequest, responseSerialize: encodeCheckBatchResponse };
  return { ...definition, Check: wireCheck, CheckBatch: wireBatch };
}
