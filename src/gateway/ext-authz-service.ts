import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { bearerToken, type TokenVerifier } from '../auth/tokens.js';
import type { ServiceLimits } from '../config/schema.js';
import type { Caller, CheckRequest, Resource, Subject } from '../engine/request.js';
import { abandonedCall } from '../grpc/authorization-service.js';
import { rejectionOf } from '../grpc/codec-guard.js';
import { traceParentFromMetadata } from '../grpc/trace-context.js';
import { traceParentFromHeaders, type TraceParent } from '../service/decision-hooks.js';
import { NotReadyError, type DecisionService } from '../service/decision-service.js';
import { httpContext, httpView, type EnvoyCheckRequest, type HttpView } from './http-request.js';
import { decidingLimit, type Decision } from '../engine/decision.js';
import { attributesToStruct } from '../grpc/struct.js';
import { rateLimitHeaders, retryAfter } from './ratelimit-headers.js';
import { badRequestResponse, forbiddenResponse, okResponse, tooManyRequestsResponse, unauthorizedResponse, type Header } from './responses.js';
import { renderTarget, routeRequest } from './route-table.js';
import type { GatewaySettings } from './routes-file.js';
import { renderTemplate } from './template.js';

export const EXT_AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
export const EXT_AUTHZ_PROTO = 'envoy/service/auth/v3/external_auth.proto';

export interface ExtAuthzDeps {
  readonly decisions: DecisionService;
  readonly limits: ServiceLimits;
  readonly settings: GatewaySettings;
  /** Absent = no issuers configured: every bearer token is refused. */
  readonly tokens: TokenVerifier | undefined;
  /** The mTLS caller (Envoy itself) of a call, when known. */
  readonly callerOf: (call: object) => Caller | undefined;
  readonly onUnexpectedError: (err: unknown, method: string) => void;
  /** Send the RateLimit fields on allowed responses a limit applied to (usage.headersOnAllow; default true). */
  readonly rateLimitHeadersOnAllow?: boolean;
}

type Callback = sendUnaryData<Record<string, unknown>>;

const ANONYMOUS: Subject = { type: 'anonymous', id: '', roles: [], attributes: {} };
const NO_ATTRIBUTES = {};

function fail(callback: Callback, code: status, details: string): void {
  callback({ code, details, name: 'Error', message: details });
}

/** Header values from claims or paths: control characters are dropped so a header cannot be split. */
function headerValue(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(v) ? v.replace(/[\x00-\x1f\x7f]/g, '') : v;
}

/**
 * envoy.service.auth.v3.Authorization/Check: maps the HTTP request to a Verdict request with the
 * configured routes, takes the subject from a verified bearer token (or the mTLS principal Envoy
 * reports for the source peer), decides with the DecisionService (source "ext_authz", so the
 * decision is recorded like any other), and answers as Envoy expects: OK with upstream headers,
 * 403 with a JSON body naming the decision, or 401 with a Bearer challenge.
 */
