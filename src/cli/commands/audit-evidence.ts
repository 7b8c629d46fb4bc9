/**
 * The audit commands over policy evidence: `verdict audit explain`, `replay` and `diff`, and the
 * stored-revision check `verify --revisions` adds (evidence/revision-audit.ts).
 */
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../config/load.js';
import { eventHash } from '../../events/chain.js';
import { MASK } from '../../events/event.js';
import { auditStoredRevisions, type RevisionAudit } from '../../evidence/revision-audit.js';
import { explainDecision, findDecision, numbered, type Explanation } from '../../evidence/explain.js';
import { describeOutcome, describeReasons, RevisionCache } from '../../evidence/replay.js';
import { replayTrail, type ReplayReport } from '../../evidence/replay-trail.js';
import { diffRevisions } from '../../evidence/revision-diff.js';
import { revisionReader, type RevisionReader } from '../../evidence/revision-store.js';
import { NATS_AUTH_FLAGS, natsAuthFromArgs, withCredentialHint } from './nats-flags.js';
import { PolicyHistory } from '../../evidence/trail-reader.js';
import type { Classified } from '../../audit/records.js';
import type { CliOutput } from '../output.js';
import { EXIT, UsageError, type CommandSpec, type FlagSpec, type ParsedArgs } from '../spec.js';

const DEFAULT_SOURCE = 'VERDICT_NATS_URL, else nats://127.0.0.1:4222';

export const REVISIONS_FLAG: FlagSpec = {
  name: 'revisions',
  type: 'string',
  value: 'SOURCE',
  description: 'where the policy text of each revision is kept: nats://HOST:PORT (the Object Store bucket) or a directory of <revision>.json objects',
};

export const REVISIONS_BUCKET_FLAG: FlagSpec = { name: 'revisions-bucket', type: 'string', value: 'NAME', description: 'the Object Store bucket of the revisions', default: DEFAULT_CONFIG.events.revisionsBucket };

const JSON_FLAG: FlagSpec = { name: 'json', type: 'boolean', description: 'print the result as JSON on stdout' };

function readerOf(args: ParsedArgs): RevisionReader {
  const source = args.string('revisions') ?? process.env.VERDICT_NATS_URL ?? DEFAULT_CONFIG.events.natsUrl;
  return revisionReader(source, args.string('revisions-bucket')!, 5000, natsAuthFromArgs(args));
}

const time = (flag: string) => (v: string) => (/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d))?$/.test(v) && !Number.isNaN(Date.parse(v)) ? undefined : `${flag} must be an RFC 3339 time (2026-12-07T10:00:00Z) or a date`);

