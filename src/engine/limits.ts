/**
 * Bounds on what a caller may send, and on what deciding may cost. Every input path (gRPC wire
 * and object forms, JSON requests, token claims) enforces the request limits with the same
 * validator (validate.ts); the policy loader uses the same numbers for each condition's worst
 * case (src/policy/cost.ts). Defaults suit gateways and sidecars; all are settings in `limits`.
 */
export interface RequestLimits {
  /** Deepest nesting of attribute maps/lists (a top-level attribute map is depth 1). */
  readonly maxAttributeDepth: number;
  readonly maxRoles: number;
  /** Longest id, type, action or role, in UTF-8 bytes. */
  readonly maxIdentifierLength: number;
  /** Most keys in one attributes map: subject.attributes, resource.attributes, context. */
  readonly maxAttributes: number;
  /** Most items in one attribute: the items of its lists and the entries of its maps, at every depth. */
  readonly maxAttributeItems: number;
  /** Longest string (value or key) in attributes and context, in UTF-8 bytes. */
  readonly maxStringBytes: number;
  /** Most UTF-8 bytes of all strings (values and keys, its own key included) in one attribute. */
  readonly maxAttributeBytes: number;
}

/** What deciding may cost, in cost units (see src/cel/cost-model.ts). */
export interface CostLimits {
  /** A condition whose worst case (largest request the limits allow) costs more is rejected at load. */
  readonly maxConditionCost: number;
  /** What one decision may spend; past it, the condition being evaluated errors (fail closed). */
  readonly maxDecisionCost: number;
  /** What all the items of one CheckBatch may spend together. */
  readonly maxBatchCost: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  maxAttributeDepth: 10,
  maxRoles: 256,
  maxIdentifierLength: 1024,
  maxAttributes: 256,
  maxAttributeItems: 1000,
  maxStringBytes: 4096,
  maxAttributeBytes: 65_536,
};

export const DEFAULT_COST_LIMITS: CostLimits = {
  maxConditionCost: 10_000_000,
  maxDecisionCost: 1_000_000,
  maxBatchCost: 2_000_000,
};
