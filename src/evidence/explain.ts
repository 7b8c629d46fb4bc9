/**
 * `verdict audit explain`: one decision from the trail files, with the rule that decided, its file
 * and line, and the policy text of the revision it was decided under, read from the revision store
 * and checked against the chain's record of that revision.
 */
import type { ChainLink } from '../audit/records.js';
import type { ResourcePolicyDocument, RuleDefinition } from '../policy/document.js';
import { NOT_BY_RULES, replayEvent, type CompiledRevision, type ReplayOutcome, type RevisionCache, type RevisionResult } from './replay.js';
import { chainedRecords, isDecision, PolicyHistory, type DecisionEventView, type LiveRevision } from './trail-reader.js';

export interface FoundDecision {
  readonly event: DecisionEventView;
  readonly where: string;
  readonly link: ChainLink;
  readonly hashOk: boolean;
  /** The applied policy record of the decision's chain that was live when it was made. */
  readonly live: LiveRevision | undefined;
  readonly history: PolicyHistory;
}

/** Scans the trail files for the decision `id` (and the policy records before it). */
export async function findDecision(files: readonly string[], id: string): Promise<FoundDecision | undefined> {
  const history = new PolicyHistory();
  for await (const r of chainedRecords(files)) {
    if (history.add(r)) continue;
    if (isDecision(r) && r.record.id === id) {
      return { event: r.record as unknown as DecisionEventView, where: r.where, link: r.link, hashOk: r.hashOk, live: history.liveAt(r.link.id, r.link.seq), history };
    }
  }
  return undefined;
}

export interface RuleLocation {
  readonly policy: string;
  readonly file: string;
  readonly name: string;
  readonly effect: string;
  readonly line: number;
  readonly column: number;
  /** The lines of the rule's entry (1-based, inclusive). */
  readonly lines: readonly [number, number];
}

/** The lines of a rule's entry: from its first line while the lines below are indented under it. */
function ruleLines(text: string, rule: RuleDefinition): [number, number] {
  const lines = text.split('\n');
  const from = rule.position.line;
  // The entry's keys are indented like the key after its "- " (or like its first line).
  const first = lines[from - 1] ?? '';
  const item = /^(\s*-\s+)/.exec(first);
  const indent = item ? item[1]!.length : first.length - first.trimStart().length;
  let to = from;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.length - line.trimStart().length < indent) break;
    to = i + 1;
  }
  return [from, to];
}

export function locateRule(compiled: CompiledRevision, policy: string, name: string): RuleLocation | undefined {
  const doc: ResourcePolicyDocument | undefined = compiled.documents.get(policy);
  const rule = doc?.rules.find((r) => r.name === name);
  if (!doc || !rule) return undefined;
  const text = compiled.files.find((f) => f.path === doc.file)?.text ?? '';
  return { policy, file: doc.file, name, effect: rule.effect, line: rule.position.line, column: rule.position.column, lines: ruleLines(text, rule) };
}

export interface Explanation {
  readonly found: FoundDecision;
  readonly revision: RevisionResult;
  /** The decision names a revision other than the one its chain's records say was live. */
  readonly liveMismatch: string | undefined;
  readonly rule: RuleLocation | undefined;
  /** The documents shown: the deciding rule's file, or every file governing the resource type when no rule decided. */
  readonly documents: readonly { readonly path: string; readonly text: string }[];
  readonly replay: ReplayOutcome | undefined;
}

export async function explainDecision(found: FoundDecision, revisions: RevisionCache): Promise<Explanation> {
  const e = found.event;
  const liveMismatch = found.live && found.live.record.revision !== e.revision ? `the decision names revision ${e.revision}, but the chain's last policy record before it (${found.live.where}) put ${found.live.record.revision} live` : undefined;
  const revision = await revisions.get(e.revision);
  if (revision.status !== 'ok') return { found, revision, liveMismatch, rule: undefined, documents: [], replay: undefined };
  const compiled = revision.compiled;
  const rule = e.rule ? locateRule(compiled, e.policy, e.rule) : undefined;
  let paths: string[];
  if (rule) paths = [rule.file];
  else {
    // No rule decided: the documents that could have (the type's own and the "*" ones).
    paths = [...new Set([...compiled.documents.values()].filter((d) => d.resource === e.resource.type || d.resource === '*').map((d) => d.file))];
  }
  const documents = paths.map((p) => ({ path: p, text: compiled.files.find((f) => f.path === p)?.text ?? '' }));
  const replay = NOT_BY_RULES.has(e.reason) ? undefined : replayEvent(e, compiled);
  return { found, revision, liveMismatch, rule, documents, replay };
}

/** The text with line numbers; lines in `mark` are flagged with ">". */
export function numbered(text: string, mark?: readonly [number, number]): string {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const width = String(lines.length).length;
  return lines.map((l, i) => `${mark && i + 1 >= mark[0] && i + 1 <= mark[1] ? '>' : ' '} ${String(i + 1).padStart(width)} | ${l}`).join('\n');
}
