import { policySubject } from '../events/subjects.js';

/**
 * The own fields of a `verdict.policy.v1` record (src/evidence/policy-record.ts), as the keeper and
 * `verify` check them: the common chained fields are checked by classifyRecord. Fields a later v1
 * record adds are allowed.
 */
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const HEX64 = /^[0-9a-f]{64}$/;
const TEXT_STATUSES = ['stored', 'present', 'failed', 'off'];

function filesProblem(name: string, v: unknown): string | undefined {
  if (!Array.isArray(v)) return `${name} must be a list`;
  for (const f of v) {
    if (!isObj(f) || !isStr(f.path) || !isStr(f.sha256) || !HEX64.test(f.sha256)) return `${name} must be a list of {path, sha256}`;
    if (f.previousSha256 !== undefined && (!isStr(f.previousSha256) || !HEX64.test(f.previousSha256))) return `${name}: previousSha256 must be 64 hex digits`;
  }
  return undefined;
}

/** What is wrong with a policy record's own fields, or undefined. */
export function policyRecordProblem(r: Obj): string | undefined {
  if (!isStr(r.id) || r.id === '') return 'id must be a string';
  if (r.status !== 'applied' && r.status !== 'rejected') return 'status must be "applied" or "rejected"';
  if (!isObj(r.trigger) || !isStr(r.trigger.kind) || (r.trigger.detail !== undefined && !isStr(r.trigger.detail))) return 'trigger must be {kind, detail?} strings';
  if (!isStr(r.revision)) return 'revision must be a string';
  if (r.previousRevision !== null && !isStr(r.previousRevision)) return 'previousRevision must be a string or null';
  if (r.revisionSha256 !== undefined && (!isStr(r.revisionSha256) || !HEX64.test(r.revisionSha256))) return 'revisionSha256 must be 64 hex digits';
  if (r.files !== undefined && (typeof r.files !== 'number' || !Number.isSafeInteger(r.files) || r.files < 0)) return 'files must be a count';
  for (const name of ['added', 'changed', 'removed']) {
    const p = filesProblem(name, r[name]);
    if (p) return p;
  }
  if (r.errors !== undefined) {
    if (!Array.isArray(r.errors) || !r.errors.every((e) => isObj(e) && isStr(e.file) && isStr(e.code) && isStr(e.message) && typeof e.line === 'number' && typeof e.column === 'number')) {
      return 'errors must be a list of {file, line, column, code, message}';
    }
  }
  if (r.message !== undefined && !isStr(r.message)) return 'message must be a string';
  if (r.text !== undefined && (!isObj(r.text) || !TEXT_STATUSES.includes(String(r.text.status)) || !isStr(r.text.bucket))) return 'text must be {status, bucket, …}';
  return undefined;
}

/** A policy record must sit on `<prefix>._policy.<instance>.<status>`. */
export function policySubjectProblem(subject: string, r: Obj): string | undefined {
  const tail = policySubject('', String(r.instance), r.status === 'rejected' ? 'rejected' : 'applied');
  if (subject.length > tail.length && subject.endsWith(tail)) return undefined;
  return `stored on subject "${subject.slice(0, 200)}", but such a record is published on "<prefix>${tail.slice(0, 200)}"`;
}
