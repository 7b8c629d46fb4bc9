/**
 * Replays a recorded decision: the request is rebuilt from the event (identifiers, roles, caller, and
 * the attributes the event holds), decided again with the engine against the stored text of the
 * recorded revision, at the recorded time (the engine's `now` was that time, to the millisecond),
 * and compared with what was recorded. Which attributes the evaluation reads is traced, so a result
 * says whether it rests only on what the event recorded, or also on attributes that were masked or
 * not recorded; a difference is given its possible reasons.
 */
import { parse, type ASTNode } from '@marcbachmann/cel-js';
import { decide, DEFAULT_COST_LIMITS, type Attributes, type CheckRequest, type CompiledPolicySet, type CostLimits, type Decision } from '../engine/index.js';
import { MASK } from '../events/event.js';
import type { ResourcePolicyDocument } from '../policy/document.js';
import { compilePolicySet, PolicyLoadError, formatIssue, type CompileOptions } from '../policy/index.js';
import { parsePolicyFile } from '../policy/parse.js';
import type { PolicyFile } from '../service/policy-source.js';
import type { RevisionLookup, RevisionReader } from './revision-store.js';
import type { DecisionEventView, PolicyHistory } from './trail-reader.js';

/** A stored revision, verified and compiled, with its documents (for file and line). */
export interface CompiledRevision {
  readonly revision: string;
  readonly set: CompiledPolicySet;
  readonly files: readonly PolicyFile[];
  readonly lookup: Extract<RevisionLookup, { status: 'found' }>;
  /** Policy id (path, or path#N) → its document as parsed. */
  readonly documents: ReadonlyMap<string, ResourcePolicyDocument>;
  /** `policy id\0rule name` of rules whose outcome can depend on the clock (`now`). */
  readonly clockRules: ReadonlySet<string>;
}

export type RevisionResult =
  | { readonly status: 'ok'; readonly compiled: CompiledRevision }
  /** missing or altered in the store, or stored text that does not compile here. */
  | { readonly status: 'missing' | 'altered' | 'invalid'; readonly detail: string };

/** Fetches, verifies and compiles each revision once. */
export class RevisionCache {
  private readonly cache = new Map<string, Promise<RevisionResult>>();

  constructor(
    readonly reader: RevisionReader,
    private readonly history: PolicyHistory | undefined,
    private readonly compile: CompileOptions = {},
  ) {}

  get(revision: string): Promise<RevisionResult> {
    let r = this.cache.get(revision);
    if (!r) {
      r = this.load(revision);
      this.cache.set(revision, r);
    }
    return r;
  }

  private async load(revision: string): Promise<RevisionResult> {
    const live = this.history?.anyOf(revision);
    const lookup = await this.reader.get(revision, { revisionSha256: live?.record.revisionSha256 });
    if (lookup.status !== 'found') {
      const said = live?.record.text;
      const hint = lookup.status === 'missing' && said ? (said.status === 'failed' ? ` (its policy record says storing it failed: ${said.error ?? 'no reason'})` : said.status === 'off' ? ' (its instance did not store policy text: events.revisionsBucket was "")' : ` (its policy record says it was ${said.status} in ${said.bucket} when it went live)`) : '';
      return { status: lookup.status, detail: `${lookup.detail}${hint}` };
    }
    let set: CompiledPolicySet;
    try {
      set = compilePolicySet(lookup.files, this.compile);
    } catch (err) {
      if (err instanceof PolicyLoadError) return { status: 'invalid', detail: `the stored text of ${revision} does not load with this Verdict: ${err.issues.slice(0, 3).map(formatIssue).join('; ')}` };
      throw err;
    }
    const documents = new Map<string, ResourcePolicyDocument>();
    const clockRules = new Set<string>();
    for (const file of lookup.files) {
      for (const doc of parsePolicyFile(file).documents) {
        documents.set(doc.id, doc);
        for (const key of clockDependentRules(doc)) clockRules.add(key);
      }
    }
    return { status: 'ok', compiled: { revision, set, files: lookup.files, lookup, documents, clockRules } };
  }
}

function walk(node: unknown, visit: (n: ASTNode) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const n = node as ASTNode;
  if ('op' in n && 'args' in n) {
    visit(n);
    walk(n.args, visit);
  } else for (const v of Object.values(node)) walk(v, visit);
}

