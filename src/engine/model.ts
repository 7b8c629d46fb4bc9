import type { UsageIndex } from './usage.js';

/**
 * The compiled, indexed form of a policy set: what the engine evaluates. Produced by
 * `compilePolicySet` (src/policy), never by hand; immutable once built.
 */

import type { CheckRequest } from './request.js';

export type Effect = 'allow' | 'deny';

/** A compiled CEL condition; throws on evaluation errors (the engine turns those into decisions). */
export type CompiledCondition = (activation: Record<string, unknown>) => unknown;

export interface CompiledPolicy {
  /** Path of the policy file relative to the policy root (plus "#N" for multi-document files). */
  readonly id: string;
  readonly resource: string;
  /** Builds the per-request `variables` value of this policy (lazy, cached per request). */
  readonly createVariables: (activation: Record<string, unknown>) => object;
  readonly hasVariables: boolean;
}

export interface CompiledDerivedRole {
  readonly name: string;
  readonly policy: CompiledPolicy;
  /** Subject must hold one of these static roles; empty = no requirement. */
  readonly parentRoles: readonly string[];
  readonly condition: CompiledCondition;
  readonly source: string;
}

export interface CompiledRule {
  readonly policy: CompiledPolicy;
  readonly name: string;
  readonly effect: Effect;
  readonly actions: readonly string[];
  /** True when the rule applies to any subject (no roles, or "*"). */
  readonly anyRole: boolean;
  /** Roles that are plain (static) roles carried by the subject. */
  readonly staticRoles: ReadonlySet<string>;
  /** Roles of the rule that are derived roles in scope, resolved at load. */
  readonly derivedRoles: readonly CompiledDerivedRole[];
  readonly condition: CompiledCondition | undefined;
  readonly conditionSource: string;
}

/** The rules that can apply to one (resource type, action), split by effect, in policy order. */
export interface CandidateRules {
  readonly deny: readonly CompiledRule[];
  readonly allow: readonly CompiledRule[];
}

export interface ResourceTypeIndex {
  /** False for the fallback index of a type that has no policy of its own. */
  readonly hasOwnPolicy: boolean;
  /** Every rule for the type (own and "*"), in order, for explanations. */
  readonly allRules: readonly CompiledRule[];
  candidates(action: string): CandidateRules;
}

export interface PolicySetSummary {
  readonly id: string;
  readonly resource: string;
  readonly rules: number;
  readonly derivedRoles: number;
  readonly variables: number;
}

export interface CompiledPolicySet {
  /** Content hash of every source file: the same files give the same revision. */
  readonly revision: string;
  readonly policies: readonly PolicySetSummary[];
  /** policies.length, without making the list (made when first asked for; thousands of entries). */
  readonly policyCount: number;
  readonly resourceTypes: readonly string[];
  readonly ruleCount: number;
  /** The index for a resource type; types without a policy get the "*" policies only. */
  indexFor(resourceType: string): ResourceTypeIndex;
  /** Usage limits (rates and quotas); absent when the set declares none. */
  readonly usage?: UsageIndex;
  /** The set's declarations (kind: Declarations) for run-time schema checks; absent without. */
  readonly declarations?: CompiledDeclarations;
}

/** Run-time schema checking of requests: off, warn (decide, report problems) or enforce (deny). */
export type SchemaMode = 'off' | 'warn' | 'enforce';

export interface CompiledDeclarations {
  readonly mode: SchemaMode;
  /** What in the request does not match the declared schemas (bounded in count and bytes); [] when it matches. */
  checkRequest(request: CheckRequest): readonly string[];
  /** Compiles now what checkRequest would otherwise compile on first use (a few validators; see policies.md). */
  warm(): void;
}
