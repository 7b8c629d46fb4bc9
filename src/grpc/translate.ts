import { ANONYMOUS_SUBJECT, refuseSubjectWithToken } from '../auth/request-token.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { ServiceLimits } from '../config/schema.js';
import type { Decision, RuleTrace } from '../engine/decision.js';
import type { Attributes, CheckRequest, Subject } from '../engine/request.js';
import { InvalidRequestError, validateIdentifier, validateRoles } from '../engine/validate.js';
import { structToAttributes, type ProtoStruct } from './struct.js';

/**
 * Decoded messages (proto-loader object form, camelCase, absent fields undefined). The server's
 * own Check/CheckBatch decoder (wire/verdict-requests.ts) gives the same shapes, except that it
 * leaves each Struct as its raw bytes for structToAttributes to turn straight into JSON.
 */
export interface ProtoSubject {
  type?: string;
  id?: string;
  roles?: string[];
  attributes?: ProtoStruct | Uint8Array;
}
export interface ProtoResource {
  type?: string;
  id?: string;
  attributes?: ProtoStruct | Uint8Array;
}
export interface ProtoAction {
  name?: string;
}
export interface ProtoCheckRequest {
  subject?: ProtoSubject;
  action?: ProtoAction;
  resource?: ProtoResource;
  context?: ProtoStruct | Uint8Array;
  explain?: boolean;
  requestId?: string;
  token?: string;
}
export interface ProtoBatchItem {
  action?: ProtoAction;
  resource?: ProtoResource;
}
export interface ProtoCheckBatchRequest {
  subject?: ProtoSubject;
  items?: ProtoBatchItem[];
  context?: ProtoStruct | Uint8Array;
  explain?: boolean;
  requestId?: string;
  token?: string;
}

/**
 * The request validator (src/engine/validate.ts) does every check; this adapter only maps proto
 * fields to the plain request shape, field by field in the documented order, so a gRPC request is
 * refused exactly like the same request as JSON.
 */
export function toSubject(s: ProtoSubject | undefined, limits: ServiceLimits): Subject {
  if (!s) throw new InvalidRequestError('subject', 'is required');
  const roles = validateRoles(s.roles, 'subject.roles', limits);
  return {
    type: validateIdentifier(s.type, 'subject.type', limits, false, 'user'),
    id: validateIdentifier(s.id, 'subject.id', limits, true),
    roles,
    attributes: structToAttributes(s.attributes, 'subject.attributes', limits),
  };
}

function toTarget(action: ProtoAction | undefined, resource: ProtoResource | undefined, prefix: string, limits: ServiceLimits) {
  if (!action) throw new InvalidRequestError(`${prefix}action`, 'is required');
  if (!resource) throw new InvalidRequestError(`${prefix}resource`, 'is required');
  return {
    action: validateIdentifier(action.name, `${prefix}action.name`, limits, true),
    resource: {
      type: validateIdentifier(resource.type, `${prefix}resource.type`, limits, true),
      id: validateIdentifier(resource.id, `${prefix}resource.id`, limits, false),
      attributes: structToAttributes(resource.attributes, `${prefix}resource.attributes`, limits),
    },
  };
}

export function toCheckRequest(msg: ProtoCheckRequest, limits: ServiceLimits): CheckRequest {
  const subject = toSubject(msg.subject, limits);
  const target = toTarget(msg.action, msg.resource, '', limits);
  const context: Attributes = structToAttributes(msg.context, 'context', limits);
  return { subject, action: target.action, resource: target.resource, context };
}

export function toBatchRequests(msg: ProtoCheckBatchRequest, limits: ServiceLimits): CheckRequest[] {
  const subject = toSubject(msg.subject, limits);
  const items = msg.items ?? [];
  if (items.length === 0) throw new InvalidRequestError('items', 'must hold at least one (action, resource) pair');
  if (items.length > limits.maxBatchItems) throw new InvalidRequestError('items', `has ${items.length} items; at most ${limits.maxBatchItems} allowed (limits.maxBatchItems)`);
  const context: Attributes = structToAttributes(msg.context, 'context', limits);
  return items.map((item, i) => {
    const target = toTarget(item.action, item.resource, `items[${i}].`, limits);
    return { subject, action: target.action, resource: target.resource, context };
  });
}

const PLACEHOLDER = { id: '-' };

