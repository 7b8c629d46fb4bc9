import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument, stringify } from 'yaml';
import { Keyring } from '../../keys/keyring.js';
import { generateSigningKey, KeyError, keyIdOf, parsePrivateKey, parsePublicKey } from '../../keys/signing-key.js';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import type { CliOutput } from '../output.js';

export const keysUsage = [
  'verdict keys generate --out FILE [--instances PATTERN,...] [--keeper] [--name NAME] [--keyring FILE] [--public-out FILE] [--json]',
  '                                a new Ed25519 signing key (private key written with mode 0600); prints its id and public key',
  '  verdict keys show FILE          the id and public key of a private or public key file',
].join('\n');

export async function keysCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'generate') return generateCommand(rest, io);
  if (sub === 'show') return showCommand(rest, io);
  throw new UsageError(sub ? `unknown keys command "${sub}"` : 'keys needs a command: generate or show');
}

function keyringEntry(name: string | undefined, id: string, instances: string[], keeper: boolean, publicPem: string): Record<string, unknown> {
  return { ...(name ? { name } : {}), id, ...(instances.length > 0 ? { instances } : {}), ...(keeper ? { keeper: true } : {}), publicKey: publicPem };
}

/** Adds an entry to a keyring file (created if missing), keeping its comments, and checks the result loads. */
function addToKeyring(file: string, entry: Record<string, unknown>): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Verdict keyring: the keys allowed to sign checkpoints (instances) and keeper receipts (keeper: true)\nkeys: []\n';
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new KeyError(`keyring ${file}: not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`);
  if (!isMap(doc.contents)) throw new KeyError(`keyring ${file}: must be a mapping with a "keys" list`);
  const keys = doc.get('keys');
  if (keys === undefined || keys === null) doc.set('keys', doc.createNode([entry]));
  else if (isSeq(keys)) {
    keys.add(doc.createNode(entry));
    keys.flow = false;
  } else throw new KeyError(`keyring ${file}: "keys" must be a list`);
  const updated = doc.toString({ blockQuote: 'literal' });
  Keyring.parse(updated, file);
  writeFileSync(file, updated, { mode: 0o644 });
}

async function generateCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['keeper', 'json'], ['out', 'instances', 'name', 'keyring', 'public-out']);
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const out = stringFlag(args, 'out');
  if (!out) throw new UsageError('give --out FILE: where to write the private key');
  const instances = (stringFlag(args, 'instances') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const keeper = args.flags.has('keeper');
  const name = stringFlag(args, 'name');
  const keyringFile = stringFlag(args, 'keyring');
  if (keyringFile && instances.length === 0 && !keeper) throw new UsageError('--keyring needs --instances PATTERN (a checkpoint signer) or --keeper (a receipt signer): the entry must allow the key to sign something');
  const key = generateSigningKey();
  try {
    // 'wx': never overwrite a key (a lost key makes every chain it signed unverifiable as authored).
    writeFileSync(out, key.privatePem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    io.err(e.code === 'EEXIST' ? `verdict keys generate: ${out} exists; keys are never overwritten (move it away first)` : `verdict keys generate: cannot write ${out} (${e.code ?? e.message})`);
    return 1;
  }
  const publicOut = stringFlag(args, 'public-out');
  const entry = keyringEntry(name, key.id, instances, keeper, key.publicPem);
  try {
    if (publicOut) writeFileSync(publicOut, key.publicPem, { mode: 0o644 });
    if (keyringFile) addToKeyring(keyringFile, entry);
  } catch (err) {
    io.err(`verdict keys generate: the key was written to ${out}, but: ${(err as Error).message}`);
    return 1;
  }
  if (args.flags.has('json')) {
    io.out(JSON.stringify({ id: key.id, file: out, publicKey: key.publicPem, keyringEntry: entry, keyring: keyringFile ?? null }, null, 2));
    return 0;
  }
  io.out(`key ${key.id} written to ${out} (mode 0600)`);
  if (publicOut) io.out(`public key written to ${publicOut}`);
  if (keyringFile) io.out(`added to keyring ${keyringFile}`);
  io.out(`\npublic key:\n${key.publicPem.trimEnd()}`);
  io.out(`\nkeyring entry:\n${stringify({ keys: [entry] }, { blockQuote: 'literal' }).trimEnd()}`);
  return 0;
}

async function showCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['json'], []);
  if (args.positionals.length !== 1) throw new UsageError('show needs one key FILE');
  const file = args.positionals[0]!;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    io.err(`verdict keys show: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return 1;
  }
  let id: string;
  let publicPem: string;
  try {
    if (pem.includes('PRIVATE KEY')) {
      const key = parsePrivateKey(pem, file);
      id = key.id;
      publicPem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    } else {
      const publicKey = parsePublicKey(pem, file);
      id = keyIdOf(publicKey);
      publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    }
  } catch (err) {
    io.err(`verdict keys show: ${(err as Error).message}`);
    return 1;
  }
  if (args.flags.has('json')) io.out(JSON.stringify({ id, publicKey: publicPem }, null, 2));
  else io.out(`key ${id}\n${publicPem.trimEnd()}`);
  return 0;
}
