import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/**
 * Ed25519 keys for signing chain checkpoints (Verdict) and keeper receipts (the audit consumer).
 * Private keys are PKCS#8 PEM files, public keys SPKI PEM; a key is named by its key id, the first
 * 16 hex digits of the SHA-256 of the raw 32-byte public key — short enough to print, and a
 * different key can only claim an id it would then fail to verify under.
 */
export class KeyError extends Error {
  readonly code = 'KEY_INVALID';
}

export interface SigningKey {
  readonly id: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The file it came from (for messages). */
  readonly file: string;
}

export interface GeneratedKey {
  readonly id: string;
  /** PKCS#8 PEM. */
  readonly privatePem: string;
  /** SPKI PEM. */
  readonly publicPem: string;
}

/** The raw 32 bytes of an Ed25519 public key (the tail of its 44-byte SPKI DER). */
function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32);
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16);
}

export function generateSigningKey(): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    id: keyIdOf(publicKey),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Parses a PEM private key; it must be Ed25519. */
export function parsePrivateKey(pem: string, file: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new KeyError(`${file}: not a PEM private key (${(err as Error).message}); create one with \`verdict keys generate --out ${file}\``);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new KeyError(`${file}: is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519 keys (\`verdict keys generate\`)`);
  }
  const publicKey = createPublicKey(privateKey);
  return { id: keyIdOf(publicKey), privateKey, publicKey, file };
}

/**
 * Loads a private signing key. Returns a warning when the file can be read by other users: the
 * key proves authorship only while nobody else holds it (a mounted secret is often 0644, so this
 * warns instead of refusing).
 */
export function loadSigningKey(file: string): { key: SigningKey; warning?: string } {
  let pem: string;
  let mode: number;
  try {
    pem = readFileSync(file, 'utf8');
    mode = statSync(file).mode;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KeyError(`${file}: cannot read the signing key (${e.code ?? e.message})`);
  }
  const key = parsePrivateKey(pem, file);
  const warning = (mode & 0o077) !== 0 ? `${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it` : undefined;
  return warning ? { key, warning } : { key };
}

/** Parses a PEM public key; it must be Ed25519. */
export function parsePublicKey(pem: string, where: string): KeyObject {
  // createPublicKey() would accept a private key too (and derive its public half): a private key has no place in a keyring.
  if (/PRIVATE KEY/.test(pem)) throw new KeyError(`${where}: not a PEM public key: this is a private key; give its public key (\`verdict keys show FILE\`)`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new KeyError(`${where}: not a PEM public key (${(err as Error).message})`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new KeyError(`${where}: is a ${publicKey.asymmetricKeyType ?? 'unknown'} key; only Ed25519 keys are accepted`);
  return publicKey;
}

/** Ed25519 signature of the UTF-8 bytes of `text`, base64url without padding. */
export function signText(key: SigningKey, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64url');
}

const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

export function verifyText(publicKey: KeyObject, text: string, signature: string): boolean {
  if (!SIGNATURE.test(signature)) return false;
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
