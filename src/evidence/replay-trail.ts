/**
 * `verdict audit replay`: every decision of the trail files (or one, or those of a time range)
 * replayed against the stored text of its recorded revision (replay.ts), with a report of the
 * decisions that would decide differently and why, and of those that could not be replayed.
 */
import type { CostLimits } from '../engine/index.js';
import { describeOutcome, describeReasons, NOT_BY_RULES, replayEvent, type ReplayReason, type RevisionCache } from './replay.js';
import { chainedRecords, isDecision, type DecisionEventView, type PolicyHistory } from './trail-reader.js';

export interface ReplayFilter {
  readonly id?: string;
  /** Decisions at or after this time. */
  readonly from?: Date;
  /** Decisions before this time. */
  readonly to?: Date;
}

export interface ReplayDifference {
  readonly id: string;
  readonly where: string;
  readonly time: string;
  readonly revision: string;
  readonly recorded: string;
  readonly replayed: string;
  readonly reasons: readonly ReplayReason[];
  readonly why: string;
  readonly masked: readonly string[];
  readonly unrecorded: readonly string[];
}

export interface ReplayReport {
  /** Decisions replayed (those decided by the rules, whose revision could be read). */
  replayed: number;
  same: number;
  /** Of `same`: the evaluation read masked or unrecorded attributes, so the record alone does not prove it. */
  sameUnproven: number;
  /** Paths that made same decisions unproven, with how often. */
  readonly unprovenPaths: Map<string, number>;
  readonly different: ReplayDifference[];
  /** Decisions whose revision is missing, altered or does not load. */
  readonly unavailable: { id: string; where: string; revision: string; detail: string }[];
  /** Decided before any rule ran (UNAUTHENTICATED, NO_ROUTE, INTERNAL_ERROR): nothing to replay. */
  notByRules: number;
  /** Records whose own hash does not match (altered): not replayed, counted. */
  alteredRecords: number;
  /** Each revision met, and what reading it gave. */
  readonly revisions: Map<string, string>;
  /** More differences or unavailable decisions than kept (the counts are exact). */
  differentCount: number;
  unavailableCount: number;
}

const KEEP = 10_000;

export async function replayTrail(files: readonly string[], filter: ReplayFilter, revisions: RevisionCache, history: PolicyHistory, limits?: Pick<CostLimits, 'maxDecisionCost'>): Promise<ReplayReport> {
  const report: ReplayReport = { replayed: 0, same: 0, sameUnproven: 0, unprovenPaths: new Map(), different: [], unavailable: [], notByRules: 0, alteredRecords: 0, revisions: new Map(), differentCount: 0, unavailableCount: 0 };
  for await (const r of chainedRecords(files)) {
    if (history.add(r) || !isDecision(r)) continue;
    const e = r.record as unknown as DecisionEventView;
    if (filter.id !== undefined && e.id !== filter.id) continue;
    const t = Date.parse(e.time);
    if ((filter.from && t < filter.from.getTime()) || (filter.to && t >= filter.to.getTime())) continue;
    if (!r.hashOk) {
      report.alteredRecords++;
      continue;
    }
    if (NOT_BY_RULES.has(e.reason)) {
      report.notByRules++;
      continue;
    }
    const rev = await revisions.get(e.revision);
    report.revisions.set(e.revision, rev.status === 'ok' ? `verified (${rev.compiled.files.length} files, ${rev.compiled.lookup.where})` : `${rev.status}: ${rev.detail}`);
    if (rev.status !== 'ok') {
      report.unavailableCount++;
      if (report.unavailable.length < KEEP) report.unavailable.push({ id: e.id, where: r.where, revision: e.revision, detail: rev.detail });
      continue;
    }
    report.replayed++;
    const o = replayEvent(e, rev.compiled, limits);
    if (o.status === 'same') {
      report.same++;
      if (o.masked.length + o.unrecorded.length > 0) {
        report.sameUnproven++;
        for (const p of [...o.masked, ...o.unrecorded]) report.unprovenPaths.set(p, (report.unprovenPaths.get(p) ?? 0) + 1);
      }
      continue;
    }
    report.differentCount++;
    if (report.different.length < KEEP) {
      report.different.push({
        id: e.id,
        where: r.where,
        time: e.time,
        revision: e.revision,
        recorded: describeOutcome(e),
        replayed: describeOutcome(o.replayed),
        reasons: o.reasons,
        why: describeReasons(o, e),
        masked: o.masked,
        unrecorded: o.unrecorded,
      });
    }
  }
  return report;
}