/** Whether a CEL expression reads `now`. */
export function readsClock(expression: string): boolean {
  let found = false;
  try {
    walk(parse(expression).ast, (n) => {
      if (n.op === 'id' && n.args === 'now') found = true;
    });
  } catch {
    return /\bnow\b/.test(expression); // does not parse here: be conservative
  }
  return found;
}

/** Rules of a document whose condition, derived roles or the document's variables read the clock. */
function clockDependentRules(doc: ResourcePolicyDocument): string[] {
  const variables = doc.variables.some((v) => readsClock(v.expression.text));
  const roles = new Set(doc.derivedRoles.filter((d) => readsClock(d.when.text)).map((d) => d.name));
  return doc.rules.filter((r) => variables || (r.when && readsClock(r.when.text)) || (r.roles ?? []).some((x) => roles.has(x))).map((r) => `${doc.id}\0${r.name}`);
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Records the attribute paths an evaluation reads, or checks for, through proxies over the recorded values. */
class ReadTracker {
  readonly reads = new Set<string>();

  wrap<T>(value: T, path: string): T {
    if (value === null || typeof value !== 'object') return value;
    const reads = this.reads;
    const wrapChild = (v: unknown, p: string) => this.wrap(v, p);
    return new Proxy(value as object, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || key === 'constructor' || (Array.isArray(target) && key === 'length')) return v;
        const p = `${path}.${key}`;
        reads.add(p);
        return wrapChild(v, p);
      },
      has(target, key) {
        if (typeof key === 'string') reads.add(`${path}.${key}`);
        return Reflect.has(target, key);
      },
      getOwnPropertyDescriptor(target, key) {
        if (typeof key === 'string') reads.add(`${path}.${key}`);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
    }) as T;
  }
}

export type ReplayReason =
  /** An attribute the evaluation read holds the mask ("***"): its real value was not recorded. */
  | 'masked'
  /** An attribute the evaluation read or checked for is not in the event (not recorded). */
  | 'unrecorded'
  /** A field of the request was cut to its byte budget, or the attributes were left out (truncated). */
  | 'cut'
  /** A cost limit stopped an evaluation (limits, or a batch's shared budget, may differ). */
  | 'cost'
  /** A rule that was evaluated reads the clock (`now`); replayed at the recorded time. */
  | 'clock'
  /** The same recorded inputs and rules decide differently: the engine changed, or the record does not match its revision. */
  | 'engine';

export interface ReplayOutcome {
  readonly status: 'same' | 'different';
  readonly replayed: Decision;
  /** Attribute paths read whose value was masked, or that the event does not hold. */
  readonly masked: readonly string[];
  readonly unrecorded: readonly string[];
  /** Why a different outcome can differ (empty when the same). */
  readonly reasons: readonly ReplayReason[];
  /** The event recorded every attribute section (events.includeAttributes: all): absent keys were absent. */
  readonly attributesComplete: boolean;
}

/** Reasons recorded by adapters before any rule ran: nothing to replay. */
export const NOT_BY_RULES = new Set(['UNAUTHENTICATED', 'NO_ROUTE', 'AUDIT_UNAVAILABLE', 'INTERNAL_ERROR']);

const REQUEST_FIELDS = ['action', 'subject.id', 'subject.type', 'subject.roles', 'resource.id', 'resource.type', 'caller.id', 'caller.kind'];
const COST = /cost limit exceeded/i;

function lookupPath(root: Tree, path: string): { found: boolean; value: unknown } {
  let node: unknown = root;
  for (const k of path.split('.')) {
    if (Array.isArray(node) && /^\d+$/.test(k)) node = node[Number(k)];
    else if (isTree(node) && Object.hasOwn(node, k)) node = node[k];
    else return { found: false, value: undefined };
  }
  return { found: true, value: node };
}

