/** A JSON-like attribute value, as callers send it (numbers are doubles, as in JSON). */
export type AttributeValue = string | number | boolean | null | readonly AttributeValue[] | { readonly [key: string]: AttributeValue };
export type Attributes = { readonly [key: string]: AttributeValue };

export interface Subject {
  readonly type: string;
  readonly id: string;
  readonly roles: readonly string[];
  readonly attributes: Attributes;
}

export interface Resource {
  readonly type: string;
  readonly id: string;
  readonly attributes: Attributes;
}

/** Who asked (a sidecar or gateway), as proven by the transport (e.g. mTLS); absent when unknown. */
export interface Caller {
  readonly id: string;
  readonly kind: string;
}

/** One authorization question: may `subject` do `action` on `resource`, given `context`? */
export interface CheckRequest {
  readonly subject: Subject;
  readonly action: string;
  readonly resource: Resource;
  readonly context: Attributes;
  readonly caller?: Caller;
}

export interface EvaluationOptions {
  /** The time of the check; the engine never reads a clock. */
  readonly now: Date;
  /** Record every rule considered and why it did or did not apply. */
  readonly explain?: boolean;
  /**
   * Cost units the decision may spend (default: limits.maxDecisionCost's default); past it, the
   * condition being evaluated errors. `costSetting` names the limit in that error's message.
   */
  readonly costLimit?: number;
  readonly costSetting?: string;
}
