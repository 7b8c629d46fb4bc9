import type { EventsConfig } from '../config/schema.js';
import type { DecisionRecord } from '../service/decision-record.js';
import { sortedCopy } from './canonical.js';

export const EVENT_SCHEMA = 'verdict.decision.v1';
export const CHECKPOINT_SCHEMA = 'verdict.chain-checkpoint.v1';
export const PUBLISH_REFUSED_SCHEMA = 'verdict.publish-refused.v1';
export const EVENTS_LOST_SCHEMA = 'verdict.events-lost.v1';

/** What an over-budget field held before it was cut: its size and digest (see budget.ts). */
export interface CutField {
  /** UTF-8 bytes of the original value (for a list or map: of its RFC 8785 canonical JSON). */
  readonly bytes: number;
  /** Lowercase hex SHA-256 of those bytes. */
  readonly sha256: string;
  /** For a list: how many items it had. */
  readonly count?: number;
}

export interface ChainLink {
  /** The hash of this event: sha256 over its canonical JSON without `chain.hash`, hex. */
  readonly hash: string;
  /** Chain id: instance id plus a per-process boot id, so a restart starts a new chain. */
  readonly id: string;
  /** Hash of the previous event of this chain ("0" × 64 for the first). */
  readonly prev: string;
  /** 1, 2, 3, … without gaps within a chain. */
  readonly seq: number;
}

/** One decision, as published. Keys are listed (and built) in sorted order: see canonical.ts. */
export interface DecisionEvent {
  readonly action: string;
  /** Only the attributes configured by events.includeAttributes, with events.maskAttributes masked. */
  readonly attributes?: { readonly context?: unknown; readonly resource?: unknown; readonly subject?: unknown };
  readonly caller: { readonly id: string; readonly kind: string };
  readonly chain: ChainLink;
  /** Only when a field was over its byte budget: field path → what it held (budget.ts). */
  readonly cut?: Readonly<Record<string, CutField>>;
  readonly decision: 'ALLOW' | 'DENY';
  /** Only `false`, when the caller had abandoned the call (cancelled, deadline passed) before the answer. */
  readonly delivered?: false;
  readonly errors?: readonly { readonly message: string; readonly policy: string; readonly rule: string }[];
  readonly evaluationUs: number;
  readonly id: string;
  readonly instance: string;
  /** Usage limits that applied to an allowed request (docs/events.md): name, mode, outcome and state. */
  readonly limits?: readonly EventLimit[];
  readonly policy: string;
  readonly reason: string;
  readonly requestId: string;
  readonly resource: { readonly id: string; readonly type: string };
  readonly revision: string;
  readonly rule: string;
  readonly schema: typeof EVENT_SCHEMA;
  readonly source: string;
  readonly subject: { readonly id: string; readonly roles: readonly string[]; readonly type: string };
  readonly time: string;
  /** The W3C trace id of the call that decided, when tracing is on (docs/operations.md#tracing). */
  readonly traceId?: string;
  /** Present when part of the event was left out to fit a NATS message ("attributes"). */
  readonly truncated?: 'attributes';
}

export type UnchainedEvent = Omit<DecisionEvent, 'chain'>;

/** A usage limit in a decision event (keys in sorted order). The counter's key is not recorded. */
export interface EventLimit {
  readonly mode: 'enforce' | 'shadow';
  readonly name: string;
  readonly outcome: 'ok' | 'over' | 'error';
  readonly remaining: number;
  readonly retryAfterMs: number;
}

/** A chain checkpoint: "this chain holds events 1..seq, the last with this hash". */
export interface ChainCheckpoint {
  readonly chain: string;
  readonly final: boolean;
  readonly hash: string;
  readonly instance: string;
  readonly schema: typeof CHECKPOINT_SCHEMA;
  readonly seq: number;
  readonly time: string;
}

export const MASK = '***';

type Tree = { [k: string]: unknown };

function pick(source: Tree, path: string[]): unknown {
  let node: unknown = source;
  for (const k of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Tree)[k];
  }
  return node;
}

function put(target: Tree, path: string[], value: unknown): void {
  let node = target;
  for (const k of path.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

/**
 * Builds the attribute section of an event: nothing, everything, or listed paths (e.g.
 * "resource.attributes.department"), then replaces masked paths with "***". Secrets never leave
 * the process unmasked unless configured so.
 */
export class AttributeSelector {
  private readonly include: 'none' | 'all' | string[][];
  private readonly mask: string[][];

  constructor(config: Pick<EventsConfig, 'includeAttributes' | 'maskAttributes'>) {
    this.include = Array.isArray(config.includeAttributes) ? config.includeAttributes.map((p) => p.split('.')) : (config.includeAttributes as 'none' | 'all');
    this.mask = config.maskAttributes.map((p) => p.split('.'));
  }

  select(record: DecisionRecord): DecisionEvent['attributes'] {
    if (this.include === 'none') return undefined;
    const { request } = record;
    const all: Tree = {
      subject: { attributes: request.subject.attributes },
      resource: { attributes: request.resource.attributes },
      context: request.context,
    };
    let selected: Tree;
    if (this.include === 'all') {
      selected = JSON.parse(JSON.stringify(all)) as Tree;
    } else {
      selected = {};
      for (const path of this.include) {
        const v = pick(all, path);
        if (v !== undefined) put(selected, path, JSON.parse(JSON.stringify(v)));
      }
    }
    for (const path of this.mask) if (pick(selected, path) !== undefined) put(selected, path, MASK);
    return sortedCopy(selected) as DecisionEvent['attributes'];
  }
}

/** DecisionRecord → event body (without chain), keys inserted in sorted order. */
export function buildUnchainedEvent(record: DecisionRecord, instance: string, attributes: AttributeSelector): UnchainedEvent {
  const { request, decision } = record;
  const selected = attributes.select(record);
  const caller = request.caller ?? { id: '', kind: 'anonymous' };
  const event: Record<string, unknown> = { action: request.action };
  if (selected) event.attributes = selected;
  event.caller = { id: caller.id, kind: caller.kind };
  event.decision = decision.effect;
  if (record.delivered === false) event.delivered = false;
  if (decision.errors.length > 0) event.errors = decision.errors.map((e) => ({ message: e.message, policy: e.policy, rule: e.rule }));
  event.evaluationUs = Math.round(record.evaluationNs / 10) / 100;
  event.id = record.decisionId;
  event.instance = instance;
  if (decision.usage) event.limits = decision.usage.map((u) => ({ mode: u.mode, name: u.name, outcome: u.outcome, remaining: u.remaining, retryAfterMs: u.retryAfterMs }));
  event.policy = decision.policy;
  event.reason = decision.reason;
  event.requestId = record.requestId;
  event.resource = { id: request.resource.id, type: request.resource.type };
  event.revision = decision.revision;
  event.rule = decision.rule;
  event.schema = EVENT_SCHEMA;
  event.source = record.source;
  event.subject = { id: request.subject.id, roles: [...request.subject.roles], type: request.subject.type };
  event.time = record.time.toISOString();
  if (record.traceId) event.traceId = record.traceId;
  return event as unknown as UnchainedEvent;
}
