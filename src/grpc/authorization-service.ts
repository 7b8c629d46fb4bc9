import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { decideWithToken } from '../auth/request-token.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { ServiceLimits } from '../config/schema.js';
import { InvalidRequestError } from '../engine/input.js';
import type { Caller, CheckRequest } from '../engine/request.js';
import type { DecisionService } from '../service/decision-service.js';
import { NotReadyError } from '../service/decision-service.js';
import type { LivePolicy } from '../service/live-policy.js';
import type { TrailStatusView } from '../service/decision-trail.js';
import { rejectionOf } from './codec-guard.js';
import { traceParentFromMetadata } from './trace-context.js';
import {
  toBatchRequests,
  toCheckRequest,
  toCheckResponse,
  toTokenBatchRequests,
  toTokenCheckRequest,
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
  /** The decision trail's state for GetPolicySet (TrailStatus); absent = not reported. */
  readonly trail?: () => Promise<TrailStatusView>;
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

/**
 * The caller has given up on this call: grpc-js marks it cancelled (client cancel, RST_STREAM, or
 * its deadline timer), but a deadline that passed while this turn was busy deciding is only seen
 * by comparing the clock.
 */
export function abandonedCall(call: ServerUnaryCall<unknown, unknown>): () => boolean {
  return () => {
    if (call.cancelled) return true;
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(ms) && ms <= Date.now();
  };
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
        request = msg.token ? toTokenCheckRequest(msg, deps.limits, deps.tokens) : toCheckRequest(msg, deps.limits);
      } catch (err) {
        return handleError(err, callback, deps, 'Check');
      }
      const caller = deps.callerOf?.(call);
      if (caller) request = { ...request, caller };
      const options = { explain: msg.explain === true, requestId: msg.requestId ?? '', source: 'check', abandoned: abandonedCall(call), receivedAt, trace: traceParentFromMetadata(deps.decisions, call.metadata) };
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
        requests = msg.token ? toTokenBatchRequests(msg, deps.limits, deps.tokens) : toBatchRequests(msg, deps.limits);
      } catch (err) {
        return handleError(err, callback, deps, 'CheckBatch');
      }
      requests = withCaller(requests, deps.callerOf?.(call));
      const options = { explain: msg.explain === true, requestId: msg.requestId ?? '', source: 'check_batch', abandoned: abandonedCall(call), receivedAt, trace: traceParentFromMetadata(deps.decisions, call.metadata) };
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
      if (!deps.trail) return callback(null, response);
      deps.trail().then(
        (t) => {
          const { lastStreamIncident, ...rest } = t;
          response.trail = { ...rest, ...(lastStreamIncident ? { lastStreamIncident: { ...lastStreamIncident, at: timestamp(lastStreamIncident.at) } } : {}) };
          callback(null, response);
        },
        (err: unknown) => handleError(err, callback, deps, 'GetPolicySet'),
      );
    },
  };
}
