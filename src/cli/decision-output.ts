/**
 * The one JSON shape `verdict check` prints, locally (`--policies`) and from a server
 * (`--server`): the gRPC CheckResponse in its JSON form (docs/api.md "CLI decision output"), with
 * every field present, so `jq .allowed` or `jq .explanation[].outcome` read the same either way.
 */
import type { Decision } from '../engine/decision.js';
import { toCheckResponse, type ProtoCheckResponse } from '../grpc/translate.js';

export interface CliRuleTrace {
  readonly policy: string;
  readonly rule: string;
  readonly effect: string;
  readonly outcome: string;
  readonly detail: string;
  readonly derivedRoles: readonly string[];
}

export interface CliDecision {
  readonly decision: string;
  readonly allowed: boolean;
  readonly policy: string;
  readonly rule: string;
  readonly reason: string;
  readonly revision: string;
  /** "" for a local check: nothing was recorded, so there is no decision event to point at. */
  readonly decisionId: string;
  readonly errors: readonly { policy: string; rule: string; message: string }[];
  /** What in the request does not match the declared schemas (docs/policies.md "Schema modes"); [] when it matches. */
  readonly schemaProblems: readonly string[];
  /** Only with --explain. */
  readonly explanation?: readonly CliRuleTrace[];
}

/**
 * A CheckResponse as proto-loader decodes it (`defaults: false`: fields holding their default
 * value, such as `false`, `""` and `[]`, are absent), or as the server builds it.
 */
type LooseResponse = Partial<Omit<ProtoCheckResponse, 'explanation' | 'errors' | 'schemaProblems'>> & {
  schemaProblems?: readonly string[];
  explanation?: readonly Partial<CliRuleTrace>[];
  errors?: readonly Partial<CliDecision['errors'][number]>[];
};

/** Fills in the fields proto3 leaves out on the wire and fixes the key order. */
export function toCliDecision(r: LooseResponse, explain: boolean): CliDecision {
  const allowed = r.decision === 'EFFECT_ALLOW';
  const out: CliDecision = {
    decision: r.decision ?? 'EFFECT_UNSPECIFIED',
    // From the decision itself, so the two can never disagree (and false is never left out).
    allowed,
    policy: r.policy ?? '',
    rule: r.rule ?? '',
    reason: r.reason ?? '',
    revision: r.revision ?? '',
    decisionId: r.decisionId ?? '',
    errors: (r.errors ?? []).map((e) => ({ policy: e.policy ?? '', rule: e.rule ?? '', message: e.message ?? '' })),
    schemaProblems: [...(r.schemaProblems ?? [])],
  };
  if (!explain) return out;
  return {
    ...out,
    explanation: (r.explanation ?? []).map((t) => ({
      policy: t.policy ?? '',
      rule: t.rule ?? '',
      effect: t.effect ?? '',
      outcome: t.outcome ?? 'RULE_OUTCOME_UNSPECIFIED',
      detail: t.detail ?? '',
      derivedRoles: [...(t.derivedRoles ?? [])],
    })),
  };
}

/** A decision made in this process, in the same shape as a server's answer. */
export function localCliDecision(d: Decision, explain: boolean): CliDecision {
  return toCliDecision(toCheckResponse('', d), explain);
}
