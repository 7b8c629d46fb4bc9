import type { Decision, RuleTrace } from '../engine/decision.js';
import { InvalidRequestError } from '../engine/input.js';
import type { Attributes, CheckRequest, Subject } from '../engine/request.js';
import type { ServiceLimits } from '../config/schema.js';
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

function text(value: string | undefined, field: string, limits: ServiceLimits, required: boolean): string {
  if (!value) {
    if (required) throw new InvalidRequestError(field, 'is required and must not be empty');
    return '';
  }
  if (value.length > limits.maxIdentifierLength) throw new InvalidRequestError(field, `is longer than ${limits.maxIdentifierLength} characters (limits.maxIdentifierLength)`);
  return value;
}

export function toSubject(s: ProtoSubject | undefined, limits: ServiceLimits): Subject {
  if (!s) throw new InvalidRequestError('subject', 'is required');
  const roles = s.roles ?? [];
  if (roles.length > limits.maxRoles) throw new InvalidRequestError('subject.roles', `has ${roles.length} roles; at most ${limits.maxRoles} allowed (limits.maxRoles)`);
  for (let i = 0; i < roles.length; i++) text(roles[i], `subject.roles[${i}]`, limits, true);
  return {
    type: text(s.type, 'subject.type', limits, false) || 'user',
    id: text(s.id, 'subject.id', limits, true),
    roles,
    attributes: structToAttributes(s.attributes, 'subject.attributes', limits.maxAttributeDepth),
  };
}

function toTarget(action: ProtoAction | undefined, resource: ProtoResource | undefined, prefix: string, limits: ServiceLimits) {
  if (!action) throw new InvalidRequestError(`${prefix}action`, 'is required');
  if (!resource) throw new InvalidRequestError(`${prefix}resource`, 'is required');
  return {
    action: text(action.name, `${prefix}action.name`, limits, true),
    resource: {
      type: text(resource.type, `${prefix}resource.type`, limits, true),
      id: text(resource.id, `${prefix}resource.id`, limits, false),
      attributes: structToAttributes(resource.attributes, `${prefix}resource.attributes`, limits.maxAttributeDepth),
    },
  };
}

export function toCheckRequest(msg: ProtoCheckRequest, limits: ServiceLimits): CheckRequest {
  const subject = toSubject(msg.subject, limits);
  const target = toTarget(msg.action, msg.resource, '', limits);
  const context: Attributes = structToAttributes(msg.context, 'context', limits.maxAttributeDepth);
  return { subject, action: target.action, resource: target.resource, context };
}

export function toBatchRequests(msg: ProtoCheckBatchRequest, limits: ServiceLimits): CheckRequest[] {
  const subject = toSubject(msg.subject, limits);
  const items = msg.items ?? [];
  if (items.length === 0) throw new InvalidRequestError('items', 'must hold at least one (action, resource) pair');
  if (items.length > limits.maxBatchItems) throw new InvalidRequestError('items', `has ${items.length} items; at most ${limits.maxBatchItems} allowed (limits.maxBatchItems)`);
  const context: Attributes = structToAttributes(msg.context, 'context', limits.maxAttributeDepth);
  return items.map((item, i) => {
    const target = toTarget(item.action, item.resource, `items[${i}].`, limits);
    return { subject, action: target.action, resource: target.resource, context };
  });
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
}
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
