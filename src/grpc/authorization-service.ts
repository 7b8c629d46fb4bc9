import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { decideWithToken, tokenBatchRequests, tokenCheckRequest } from '../auth/request-token.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { ServiceLimits } from '../config/schema.js';
import { InvalidRequestError } from '../engine/input.js';
import type { Caller, CheckRequest } from '../engine/request.js';
import type { DecisionService } from '../service/decision-service.js';
import { NotReadyError } from '../service/decision-service.js';
import type { LivePolicy } from '../service/live-policy.js';
import { rejectionOf } from './codec-guard.js';
import { traceParentFromMetadata } from './trace-context.js';
import {
  toBatchRequests,
  toCheckRequest,
  toCheckResponse,
  type ProtoCheckBatchRequest,
  type ProtoCheckBatchResponse,
  type ProtoCheckRequest,
  type ProtoCheckResponse,
} from './translate.js';

/** Any method's callback, for answering with an error only. */
type ErrorCallback = sendUnaryData<never>;

export interface AuthorizationDeps {
  readonly decisions: DecisionService;
  readonly store: LivePolicy;
  readonly limits: ServiceLimits;
  /** Verifies subject tokens (`token`); absent = tokens are not configured and are refused. */
  readonly tokens?: TokenVerifier | undefined;
  /** The caller proven by the transport (mTLS), recorded in events and visible to conditions. */
  readonly callerOf?: (call: object) => Caller | undefined;
  readonly onUnexpectedError: (err: unknown, method: string) => void;
}

function fail(callback: ErrorCallback, code: status, details: string): void {
  callback({ code, details, name: 'Error', message: details });
}

function handleError(err: unknown, callback: ErrorCallback, deps: AuthorizationDeps, method: string): void {
  if (err instanceof InvalidRequestError) return fail(callback, status.INVALID_ARGUMENT, err.message);
  if (err instanceof NotReadyError) return fail(callback, status.UNAVAILABLE, 'no policy set is loaded yet; retry shortly');
  deps.onUnexpectedError(err, method);
  fail(callback, status.INTERNAL, 'internal error while deciding; the request was not allowed');
}

function withCaller(requests: CheckRequest[], caller: Caller | undefined): CheckRequest[] {
  return caller ? requests.map((r) => ({ ...r, caller })) : requests;
}

/** verdict.v1.Authorization: a thin adapter from protobuf messages to the DecisionService. */
export function authorizationService(deps: AuthorizationDeps): UntypedServiceImplementation {
  return {
    Check(call: ServerUnaryCall<ProtoCheckRequest, ProtoCheckResponse>, callback: sendUnaryData<ProtoCheckResponse>) {
      const receivedAt = deps.decisions.timed ? performance.now() : 0;
      const msg = call.request;
      const rejected = rejectionOf(msg);
      if (rejected) return fail(callback, status.INVALID_ARGUMENT, rejected);
      let request: CheckRequest;
      try {
        request = msg.token ? tokenCheckRequest(msg, deps.limits, deps.tokens) : toCheckRequest(msg, deps.limits);
      } catch (err) {
        return handleError(err, callback, deps, 'Check');
      }
      const caller = deps.callerOf?.(call);
      if (caller) request = { ...request, caller };
      const options = { explain: msg.explain === true, requestId: msg.requestId ?? '', source: 'check', receivedAt, trace: traceParentFromMetadata(deps.decisions, call.metadata) };
      const decided = msg.token ? decideWithToken(deps.decisions, deps.tokens!, msg.token, [request], options).then((o) => o[0]!) : deps.decisions.check(request, options);
      decided.then(
        (outcome) => callback(null, toCheckResponse(outcome.decisionId, outcome.decision)),
        (err: unknown) => handleError(err, callback, deps, 'Check'),
      );
    },

    CheckBatch(call: ServerUnaryCall<ProtoCheckBatchRequest, ProtoCheckBatchResponse>, callback: sendUnaryData<ProtoCheckBatchResponse>) {
      const receivedAt = deps.decisions.timed ? performance.now() : 0;
      const msg = call.request;
      const rejected = rejectionOf(msg);
      if (rejected) return fail(callback, status.INVALID_ARGUMENT, rejected);
      let requests: CheckRequest[];
      try {
        requests = msg.token ? tokenBatchRequests(msg, deps.limits, deps.tokens) : toBatchRequests(msg, deps.limits);
      } catch (err) {
        return handleError(err, callback, deps, 'CheckBatch');
      }
      requests = withCaller(requests, deps.callerOf?.(call));
      const options = { explain: msg.explain === true, requestId: msg.requestId ?? '', source: 'check_batch', receivedAt, trace: traceParentFromMetadata(deps.decisions, call.metadata) };
      (msg.token ? decideWithToken(deps.decisions, deps.tokens!, msg.token, requests, options) : deps.decisions.checkMany(requests, options)).then(
        (outcomes) =>
          callback(null, {
            results: outcomes.map((o) => toCheckResponse(o.decisionId, o.decision)),
            revision: outcomes[0]?.decision.revision ?? '',
          }),
        (err: unknown) => handleError(err, callback, deps, 'CheckBatch'),
      );
    },

    GetPolicySet(call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<Record<string, unknown>>) {
      const rejected = rejectionOf(call.request);
      if (rejected) return fail(callback, status.INVALID_ARGUMENT, rejected);
      const live = deps.store.current();
      const failure = deps.store.lastFailure();
      const timestamp = (d: Date) => ({ seconds: String(Math.floor(d.getTime() / 1000)), nanos: (d.getTime() % 1000) * 1e6 });
      const response: Record<string, unknown> = { source: deps.store.sourceName };
      if (live) {
        Object.assign(response, {
          revision: live.set.revision,
          loadedAt: timestamp(live.loadedAt),
          policies: live.set.policies,
          resourceTypes: live.set.resourceTypes,
          ruleCount: live.set.ruleCount,
        });
      }
      if (failure) response.lastFailure = { at: timestamp(failure.at), message: failure.message, issues: failure.issues };
      callback(null, response);
    },
  };
}
