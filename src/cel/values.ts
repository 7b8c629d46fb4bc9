/**
 * Runtime shapes of the CEL variables. cel-js checks a custom-typed variable by its class, so the
 * engine wraps each request in these (cheap: no copying of attributes).
 */
export class SubjectValue {
  constructor(
    readonly type: string,
    readonly id: string,
    readonly roles: readonly string[],
    readonly attributes: Readonly<Record<string, unknown>>,
  ) {}
}

export class ResourceValue {
  constructor(
    readonly type: string,
    readonly id: string,
    readonly attributes: Readonly<Record<string, unknown>>,
  ) {}
}

/** The authenticated caller (a sidecar or gateway), e.g. its SPIFFE ID from mTLS; id "" when unknown. */
export class CallerValue {
  constructor(
    readonly id: string,
    readonly kind: string,
  ) {}
}

export const ANONYMOUS_CALLER = new CallerValue('', 'anonymous');
