/**
 * `verdict audit verify --revisions`: the stored text of every revision the trail's policy records
 * put live must still be there and intact (its files must hash to the full digest the chain
 * recorded). A deleted, replaced or damaged copy is a finding, and so is a revision whose text was
 * never stored (its record says why).
 */
import type { RevisionReader } from './revision-store.js';
import type { LiveRevision } from './trail-reader.js';

export interface RevisionFinding {
  readonly kind: 'revision-missing' | 'revision-altered';
  readonly where: string;
  readonly revision: string;
  readonly message: string;
}

export interface RevisionAudit {
  /** Distinct revisions checked. */
  readonly checked: number;
  readonly verified: number;
  readonly findings: readonly RevisionFinding[];
  readonly notes: readonly string[];
}

export async function auditStoredRevisions(live: readonly LiveRevision[], reader: RevisionReader): Promise<RevisionAudit> {
  const findings: RevisionFinding[] = [];
  const notes: string[] = [];
  const seen = new Map<string, LiveRevision>();
  for (const l of live) {
    const key = `${l.record.revision}\0${l.record.revisionSha256 ?? ''}`;
    if (!seen.has(key)) seen.set(key, l);
  }
  let verified = 0;
  for (const l of seen.values()) {
    const { revision, revisionSha256, text } = l.record;
    if (text?.status === 'off') {
      notes.push(`${l.where}: revision ${revision} went live on an instance that does not store policy text (events.revisionsBucket: "")`);
      continue;
    }
    const found = await reader.get(revision, { revisionSha256 });
    if (found.status === 'found') {
      verified++;
      if (text?.digest && text.digest !== found.digest) notes.push(`${l.where}: revision ${revision} was stored again since it went live (other bytes, same files): ${found.where}`);
      continue;
    }
    if (found.status === 'altered') {
      findings.push({ kind: 'revision-altered', where: l.where, revision, message: found.detail });
      continue;
    }
    const why = text?.status === 'failed' ? `its text was never stored (the record says: ${text.error ?? 'no reason'})` : `it was ${text?.status ?? 'stored'} when it went live and has been deleted since`;
    findings.push({ kind: 'revision-missing', where: l.where, revision, message: `revision ${revision} went live here, but ${found.where} does not hold it: ${why}` });
  }
  return { checked: seen.size, verified, findings, notes };
}
