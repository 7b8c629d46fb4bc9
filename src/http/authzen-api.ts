import type { Decision } from '../engine/decision.js';
import { InvalidRequestError } from '../service/request-validation.js';
import type { Caller, CheckRequest } from '../engine/request.js';
import type { CallHooks, TraceParent } from '../service/decision-hooks.js';
import type { CheckOptions, DecisionService } from '../service/decision-service.js';
import { authzenToCheckRequest, mergeEvaluation, type AuthzenMapping, type AuthzenTuple } from './authzen-request.js';
import { itemError, toAuthzenDecision, type AuthzenDecision } from './authzen-response.js';
import { HttpError } from './errors.js';

export type EvaluationsSemantic = 'execute_all' | 'deny_on_first_deny' | 'permit_on_first_permit';
const SEMANTICS: readonly EvaluationsSemantic[] = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'];

export interface AuthzenApiDeps extends AuthzenMapping {
  readonly decisions: DecisionService;
  /** limits.maxBatchItems: most items in one `evaluations` request. */
  readonly maxEvaluations: number;
}

/** Who asked and how: the same for every decision of one HTTP request. */
export interface AuthzenCall {
  /** X-Request-ID ("" when none), recorded in every decision event of the call. */
  readonly requestId: string;
  /** The mTLS caller, visible to conditions and recorded. */
  readonly caller: Caller | undefined;
  /** performance.now() when the request arrived (metrics or tracing on, `hooks.timed`). */
  readonly receivedAt?: number;
  /** The caller's W3C trace context (traceParentFromHeaders), when tracing is on. */
  readonly trace?: TraceParent | undefined;
  /** The client has gone (connection or HTTP/2 stream closed) by the time of the decision: recorded as not delivered. */
  readonly abandoned?: () => boolean;
}

interface CallOptions {
  readonly semantic: EvaluationsSemantic;
  readonly explain: boolean;
}

function invalid(err: InvalidRequestError): HttpError {
  return new HttpError(400, 'INVALID_REQUEST', err.message);
}

/** `options` (AuthZEN's evaluations options, plus Verdict's `explain`), checked as a whole. */
function callOptions(value: unknown): CallOptions {
  if (value === undefined || value === null) return { semantic: 'execute_all', explain: false };
  if (typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'INVALID_REQUEST', 'options: must be an object');
  const o = value as Record<string, unknown>;
  const semantic = o.evaluations_semantic ?? 'execute_all';
  if (!SEMANTICS.includes(semantic as EvaluationsSemantic)) {
    throw new HttpError(400, 'INVALID_REQUEST', `options.evaluations_semantic: must be one of ${SEMANTICS.join(', ')} (got ${JSON.stringify(semantic).slice(0, 100)})`);
  }
  const explain = o.explain ?? false;
  if (typeof explain !== 'boolean') throw new HttpError(400, 'INVALID_REQUEST', 'options.explain: must be true or false');
  return { semantic: semantic as EvaluationsSemantic, explain };
}

/**
 * The AuthZEN Access Evaluation and Access Evaluations APIs over the DecisionService, independent
 * of the HTTP server: bodies in (parsed JSON objects), response objects out, HttpError for an
 * answer other than 200.
 */
export class AuthzenApi {
  constructor(private readonly deps: AuthzenApiDeps) {}

  /** Whether to time calls and how to read their trace context (metrics and tracing). */
  get hooks(): CallHooks {
    return this.deps.decisions;
  }

  private request(tuple: AuthzenTuple, call: AuthzenCall): CheckRequest {
    const request = authzenToCheckRequest(tuple, this.deps);
    return call.caller ? { ...request, caller: call.caller } : request;
  }

  private options(call: AuthzenCall, explain: boolean, source: string): CheckOptions {
    return { explain, requestId: call.requestId, source, receivedAt: call.receivedAt, trace: call.trace, abandoned: call.abandoned };
  }

