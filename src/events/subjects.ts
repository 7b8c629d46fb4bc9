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