export const auditExplainCommand: CommandSpec = {
  name: 'audit explain',
  summary: 'show one recorded decision: the request as recorded, the rule that decided with its file and line, and the policy text of its revision',
  positionals: [
    { name: 'DECISION_ID', description: 'the decision id (CheckResponse.decision_id, the event\'s id)', required: true },
    { name: 'FILE', description: 'trail files written by verdict audit consume', required: true, variadic: true },
  ],
  details: [
    'The revision\'s text is read from --revisions and checked: each file against its SHA-256, the set\n' +
      'against the revision and the full digest the chain recorded when it went live. A revision that\n' +
      'was deleted or altered is reported (exit 1). The decision is replayed against that text.',
  ],
  flags: [{ ...REVISIONS_FLAG, defaultNote: DEFAULT_SOURCE }, REVISIONS_BUCKET_FLAG, ...NATS_AUTH_FLAGS, JSON_FLAG],
  examples: [
    { what: 'explain a decision kept by the audit consumer', command: 'verdict audit explain 01a2250a-630e-75e1-a1ed-d38a9f9a4239 /var/lib/verdict-audit/decisions-*.jsonl' },
    { what: 'offline, with revisions copied to a directory', command: 'verdict audit explain 01a2250a-630e-75e1-a1ed-d38a9f9a4239 --revisions ./revisions trail/*.jsonl' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'the decision was found and its revision\'s text verified' },
    { code: EXIT.FAILURE, meaning: 'not found in the files, its record or its revision\'s text is missing or altered, or the store cannot be read' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: explain,
};

export const auditReplayCommand: CommandSpec = {
  name: 'audit replay',
  summary: 'decide recorded decisions again against their recorded revisions and report any that would decide differently, and why',
  positionals: [{ name: 'FILE', description: 'trail files written by verdict audit consume', required: true, variadic: true }],
  details: [
    'Each decision is rebuilt from its event (ids, roles, caller, and the attributes events.includeAttributes\n' +
      'recorded) and decided at its recorded time. A decision whose evaluation read a masked or unrecorded\n' +
      'attribute is counted as not proven by the record, even when it replays the same.',
  ],
  flags: [
    { name: 'id', type: 'string', value: 'DECISION_ID', description: 'replay only this decision' },
    { name: 'from', type: 'string', value: 'TIME', description: 'only decisions made at or after this RFC 3339 time', validate: time('--from') },
    { name: 'to', type: 'string', value: 'TIME', description: 'only decisions made before this RFC 3339 time', validate: time('--to') },
    { ...REVISIONS_FLAG, defaultNote: DEFAULT_SOURCE },
    REVISIONS_BUCKET_FLAG,
    ...NATS_AUTH_FLAGS,
    { name: 'config', type: 'string', value: 'FILE', description: 'the servers\' configuration file: its limits (cost) are used for loading and deciding', defaultNote: 'the default limits' },
    JSON_FLAG,
  ],
  examples: [
    { what: 'replay a whole trail', command: 'verdict audit replay /var/lib/verdict-audit/decisions-*.jsonl' },
    { what: 'one day of decisions, as JSON', command: 'verdict audit replay --from 2026-12-07T00:00:00Z --to 2026-12-08T00:00:00Z --json trail/*.jsonl' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'every decision replayed decides as recorded' },
    { code: EXIT.FAILURE, meaning: 'a decision decides differently, a revision is missing, altered or does not load, or a record is altered' },
    { code: EXIT.USAGE, meaning: 'usage error or invalid --config' },
  ],
  run: replay,
};

export const auditDiffCommand: CommandSpec = {
  name: 'audit diff',
  summary: 'show what changed between two stored policy revisions: files added, removed and changed, with a unified diff',
  positionals: [
    { name: 'REV_A', description: 'the earlier revision (sha256:<16 hex>)', required: true },
    { name: 'REV_B', description: 'the later revision', required: true },
  ],
  flags: [{ ...REVISIONS_FLAG, defaultNote: DEFAULT_SOURCE }, REVISIONS_BUCKET_FLAG, ...NATS_AUTH_FLAGS, JSON_FLAG],
  examples: [{ what: 'what a policy change changed', command: 'verdict audit diff sha256:2a621c3a5002a1c6 sha256:bb7c7ef02af3b454' }],
  exitCodes: [
    { code: EXIT.OK, meaning: 'both revisions were read and verified; the difference is printed' },
    { code: EXIT.FAILURE, meaning: 'a revision is missing or altered, or the store cannot be read' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: diff,
};

/** Shows a recorded attribute tree, one `path = value` line each. */
function attributeLines(value: unknown, path: string, out: string[]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) attributeLines(v, path ? `${path}.${k}` : k, out);
    return;
  }
  out.push(`    ${path} = ${JSON.stringify(value)}${value === MASK ? '   (masked)' : ''}`);
}

function explanationText(x: Explanation, reader: RevisionReader): string {
  const { found } = x;
  const e = found.event;
  const out: string[] = [];
  out.push(`decision ${e.id}: ${describeOutcome(e)}`);
  out.push(`  made ${e.time} by ${e.instance} (${e.source}${e.requestId ? `, request id ${JSON.stringify(e.requestId)}` : ''}${e.delivered === false ? ', never delivered: the caller had gone' : ''})`);
  out.push(`  recorded at ${found.where}: chain ${found.link.id} seq ${found.link.seq}, ${found.hashOk ? 'its hash verifies' : 'ITS HASH DOES NOT MATCH: the record was altered'}`);
  out.push('request as recorded:');
  out.push(`  subject   ${e.subject.type} ${JSON.stringify(e.subject.id)} roles [${e.subject.roles.join(', ')}]`);
  out.push(`  action    ${e.action}`);
  out.push(`  resource  ${e.resource.type} ${JSON.stringify(e.resource.id)}`);
  out.push(`  caller    ${e.caller.kind}${e.caller.id ? ` ${e.caller.id}` : ''}`);
  if (e.attributes) {
    out.push('  attributes:');
    attributeLines(e.attributes, '', out);
  } else out.push(`  attributes: not recorded${e.truncated ? ' (left out: over the event budget)' : ' (events.includeAttributes: none)'}`);
  if (e.errors?.length) for (const err of e.errors) out.push(`  condition error in ${err.policy}#${err.rule}: ${err.message}`);
  if (found.live) {
    const t = found.live.record.text;
    const store = t ? (t.status === 'failed' ? `; storing its text failed: ${t.error ?? ''}` : t.status === 'off' ? '; its text was not stored' : `; text ${t.status} in ${t.bucket}`) : '';
    out.push(`revision ${found.live.record.revision} went live on this chain at seq ${found.live.seq} (${found.live.record.trigger.kind}, ${found.live.record.time}${store}) — ${found.live.where}`);
  } else out.push(`revision ${e.revision}: no policy record of this chain before the decision in these files`);
  if (x.liveMismatch) out.push(`WARNING: ${x.liveMismatch}`);
  if (x.revision.status !== 'ok') {
    out.push(`POLICY TEXT ${x.revision.status.toUpperCase()}: ${x.revision.detail}`);
    return out.join('\n');
  }
  const compiled = x.revision.compiled;
  out.push(`policy text of ${compiled.revision}: verified (${compiled.files.length} files, ${reader.name})`);
  if (x.rule) out.push(`decided by rule ${x.rule.name} (${x.rule.effect}) at ${x.rule.file}:${x.rule.line}`);
  else if (e.rule) out.push(`decided by rule ${e.rule} of ${e.policy}, which the stored text does not hold`);
  else out.push(`no rule applied (${e.reason}); the policies for ${e.resource.type}:`);
  if (x.replay) {
    const r = x.replay;
    if (r.status === 'same') {
      const rests = [...r.masked, ...r.unrecorded];
      out.push(`replayed against this text: decides the same${rests.length ? `, but it read attributes the event does not hold in full (${rests.join(', ')}): not proven by the record alone` : ''}`);
    } else out.push(`replayed against this text: DECIDES ${describeOutcome(r.replayed)}: ${describeReasons(r, e)}`);
  }
  for (const d of x.documents) {
    out.push('');
    out.push(`${d.path} (${compiled.revision}):`);
    out.push(numbered(d.text, x.rule && x.rule.file === d.path ? x.rule.lines : undefined));
  }
  return out.join('\n');
}

async function explain(args: ParsedArgs, io: CliOutput): Promise<number> {
  const [id, ...files] = args.positionals as [string, ...string[]];
  const reader = readerOf(args);
  try {
    const found = await findDecision(files, id);
    if (!found) {
      io.err(`verdict audit explain: decision ${id} is not in ${files.length === 1 ? files[0] : `these ${files.length} files`}`);
      return EXIT.FAILURE;
    }
    const x = await explainDecision(found, new RevisionCache(reader, found.history));
    if (args.flag('json')) {
      const r = x.revision;
      io.out(
        JSON.stringify(
          {
            decision: found.event,
            where: found.where,
            hashOk: found.hashOk,
            live: found.live ? { where: found.live.where, seq: found.live.seq, record: found.live.record } : null,
            liveMismatch: x.liveMismatch ?? null,
            revision: r.status === 'ok' ? { status: 'verified', revision: r.compiled.revision, source: reader.name, files: r.compiled.files.map((f) => ({ path: f.path, sha256: f.sha256 })) } : { status: r.status, detail: r.detail },
            rule: x.rule ?? null,
            documents: x.documents,
            replay: x.replay ? { status: x.replay.status, replayed: describeOutcome(x.replay.replayed), reasons: x.replay.reasons, masked: x.replay.masked, unrecorded: x.replay.unrecorded } : null,
          },
          null,
          2,
        ),
      );
    } else io.out(explanationText(x, reader));
    return x.revision.status === 'ok' && found.hashOk && !x.liveMismatch ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    io.err(`verdict audit explain: ${withCredentialHint((err as Error).message)}`);
    return EXIT.FAILURE;
  } finally {
    await reader.close();
  }
}

function replayText(report: ReplayReport): string[] {
  const out: string[] = [];
  for (const d of report.different) out.push(`${d.where}: DIFFERENT: decision ${d.id} (${d.time}, ${d.revision}) recorded ${d.recorded}, replays ${d.replayed}: ${d.why}`);
  if (report.differentCount > report.different.length) out.push(`… and ${report.differentCount - report.different.length} more differences`);
  for (const u of report.unavailable) out.push(`${u.where}: NOT REPLAYED: decision ${u.id}: ${u.detail}`);
  if (report.unavailableCount > report.unavailable.length) out.push(`… and ${report.unavailableCount - report.unavailable.length} more not replayed`);
  for (const [rev, status] of report.revisions) out.push(`revision ${rev}: ${status}`);
  if (report.sameUnproven > 0) {
    const paths = [...report.unprovenPaths.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([p, n]) => `${p} (${n})`);
    out.push(`${report.sameUnproven} of the decisions that replay the same read attributes the events do not hold in full: ${paths.join(', ')}`);
  }
  const parts = [`${report.same} same`, `${report.differentCount} different`];
  if (report.unavailableCount) parts.push(`${report.unavailableCount} not replayed (revision unavailable)`);
  if (report.notByRules) parts.push(`${report.notByRules} decided before any rule ran (not replayed)`);
  if (report.alteredRecords) parts.push(`${report.alteredRecords} altered records skipped`);
  out.push(`replayed ${report.replayed} decisions against ${[...report.revisions.keys()].length} revisions: ${parts.join(', ')}`);
  return out;
}

async function replay(args: ParsedArgs, io: CliOutput): Promise<number> {
  let limits = DEFAULT_CONFIG.limits;
  const configFile = args.string('config');
  if (configFile) {
    try {
      limits = loadConfig({ configFile }, {}).limits;
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  const from = args.string('from');
  const to = args.string('to');
  const reader = readerOf(args);
  try {
    const history = new PolicyHistory();
    const revisions = new RevisionCache(reader, history, { limits });
    const report = await replayTrail(args.positionals, { id: args.string('id'), from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined }, revisions, history, limits);
    if (args.string('id') !== undefined && report.replayed + report.unavailableCount + report.notByRules + report.alteredRecords === 0) {
      io.err(`verdict audit replay: decision ${args.string('id')!} is not in these files`);
      return EXIT.FAILURE;
    }
    if (args.flag('json')) io.out(JSON.stringify({ ...report, unprovenPaths: Object.fromEntries(report.unprovenPaths), revisions: Object.fromEntries(report.revisions) }, null, 2));
    else for (const line of replayText(report)) io.out(line);
    return report.differentCount + report.unavailableCount + report.alteredRecords === 0 ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    io.err(`verdict audit replay: ${withCredentialHint((err as Error).message)}`);
    return EXIT.FAILURE;
  } finally {
    await reader.close();
  }
}

async function diff(args: ParsedArgs, io: CliOutput): Promise<number> {
  const [a, b] = args.positionals as [string, string];
  const reader = readerOf(args);
  try {
    const [ra, rb] = [await reader.get(a), await reader.get(b)];
    let failed = false;
    for (const r of [ra, rb]) {
      if (r.status !== 'found') {
        io.err(`verdict audit diff: ${r.status.toUpperCase()}: ${r.detail}`);
        failed = true;
      }
    }
    if (ra.status !== 'found' || rb.status !== 'found' || failed) return EXIT.FAILURE;
    const d = diffRevisions({ revision: a, files: ra.files }, { revision: b, files: rb.files });
    if (args.flag('json')) {
      io.out(JSON.stringify({ from: a, to: b, added: d.added.map((f) => ({ path: f.path, sha256: f.sha256 })), removed: d.removed.map((f) => ({ path: f.path, sha256: f.sha256 })), changed: d.changed, unchanged: d.unchanged }, null, 2));
      return EXIT.OK;
    }
    io.out(`${a} (${ra.files.length} files) → ${b} (${rb.files.length} files): ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed, ${d.unchanged} unchanged`);
    for (const f of d.added) io.out(`added    ${f.path} (sha256 ${f.sha256})`);
    for (const f of d.removed) io.out(`removed  ${f.path} (sha256 ${f.sha256})`);
    for (const c of d.changed) io.out(`changed  ${c.path} (sha256 ${c.from} → ${c.to})`);
    for (const c of d.changed) io.out(c.patch.replace(/^=+\n/, '').trimEnd());
    for (const f of d.added) io.out(`--- /dev/null\n+++ b/${f.path}\n${f.text.trimEnd().split('\n').map((l) => `+${l}`).join('\n')}`);
    return EXIT.OK;
  } catch (err) {
    io.err(`verdict audit diff: ${withCredentialHint((err as Error).message)}`);
    return EXIT.FAILURE;
  } finally {
    await reader.close();
  }
}

/** verify --revisions: collects the policy records while the files are verified, then checks the store. */
export class VerifyRevisions {
  private readonly history = new PolicyHistory();

  constructor(private readonly reader: RevisionReader) {}

  static fromArgs(args: ParsedArgs): VerifyRevisions | undefined {
    return args.string('revisions') !== undefined ? new VerifyRevisions(readerOf(args)) : undefined;
  }

  readonly onChained = (c: Extract<Classified, { type: 'chained' }>, where: string): void => {
    this.history.add({ where, schema: c.schema, record: c.record, link: c.link, hashOk: eventHash(c.record) === c.link.hash });
  };

  async run(): Promise<RevisionAudit> {
    try {
      return await auditStoredRevisions(this.history.all().filter((l) => l.hashOk), this.reader);
    } finally {
      await this.reader.close();
    }
  }

  static print(a: RevisionAudit, io: CliOutput): void {
    for (const f of a.findings) io.err(`${f.where}: ${f.kind.toUpperCase()}: ${f.message}`);
    for (const n of a.notes) io.out(`note: ${n}`);
    io.out(`stored policy revisions: ${a.checked} checked, ${a.verified} verified${a.findings.length ? `, ${a.findings.length} missing or altered` : ''}`);
  }
}