export function extAuthzService(deps: ExtAuthzDeps): UntypedServiceImplementation {
  const { settings, limits } = deps;
  const max = limits.maxIdentifierLength;

  async function authorize(view: HttpView, caller: Caller | undefined, receivedAt: number, parent: TraceParent | undefined, abandoned: () => boolean): Promise<Record<string, unknown>> {
    if (view.problem || !view.segments) return badRequestResponse(view.problem ?? 'the request path is not acceptable');
    const routed = routeRequest(settings.table, view.method, view.segments, view.unsafe);
    if (routed.kind === 'bad') return badRequestResponse(routed.problem);
    const matched = routed.kind === 'matched' ? routed.match : undefined;
    let action: string;
    let resource: Resource;
    if (matched) {
      const t = renderTarget(matched);
      action = t.action;
      resource = { type: matched.route.resourceType, id: t.id, attributes: t.attributes };
    } else {
      action = view.method.toLowerCase();
      resource = { type: 'route', id: view.path, attributes: NO_ATTRIBUTES };
    }
    if (action.length > max || resource.id.length > max) return badRequestResponse(`the request maps to an identifier longer than ${max} characters`);
    const context = httpContext(view, settings.contextHeaders, matched ? matched.route.match : '');
    const options = { explain: false, requestId: view.id, source: 'ext_authz', receivedAt, trace: parent, abandoned };
    const base = { action, resource, context, ...(caller ? { caller } : {}) };

    const token = bearerToken(view.headers.authorization);
    let subject: Subject;
    if (token !== undefined) {
      const verified = deps.tokens ? await deps.tokens.verify(token) : ({ ok: false, problem: 'unknown_issuer' } as const);
      if (!verified.ok) {
        const refused = await deps.decisions.refuse({ ...base, subject: ANONYMOUS }, 'UNAUTHENTICATED', options);
        return unauthorizedResponse(verified.problem, refused.decisionId, settings.upstream.decisionHeader, settings.realm);
      }
      subject = verified.subject;
    } else if (settings.peerSubjects.enabled && view.source?.principal) {
      const principal = view.source.principal;
      if (principal.length > max) return badRequestResponse(`source.principal is longer than ${max} characters`);
      subject = { type: settings.peerSubjects.type, id: principal, roles: settings.peerSubjects.roles, attributes: NO_ATTRIBUTES };
    } else {
      const refused = await deps.decisions.refuse({ ...base, subject: ANONYMOUS }, 'UNAUTHENTICATED', options);
      return unauthorizedResponse('missing', refused.decisionId, settings.upstream.decisionHeader, settings.realm);
    }

    const request: CheckRequest = { ...base, subject };
    if (!matched && settings.unmapped === 'deny') {
      const refused = await deps.decisions.refuse(request, 'NO_ROUTE', options);
      return forbiddenResponse(refused.decisionId, settings.upstream.decisionHeader);
    }
    const outcome = await deps.decisions.check(request, options);
    const d = outcome.decision;
    if (d.effect !== 'ALLOW') {
      const limit = d.reason === 'RATE_LIMITED' || d.reason === 'QUOTA_EXCEEDED' ? decidingLimit(d) : undefined;
      if (!limit) return withSchemaProblems(forbiddenResponse(outcome.decisionId, settings.upstream.decisionHeader), d);
      const retry = retryAfter(limit);
      return withSchemaProblems(tooManyRequestsResponse(outcome.decisionId, settings.upstream.decisionHeader, d.reason, limit.name, Number(retry[1]), [retry, ...rateLimitHeaders(d.usage)]), d);
    }
    const downstream = d.usage && deps.rateLimitHeadersOnAllow !== false ? rateLimitHeaders(d.usage) : [];
    return withSchemaProblems(okResponse(upstreamHeaders(request, outcome.decisionId), settings.upstream.removeAuthorization ? ['authorization'] : [], downstream), d);
  }

  /**
   * A request that does not match the declared schemas (schemas.mode warn or enforce): its problems
   * go to Envoy as the check's dynamic metadata (for access logs and later filters), never into the
   * response the client sees, which would describe the schemas to anyone who asks.
   */
  function withSchemaProblems(response: Record<string, unknown>, d: Decision): Record<string, unknown> {
    if (d.schemaProblems && d.schemaProblems.length > 0) response.dynamicMetadata = attributesToStruct({ decision_reason: d.reason, schema_problems: [...d.schemaProblems] });
    return response;
  }

  function upstreamHeaders(request: CheckRequest, decisionId: string): Header[] {
    const { upstream } = settings;
    const headers: Header[] = [
      [upstream.decisionHeader, decisionId],
      [upstream.subjectHeader, headerValue(request.subject.id)],
    ];
    if (upstream.headers.length > 0) {
      const s = request.subject;
      // order of UPSTREAM_VARIABLES
      const values = [s.id, s.type, s.roles.join(','), decisionId, request.action, request.resource.type, request.resource.id, request.caller?.id ?? ''];
      for (const [name, template] of upstream.headers) headers.push([name, headerValue(renderTemplate(template, values))]);
    }
    return headers;
  }

  return {
    Check(call: ServerUnaryCall<EnvoyCheckRequest, unknown>, callback: Callback) {
      const receivedAt = deps.decisions.timed ? performance.now() : 0;
      const rejected = rejectionOf(call.request);
      if (rejected) return fail(callback, status.INVALID_ARGUMENT, rejected);
      const view = httpView(call.request);
      if (!view) return fail(callback, status.INVALID_ARGUMENT, 'attributes.request.http: is required (Verdict answers the HTTP ext_authz filter)');
      // The trace continues from Envoy's ext_authz call (its metadata), else from the HTTP request's own headers.
      const parent = traceParentFromMetadata(deps.decisions, call.metadata) ?? traceParentFromHeaders(deps.decisions, view.headers);
      authorize(view, deps.callerOf(call), receivedAt, parent, abandonedCall(call)).then(
        (response) => callback(null, response),
        (err: unknown) => {
          if (err instanceof NotReadyError) return fail(callback, status.UNAVAILABLE, 'no policy set is loaded yet; retry shortly');
          deps.onUnexpectedError(err, 'ext_authz.Check');
          fail(callback, status.INTERNAL, 'internal error while deciding; the request was not allowed');
        },
      );
    },
  };
}
