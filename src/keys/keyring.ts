import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { yamlLibrary } from '../files/yaml-lazy.js';
import { KeyError, keyIdOf, parsePublicKey, verifyText } from './signing-key.js';

/**
 * A keyring: the public keys a verifier trusts, and what each may sign. YAML or JSON:
 *
 *   keys:
 *     - name: pdp-eu                 # optional label, shown in reports
 *       id: 5b1e9a0c4d2f7e13         # optional; must be the key's id if given
 *       instances: ["pdp-eu-*"]      # instance ids whose checkpoints this key may sign ("*" = any run of characters)
 *       keeper: false                # true: may sign audit keeper receipts
 *       publicKey: |
 *         -----BEGIN PUBLIC KEY-----
 *         ...
 */
export interface KeyringEntry {
  readonly id: string;
  readonly name: string | undefined;
  readonly publicKey: KeyObject;
  readonly instances: readonly string[];
  readonly keeper: boolean;
  readonly patterns: readonly RegExp[];
}

export type SignatureCheck =
  | { readonly status: 'valid'; readonly entry: KeyringEntry }
  | { readonly status: 'unknown-key' | 'key-not-allowed' | 'bad-signature'; readonly detail: string };

const MAX_KEYS = 10_000;
const ENTRY_FIELDS = ['id', 'name', 'publicKey', 'instances', 'keeper'];

/** "*" matches any run of characters; everything else literally. */
function pattern(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
}

export class Keyring {
  private readonly byId = new Map<string, KeyringEntry>();

  constructor(entries: readonly KeyringEntry[]) {
    for (const e of entries) this.byId.set(e.id, e);
  }

  get size(): number {
    return this.byId.size;
  }

  entries(): KeyringEntry[] {
    return [...this.byId.values()];
  }

  /** "name (id)" or the id: how reports name a key. */
  label(id: string): string {
    const e = this.byId.get(id);
    return e?.name ? `${e.name} (${id})` : id;
  }

  /** Verifies a checkpoint signature: the key must be known and allowed to sign for `instance`. */
  checkCheckpoint(keyId: string, instance: string, text: string, signature: string): SignatureCheck {
    const entry = this.byId.get(keyId);
    if (!entry) return { status: 'unknown-key', detail: `key ${keyId} is not in the keyring` };
    if (!entry.patterns.some((p) => p.test(instance))) {
      return { status: 'key-not-allowed', detail: `key ${this.label(keyId)} may not sign for instance "${instance}" (allowed: ${entry.instances.join(', ') || 'none'})` };
    }
    if (!verifyText(entry.publicKey, text, signature)) return { status: 'bad-signature', detail: `the signature does not verify under key ${this.label(keyId)}` };
    return { status: 'valid', entry };
  }

  /** Verifies a keeper receipt signature: the key must be known and marked `keeper: true`. */
  checkReceipt(keyId: string, text: string, signature: string): SignatureCheck {
    const entry = this.byId.get(keyId);
    if (!entry) return { status: 'unknown-key', detail: `key ${keyId} is not in the keyring` };
    if (!entry.keeper) return { status: 'key-not-allowed', detail: `key ${this.label(keyId)} is not a keeper key (keeper: true)` };
    if (!verifyText(entry.publicKey, text, signature)) return { status: 'bad-signature', detail: `the signature does not verify under key ${this.label(keyId)}` };
    return { status: 'valid', entry };
  }

  static load(file: string): Keyring {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KeyError(`keyring ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return Keyring.parse(text, file);
  }

  /** Parses a keyring, collecting every problem into one error. */
  static parse(text: string, file: string): Keyring {
    let doc: unknown;
    try {
      doc = yamlLibrary().parse(text, { maxAliasCount: 0 });
    } catch (err) {
      throw new KeyError(`keyring ${file}: not valid YAML or JSON (${(err as Error).message.split('\n')[0]})`);
    }
    const keys = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0) throw new KeyError(`keyring ${file}: needs a "keys" list with at least one key (\`verdict keys generate --keyring ${file}\` adds one)`);
    if (keys.length > MAX_KEYS) throw new KeyError(`keyring ${file}: ${keys.length} keys; at most ${MAX_KEYS}`);
    const problems: string[] = [];
    const entries: KeyringEntry[] = [];
    const seen = new Set<string>();
    keys.forEach((raw, i) => {
      const where = `keys[${i}]`;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        problems.push(`${where}: must be a mapping`);
        return;
      }
      const r = raw as Record<string, unknown>;
      for (const k of Object.keys(r)) if (!ENTRY_FIELDS.includes(k)) problems.push(`${where}.${k}: unknown field (known: ${ENTRY_FIELDS.join(', ')})`);
      if (typeof r.publicKey !== 'string') {
        problems.push(`${where}.publicKey: must be a PEM public key ("-----BEGIN PUBLIC KEY----- …")`);
        return;
      }
      let publicKey: KeyObject;
      try {
        publicKey = parsePublicKey(r.publicKey, `${where}.publicKey`);
      } catch (err) {
        problems.push((err as Error).message);
        return;
      }
      const id = keyIdOf(publicKey);
      if (r.id !== undefined && r.id !== id) problems.push(`${where}.id: "${String(r.id)}" is not this key's id (${id})`);
      if (r.name !== undefined && (typeof r.name !== 'string' || r.name === '' || r.name.length > 128)) problems.push(`${where}.name: must be a string of 1 to 128 characters`);
      const instances = r.instances ?? [];
      if (!Array.isArray(instances) || !instances.every((p) => typeof p === 'string' && p !== '' && p.length <= 256)) {
        problems.push(`${where}.instances: must be a list of instance ids or patterns such as "pdp-eu-*"`);
        return;
      }
      if (r.keeper !== undefined && typeof r.keeper !== 'boolean') problems.push(`${where}.keeper: must be true or false`);
      const keeper = r.keeper === true;
      if (instances.length === 0 && !keeper) problems.push(`${where}: signs nothing; give instances (checkpoint signer) or keeper: true`);
      if (seen.has(id)) problems.push(`${where}: key ${id} is listed twice`);
      seen.add(id);
      entries.push({ id, name: typeof r.name === 'string' ? r.name : undefined, publicKey, instances: instances as string[], keeper, patterns: (instances as string[]).map(pattern) });
    });
    if (problems.length > 0) throw new KeyError(`keyring ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    return new Keyring(entries);
  }
}
