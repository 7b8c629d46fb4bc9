/**
 * Reads trail files (as `verdict audit consume` writes them) for the evidence commands: every chained
 * record with its place, whether its own hash verifies, and for each chain the policy revisions that
 * went live on it (its `verdict.policy.v1` records), so a decision can be tied to the record that put
 * its revision live. Checking whole chains, signatures and gaps is `verdict audit verify`'s job.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { eventHash } from '../events/chain.js';
import { EVENT_SCHEMA } from '../events/event.js';
import { classifyRecord, parseCanonical, type ChainLink } from '../audit/records.js';
import { parseTrailLine } from '../audit/trail-file.js';
import { POLICY_SCHEMA, type PolicyRecordBody } from './policy-record.js';

export interface TrailRecord {
  /** file:line */
  readonly where: string;
  readonly schema: string;
  readonly record: Record<string, unknown>;
  readonly link: ChainLink;
  /** The record's content matches its chain.hash. */
  readonly hashOk: boolean;
}

/** Every chained record of the files, in order (checkpoints, refused lines and unreadable lines are skipped). */
export async function* chainedRecords(files: readonly string[]): AsyncGenerator<TrailRecord> {
  for (const file of files) {
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) {
      n++;
      if (line.trim() === '') continue;
      const t = parseTrailLine(line);
      if (t.type !== 'record' && t.type !== 'bare') continue;
      const parsed = parseCanonical(t.payload);
      if (!parsed.ok) continue;
      const c = classifyRecord(parsed.value);
      if (c.type !== 'chained') continue;
      yield { where: `${file}:${n}`, schema: c.schema, record: c.record, link: c.link, hashOk: eventHash(c.record) === c.link.hash };
    }
  }
}

/** A policy set that went live on a chain (an applied policy record). */
export interface LiveRevision {
  readonly where: string;
  readonly seq: number;
  readonly hashOk: boolean;
  readonly record: PolicyRecordBody;
}

/** The applied policy records of each chain, in chain order. */
export class PolicyHistory {
  private readonly chains = new Map<string, LiveRevision[]>();
  /** Every applied record by revision (the first seen), for lookups without a chain. */
  private readonly byRevision = new Map<string, LiveRevision>();

  /** Takes a record if it is an applied policy record; returns whether it was one. */
  add(r: TrailRecord): boolean {
    if (r.schema !== POLICY_SCHEMA) return false;
    const record = r.record as unknown as PolicyRecordBody;
    if (record.status !== 'applied') return true;
    const live: LiveRevision = { where: r.where, seq: r.link.seq, hashOk: r.hashOk, record };
    let list = this.chains.get(r.link.id);
    if (!list) this.chains.set(r.link.id, (list = []));
    list.push(live);
    if (!this.byRevision.has(record.revision)) this.byRevision.set(record.revision, live);
    return true;
  }

  /** The policy set live on `chain` at `seq`: the last applied record before it (undefined: none in these files). */
  liveAt(chain: string, seq: number): LiveRevision | undefined {
    const list = this.chains.get(chain);
    if (!list) return undefined;
    let found: LiveRevision | undefined;
    for (const l of list) if (l.seq < seq) found = l;
    return found;
  }

  /** An applied record of `revision` on any chain (for its full digest). */
  anyOf(revision: string): LiveRevision | undefined {
    return this.byRevision.get(revision);
  }

  /** Every applied record, chain by chain. */
  all(): LiveRevision[] {
    return [...this.chains.values()].flat();
  }
}

/** A decision event as recorded. */
export interface DecisionEventView {
  readonly schema: typeof EVENT_SCHEMA;
  readonly id: string;
  readonly time: string;
  readonly instance: string;
  readonly source: string;
  readonly requestId: string;
  readonly caller: { readonly id: string; readonly kind: string };
  readonly subject: { readonly id: string; readonly roles: readonly string[]; readonly type: string };
  readonly action: string;
  readonly resource: { readonly id: string; readonly type: string };
  readonly attributes?: { readonly subject?: { readonly attributes?: Record<string, unknown> }; readonly resource?: { readonly attributes?: Record<string, unknown> }; readonly context?: Record<string, unknown> };
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly policy: string;
  readonly rule: string;
  readonly revision: string;
  readonly errors?: readonly { readonly message: string; readonly policy: string; readonly rule: string }[];
  readonly cut?: Readonly<Record<string, unknown>>;
  readonly truncated?: string;
  readonly delivered?: false;
}

export function isDecision(r: TrailRecord): boolean {
  return r.schema === EVENT_SCHEMA;
}