/** Replays one decision event against its compiled revision. */
export function replayEvent(event: DecisionEventView, compiled: CompiledRevision, limits: Pick<CostLimits, 'maxDecisionCost'> = DEFAULT_COST_LIMITS): ReplayOutcome {
  const attrs = event.attributes ?? {};
  const recorded: Tree = {
    subject: { attributes: isTree(attrs.subject?.attributes) ? attrs.subject.attributes : {} },
    resource: { attributes: isTree(attrs.resource?.attributes) ? attrs.resource.attributes : {} },
    context: isTree(attrs.context) ? attrs.context : {},
  };
  const attributesComplete = event.attributes !== undefined && event.truncated === undefined && isTree(attrs.subject?.attributes) && isTree(attrs.resource?.attributes) && isTree(attrs.context);
  const tracker = new ReadTracker();
  const request: CheckRequest = {
    subject: { type: event.subject.type, id: event.subject.id, roles: event.subject.roles, attributes: tracker.wrap((recorded.subject as Tree).attributes as Attributes, 'subject.attributes') },
    action: event.action,
    resource: { type: event.resource.type, id: event.resource.id, attributes: tracker.wrap((recorded.resource as Tree).attributes as Attributes, 'resource.attributes') },
    context: tracker.wrap(recorded.context as Attributes, 'context'),
    caller: { id: event.caller.id, kind: event.caller.kind },
  };
  const replayed = decide(compiled.set, request, { now: new Date(event.time), costLimit: limits.maxDecisionCost });
  const masked: string[] = [];
  const unrecorded: string[] = [];
  for (const p of tracker.reads) {
    const at = lookupPath(recorded, p);
    if (at.found && at.value === MASK) masked.push(p);
    else if (!at.found && !attributesComplete) {
      // Reported at the first level the event lacks (not every key below it).
      const parent = p.slice(0, p.lastIndexOf('.'));
      if (parent === 'subject.attributes' || parent === 'resource.attributes' || parent === 'context' || lookupPath(recorded, parent).found) unrecorded.push(p);
    }
  }
  const same = replayed.effect === event.decision && replayed.reason === event.reason && replayed.policy === event.policy && replayed.rule === event.rule;
  const reasons: ReplayReason[] = [];
  if (!same) {
    if (masked.length > 0) reasons.push('masked');
    if (unrecorded.length > 0) reasons.push('unrecorded');
    if (event.truncated !== undefined || REQUEST_FIELDS.some((f) => event.cut?.[f] !== undefined)) reasons.push('cut');
    if ([...(event.errors ?? []), ...replayed.errors].some((e) => COST.test(e.message))) reasons.push('cost');
    const rules = [`${event.policy}\0${event.rule}`, `${replayed.policy}\0${replayed.rule}`];
    const candidates = compiled.set.indexFor(event.resource.type).candidates(event.action);
    for (const r of [...candidates.deny, ...candidates.allow]) rules.push(`${r.policy.id}\0${r.name}`);
    if (rules.some((k) => compiled.clockRules.has(k))) reasons.push('clock');
    if (!reasons.some((r) => r === 'masked' || r === 'unrecorded' || r === 'cut' || r === 'cost')) reasons.push('engine');
  }
  return { status: same ? 'same' : 'different', replayed, masked: masked.sort(), unrecorded: unrecorded.sort(), reasons, attributesComplete };
}

/** One line saying why a replay differs. */
export function describeReasons(o: ReplayOutcome, event: DecisionEventView): string {
  const parts: string[] = [];
  for (const r of o.reasons) {
    if (r === 'masked') parts.push(`masked attribute${o.masked.length > 1 ? 's' : ''} ${o.masked.join(', ')} (recorded as "${MASK}", events.maskAttributes)`);
    else if (r === 'unrecorded') parts.push(`attribute${o.unrecorded.length > 1 ? 's' : ''} ${o.unrecorded.join(', ')} not in the event (events.includeAttributes did not record ${o.unrecorded.length > 1 ? 'them' : 'it'}, or the request lacked ${o.unrecorded.length > 1 ? 'them' : 'it'})`);
    else if (r === 'cut') parts.push(event.truncated !== undefined ? 'the event was recorded without its attributes (over the event budget)' : `fields cut to their byte budget: ${REQUEST_FIELDS.filter((f) => event.cut?.[f] !== undefined).join(', ')}`);
    else if (r === 'cost') parts.push('a cost limit stopped an evaluation (limits.maxDecisionCost or a batch\'s limits.maxBatchCost may differ)');
    else if (r === 'clock') parts.push(`a rule involved reads the clock (now); replayed at the recorded time ${event.time}`);
    else parts.push('the same recorded inputs under the same rules decide differently: the engine changed (another Verdict version), or the record does not match its revision');
  }
  return parts.join('; ');
}

/** `ALLOW by documents/document.yaml#owners-manage (RULE_ALLOW)`. */
export function describeOutcome(d: { readonly effect?: string; readonly decision?: string; readonly reason: string; readonly policy: string; readonly rule: string }): string {
  const effect = d.effect ?? d.decision ?? '';
  return d.rule ? `${effect} by ${d.policy}#${d.rule} (${d.reason})` : `${effect} (${d.reason})`;
}
