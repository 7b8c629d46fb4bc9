/** A NATS subject token from an arbitrary string: dots, wildcards and whitespace become "_". */
export function subjectToken(value: string): string {
  const token = value.replace(/[.*>\s]/g, '_');
  return token === '' ? '_' : token;
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
      if (this.memo.size < 10_000) this.memo.set(key, subject);
    }
    return subject;
  }

  /**
   * A spooled event keeps the subject it was built with; if the prefix changed since, it is
   * re-addressed under the current one, which the stream captures (the old one may not).
   */
  current(spooled: { readonly subject: string; readonly payload: string }): string {
    if (spooled.subject.startsWith(`${this.prefix}.`)) return spooled.subject;
    try {
      const event = JSON.parse(spooled.payload) as { resource?: { type?: string }; decision?: 'ALLOW' | 'DENY' };
      return this.of(event.resource?.type ?? 'unknown', event.decision === 'ALLOW' ? 'ALLOW' : 'DENY');
    } catch {
      return `${this.prefix}._unknown.deny`;
    }
  }
}