/** Check with `token`: the request's target, validated, with the subject left to the token. */
export function toTokenCheckRequest(msg: ProtoCheckRequest, limits: ServiceLimits, tokens: TokenVerifier | undefined): CheckRequest {
  refuseSubjectWithToken(msg.subject, tokens);
  return { ...toCheckRequest({ ...msg, subject: PLACEHOLDER }, limits), subject: ANONYMOUS_SUBJECT };
}

export function toTokenBatchRequests(msg: ProtoCheckBatchRequest, limits: ServiceLimits, tokens: TokenVerifier | undefined): CheckRequest[] {
  refuseSubjectWithToken(msg.subject, tokens);
  return toBatchRequests({ ...msg, subject: PLACEHOLDER }, limits).map((r) => ({ ...r, subject: ANONYMOUS_SUBJECT }));
}

/** Response messages as the handlers build them (enums by name, as proto-loader takes them). */
export type ProtoEffect = 'EFFECT_UNSPECIFIED' | 'EFFECT_ALLOW' | 'EFFECT_DENY';
export type ProtoRuleOutcome =
  | 'RULE_OUTCOME_UNSPECIFIED'
  | 'RULE_OUTCOME_APPLIED'
  | 'RULE_OUTCOME_ACTION_MISMATCH'
  | 'RULE_OUTCOME_ROLE_MISMATCH'
  | 'RULE_OUTCOME_CONDITION_FALSE'
  | 'RULE_OUTCOME_CONDITION_ERROR';
export interface ProtoRuleTrace {
  policy: string;
  rule: string;
  effect: string;
  outcome: ProtoRuleOutcome;
  detail: string;
  derivedRoles: readonly string[];
}
export interface ProtoEvaluationError {
  readonly policy: string;
  readonly rule: string;
  readonly message: string;
}
export interface ProtoCheckResponse {
  decision: ProtoEffect;
  allowed: boolean;
  policy: string;
  rule: string;
  reason: string;
  revision: string;
  decisionId: string;
  /** Only when explain was requested. */
  explanation?: ProtoRuleTrace[];
  /** Only when there were condition errors. */
  errors?: readonly ProtoEvaluationError[];
  /** Only when usage limits applied. */
  limits?: readonly ProtoLimitState[];
}
export interface ProtoLimitState {
  readonly name: string;
  readonly policy: string;
  readonly kind: string;
  readonly mode: string;
  readonly scope: string;
  readonly outcome: string;
  readonly limit: number;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
  readonly windowMs: number;
}

const UINT32 = 0xffffffff;
const u32 = (n: number): number => (n <= 0 ? 0 : n >= UINT32 ? UINT32 : Math.floor(n));
export interface ProtoCheckBatchResponse {
  results: ProtoCheckResponse[];
  revision: string;
}

const OUTCOMES: Record<RuleTrace['outcome'], ProtoRuleOutcome> = {
  APPLIED: 'RULE_OUTCOME_APPLIED',
  ACTION_MISMATCH: 'RULE_OUTCOME_ACTION_MISMATCH',
  ROLE_MISMATCH: 'RULE_OUTCOME_ROLE_MISMATCH',
  CONDITION_FALSE: 'RULE_OUTCOME_CONDITION_FALSE',
  CONDITION_ERROR: 'RULE_OUTCOME_CONDITION_ERROR',
  NOT_EVALUATED: 'RULE_OUTCOME_UNSPECIFIED',
};

export function toCheckResponse(decisionId: string, d: Decision): ProtoCheckResponse {
  const allowed = d.effect === 'ALLOW';
  const response: ProtoCheckResponse = {
    decision: allowed ? 'EFFECT_ALLOW' : 'EFFECT_DENY',
    allowed,
    policy: d.policy,
    rule: d.rule,
    reason: d.reason,
    revision: d.revision,
    decisionId,
  };
  if (d.errors.length > 0) response.errors = d.errors;
  if (d.usage) {
    response.limits = d.usage.map((u) => ({
      name: u.name,
      policy: u.policy,
      kind: u.kind,
      mode: u.mode,
      scope: u.scope,
      outcome: u.outcome,
      limit: u32(u.limit),
      remaining: u32(u.remaining),
      retryAfterMs: u32(u.retryAfterMs),
      resetMs: u32(u.resetMs),
      windowMs: u32(u.windowMs),
    }));
  }
  if (d.explanation) {
    response.explanation = d.explanation.map((t) => ({
      policy: t.policy,
      rule: t.rule,
      effect: t.effect,
      outcome: OUTCOMES[t.outcome],
      detail: t.detail,
      derivedRoles: t.derivedRoles ?? [],
    }));
  }
  return response;
}
