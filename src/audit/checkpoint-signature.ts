import { checkpointSigningText, CHECKPOINT_SCHEMA_V1 } from '../events/checkpoint.js';
import type { Keyring } from '../keys/keyring.js';
import type { SignatureState } from './findings.js';
import { chainInstance, type ParsedCheckpoint } from './records.js';

/**
 * The signature state of a checkpoint: with a keyring, the key must be known and allowed to sign
 * for the chain's instance (and the instance the checkpoint names), and the signature must verify.
 */
export function checkpointSignature(keyring: Keyring | undefined, cp: ParsedCheckpoint, record: Record<string, unknown>): { state: SignatureState; detail: string } {
  if (!keyring) return { state: 'unchecked', detail: '' };
  if (cp.schema === CHECKPOINT_SCHEMA_V1) return { state: 'unsigned', detail: `is unsigned (${CHECKPOINT_SCHEMA_V1})` };
  if (!cp.sig) return { state: 'unsigned', detail: 'is unsigned (no sig: the instance has no signing key)' };
  const text = checkpointSigningText(record);
  for (const instance of new Set([chainInstance(cp.chain), cp.instance])) {
    const r = keyring.checkCheckpoint(cp.sig.key, instance, text, cp.sig.value);
    if (r.status !== 'valid') return { state: r.status, detail: r.detail };
  }
  return { state: 'valid', detail: '' };
}
