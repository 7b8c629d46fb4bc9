import { createHash } from 'node:crypto';

/** Longest subject token taken from a resource type or instance id as is (bytes = characters: ASCII only). */
export const MAX_SUBJECT_TOKEN = 64;
/** Marks a token that stands for a type too long or unsafe to appear in a subject (no plain token holds it). */
export const ENCODED_TOKEN_MARK = '~';

/**
 * A NATS subject token from an arbitrary string, always safe and bounded. Ordinary values keep the
 * form consumers and docs know: dots, wildcards and whitespace become "_" (`report.v2` →
 * `report_v2`). Anything else — longer than 64 characters, or holding a character outside
 * printable ASCII, or a "~" — becomes "~" and the first 32 hex digits of the SHA-256 of its UTF-8
 * bytes: a subject can never outgrow NATS's control line, and the event still holds the value in full.
 */
export function subjectToken(value: string): string {
  const token = value.replace(/[.*>\s]/g, '_');
  if (token === '') return '_';
  if (token.length <= MAX_SUBJECT_TOKEN && /^[\x21-\x7d]+$/.test(token)) return token; // \x7e is "~"
  return encodedToken(value);
}

/** `~` + 32 hex digits of sha256(UTF-8 of value): how a long or unsafe value appears in a subject. */
export function encodedToken(value: string): string {
  return ENCODED_TOKEN_MARK + createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 32);
}

/** `<prefix>.<resource type>.<allow|deny>`: consumers can subscribe to e.g. `<prefix>.*.deny`. */
export function decisionSubject(prefix: string, resourceType: string, effect: 'ALLOW' | 'DENY'): string {
  return `${prefix}.${subjectToken(resourceType)}.${effect === 'ALLOW' ? 'allow' : 'deny'}`;
}

/** Chain checkpoints live beside the events, under a name no resource type can produce (4 tokens). */
export function checkpointSubject(prefix: string, instance: string): string {
  return `${prefix}._chain.${subjectToken(instance)}.checkpoint`;
}

/**
 * Other chained records of an instance (`refused`, `lost`): 4 tokens like checkpoints, so no
 * decision subject (3 tokens) can collide with them and `<prefix>.*.deny` never matches them.
 */
export function recordSubject(prefix: string, instance: string, kind: 'refused' | 'lost'): string {
  return `${prefix}._chain.${subjectToken(instance)}.${kind}`;
}

/**
 * Policy change records (`verdict.policy.v1`) of an instance: `<prefix>._policy.<instance>.<applied|rejected>`.
 * Four tokens, so no decision subject (`<prefix>.<type>.<allow|deny>`, three) is one, `<prefix>.*.*`
 * matches decisions only, and `<prefix>._policy.*.*` every instance's policy changes.
 */
export function policySubject(prefix: string, instance: string, status: 'applied' | 'rejected'): string {
  return `${prefix}._policy.${subjectToken(instance)}.${status}`;
}

/** True for a subject this version could have built under `prefix`: bounded, and only safe tokens. */
export function isSafeSubject(prefix: string, subject: string): boolean {
  if (!subject.startsWith(`${prefix}.`) || subject.length > prefix.length + 2 * (MAX_SUBJECT_TOKEN + 1) + 16) return false;
  return subject
    .slice(prefix.length + 1)
    .split('.')
    .every((t) => t.length > 0 && t.length <= MAX_SUBJECT_TOKEN && /^[\x21-\x7e]+$/.test(t) && !/[*>]/.test(t));
}

/**
 * The subjects of one publisher's decision events. Memoised per (type, effect): a regex per event
 * adds up on the hot path; bounded like any cache of input.
 */
export class DecisionSubjects {
  private readonly memo = new Map<string, string>();

  constructor(readonly prefix: string) {}

  of(resourceType: string, effect: 'ALLOW' | 'DENY'): string {
    const key = `${effect}\0${resourceType}`;
    let subject = this.memo.get(key);
    if (subject === undefined) {
      subject = decisionSubject(this.prefix, resourceType, effect);
      // Long keys are not kept: the memo is for the few types a deployment has, not for attackers.
      if (this.memo.size < 10_000 && resourceType.length <= MAX_SUBJECT_TOKEN) this.memo.set(key, subject);
    }
    return subject;
  }

  /**
   * A spooled event keeps the subject it was built with. It is re-addressed under the current
   * prefix if the prefix changed since (the stream may not capture the old one), and rebuilt from
   * the event if it is not a subject this version would build (a spool written by an older version
   * could hold a subject too long for NATS's control line, which would drop the connection at every
   * re-send).
   */
  current(spooled: { readonly subject: string; readonly payload: string }): string {
    if (isSafeSubject(this.prefix, spooled.subject)) return spooled.subject;
    try {
      const event = JSON.parse(spooled.payload) as { schema?: string; instance?: string; resource?: { type?: string }; decision?: 'ALLOW' | 'DENY' };
      if (event.schema === 'verdict.publish-refused.v1') return recordSubject(this.prefix, String(event.instance ?? ''), 'refused');
      if (event.schema === 'verdict.events-lost.v1') return recordSubject(this.prefix, String(event.instance ?? ''), 'lost');
      if (event.schema === 'verdict.policy.v1') return policySubject(this.prefix, String(event.instance ?? ''), (event as { status?: string }).status === 'rejected' ? 'rejected' : 'applied');
      return this.of(String(event.resource?.type ?? 'unknown'), event.decision === 'ALLOW' ? 'ALLOW' : 'DENY');
    } catch {
      return `${this.prefix}._unknown.deny`;
    }
  }
}