  /** POST /access/v1/evaluation: one decision; any problem with the request is a 400. */
  async evaluation(body: Record<string, unknown>, call: AuthzenCall): Promise<AuthzenDecision> {
    const { explain } = callOptions(body.options);
    let request: CheckRequest;
    try {
      request = this.request(body, call);
    } catch (err) {
      throw err instanceof InvalidRequestError ? invalid(err) : err;
    }
    return toAuthzenDecision(await this.deps.decisions.check(request, this.options(call, explain, 'authzen_evaluation')));
  }

  /**
   * POST /access/v1/evaluations. Without items (absent or empty `evaluations`) it is one evaluation
   * and answers like /evaluation. Otherwise every item is merged with the top-level defaults and
   * checked; an item that fails the checks is `decision: false` with `context.error`, not a failed
   * call. The valid items are decided in order against one policy set snapshot, each a decision with
   * its own event; `deny_on_first_deny` / `permit_on_first_permit` stop at the first deny (a bad
   * item counts as one) / permit, and the answer ends with that item: later items are not decided.
   */
  async evaluations(body: Record<string, unknown>, call: AuthzenCall): Promise<AuthzenDecision | { evaluations: AuthzenDecision[] }> {
    const options = callOptions(body.options);
    const items = body.evaluations;
    if (items === undefined || items === null || (Array.isArray(items) && items.length === 0)) {
      let request: CheckRequest;
      try {
        request = this.request(body, call);
      } catch (err) {
        throw err instanceof InvalidRequestError ? invalid(err) : err;
      }
      return toAuthzenDecision(await this.deps.decisions.check(request, this.options(call, options.explain, 'authzen_evaluations')));
    }
    if (!Array.isArray(items)) throw new HttpError(400, 'INVALID_REQUEST', 'evaluations: must be a list of evaluation objects');
    if (items.length > this.deps.maxEvaluations) {
      throw new HttpError(400, 'INVALID_REQUEST', `evaluations: has ${items.length} items; at most ${this.deps.maxEvaluations} allowed (limits.maxBatchItems)`);
    }
    const defaults: AuthzenTuple = body;
    const checked = items.map((item): CheckRequest | InvalidRequestError => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) return new InvalidRequestError('evaluation', 'must be an object');
      try {
        return this.request(mergeEvaluation(defaults, item as AuthzenTuple), call);
      } catch (err) {
        if (err instanceof InvalidRequestError) return err;
        throw err;
      }
    });
    const { semantic } = options;
    const stopsAt = semantic === 'deny_on_first_deny' ? (d: Decision) => d.effect !== 'ALLOW' : semantic === 'permit_on_first_permit' ? (d: Decision) => d.effect === 'ALLOW' : undefined;
    // deny_on_first_deny never gets past the first bad item, so nothing after it is decided.
    const firstBad = checked.findIndex((c) => c instanceof InvalidRequestError);
    const decidable = semantic === 'deny_on_first_deny' && firstBad !== -1 ? checked.slice(0, firstBad) : checked;
    const requests = decidable.filter((c): c is CheckRequest => !(c instanceof InvalidRequestError));
    const outcomes = await this.deps.decisions.checkMany(requests, this.options(call, options.explain, 'authzen_evaluations'), stopsAt);

    const answers: AuthzenDecision[] = [];
    let next = 0;
    for (const c of checked) {
      if (c instanceof InvalidRequestError) {
        answers.push(itemError(c.message));
        if (semantic === 'deny_on_first_deny') break;
        continue;
      }
      const outcome = outcomes[next++];
      if (!outcome) break; // not decided: the call stopped before it
      const answer = toAuthzenDecision(outcome);
      answers.push(answer);
      if ((semantic === 'deny_on_first_deny' && !answer.decision) || (semantic === 'permit_on_first_permit' && answer.decision)) break;
    }
    return { evaluations: answers };
  }
}
