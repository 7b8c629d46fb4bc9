import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, yamlLibrary } from '../../files/yaml-lazy.js';
import { Keyring } from '../../keys/keyring.js';
import { generateSigningKey, KeyError, keyIdOf, parsePrivateKey, parsePublicKey } from '../../keys/signing-key.js';
import type { CliOutput } from '../output.js';
import { EXIT, UsageError, type CommandSpec, type ParsedArgs } from '../spec.js';

export const keysGenerateCommand: CommandSpec = {
  name: 'keys generate',
  summary: 'make an Ed25519 key that signs checkpoints (events.signingKeyFile) or keeper receipts',
  details: [
    'The private key is written as PKCS#8 PEM with mode 0600 and never overwrites a file. The key id\n' +
      'and public key are printed, with a keyring entry; --keyring adds that entry to a keyring file.',
  ],
  flags: [
    { name: 'out', type: 'string', value: 'FILE', description: 'where to write the private key', required: true },
    { name: 'instances', type: 'string', value: 'PATTERN,...', description: 'instance ids (or patterns like pdp-eu-*) whose checkpoints the key may sign, for the keyring entry' },
    { name: 'keeper', type: 'boolean', description: 'the key signs audit keeper receipts (keeper: true in the keyring entry)' },
    { name: 'name', type: 'string', value: 'NAME', description: 'a label for the key in the keyring entry and in verify reports' },
    { name: 'keyring', type: 'string', value: 'FILE', description: 'add the entry to this keyring file (created if missing)' },
    { name: 'public-out', type: 'string', value: 'FILE', description: 'also write the public key (PEM) here' },
    { name: 'json', type: 'boolean', description: 'print the id, public key and keyring entry as JSON' },
  ],
  examples: [
    { what: 'a key for the instances pdp-eu-*, added to the keyring', command: "verdict keys generate --out /etc/verdict/signing-key.pem --instances 'pdp-eu-*' --name pdp-eu --keyring keyring.yaml" },
    { what: 'a key for the audit keeper', command: 'verdict keys generate --out /etc/verdict-audit/keeper-key.pem --keeper --keyring keyring.yaml' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'the key was written' },
    { code: EXIT.FAILURE, meaning: 'the key file exists or cannot be written, or the keyring cannot be updated' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: generate,
};

export const keysShowCommand: CommandSpec = {
  name: 'keys show',
  summary: 'print the key id and public key of a private or public key file',
  positionals: [{ name: 'FILE', description: 'a PEM private key (PKCS#8) or public key (SPKI)', required: true }],
  flags: [{ name: 'json', type: 'boolean', description: 'print as JSON' }],
  examples: [{ what: 'the id and public key to put in a keyring', command: 'verdict keys show /etc/verdict/signing-key.pem' }],
  exitCodes: [
    { code: EXIT.OK, meaning: 'printed' },
    { code: EXIT.FAILURE, meaning: 'the file cannot be read or is not an Ed25519 key' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  run: show,
};

function keyringEntry(name: string | undefined, id: string, instances: string[], keeper: boolean, publicPem: string): Record<string, unknown> {
  return { ...(name ? { name } : {}), id, ...(instances.length > 0 ? { instances } : {}), ...(keeper ? { keeper: true } : {}), publicKey: publicPem };
}

/** Adds an entry to a keyring file (created if missing), keeping its comments, and checks the result loads. */
function addToKeyring(file: string, entry: Record<string, unknown>): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Verdict keyring: the keys allowed to sign checkpoints (instances) and keeper receipts (keeper: true)\nkeys: []\n';
  const doc = yamlLibrary().parseDocument(text);
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

async function generate(args: ParsedArgs, io: CliOutput): Promise<number> {
  const out = args.string('out')!;
  const instances = (args.string('instances') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const keeper = args.flag('keeper');
  const name = args.string('name');
  const keyringFile = args.string('keyring');
  if (keyringFile && instances.length === 0 && !keeper) throw new UsageError('--keyring needs --instances PATTERN (a checkpoint signer) or --keeper (a receipt signer): the entry must allow the key to sign something');
  const key = generateSigningKey();
  try {
    // 'wx': never overwrite a key (a lost key leaves every chain it signed without a verifiable author).
    writeFileSync(out, key.privatePem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    io.err(e.code === 'EEXIST' ? `verdict keys generate: ${out} exists; keys are never overwritten (move it away first)` : `verdict keys generate: cannot write ${out} (${e.code ?? e.message})`);
    return EXIT.FAILURE;
  }
  const publicOut = args.string('public-out');
  const entry = keyringEntry(name, key.id, instances, keeper, key.publicPem);
  try {
    if (publicOut) writeFileSync(publicOut, key.publicPem, { mode: 0o644 });
    if (keyringFile) addToKeyring(keyringFile, entry);
  } catch (err) {
    io.err(`verdict keys generate: the key was written to ${out}, but: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
  if (args.flag('json')) {
    io.out(JSON.stringify({ id: key.id, file: out, publicKey: key.publicPem, keyringEntry: entry, keyring: keyringFile ?? null }, null, 2));
    return EXIT.OK;
  }
  io.out(`key ${key.id} written to ${out} (mode 0600)`);
  if (publicOut) io.out(`public key written to ${publicOut}`);
  if (keyringFile) io.out(`added to keyring ${keyringFile}`);
  io.out(`\npublic key:\n${key.publicPem.trimEnd()}`);
  io.out(`\nkeyring entry:\n${yamlLibrary().stringify({ keys: [entry] }, { blockQuote: 'literal' }).trimEnd()}`);
  return EXIT.OK;
}

async function show(args: ParsedArgs, io: CliOutput): Promise<number> {
  const file = args.positionals[0]!;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    io.err(`verdict keys show: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return EXIT.FAILURE;
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
    return EXIT.FAILURE;
  }
  if (args.flag('json')) io.out(JSON.stringify({ id, publicKey: publicPem }, null, 2));
  else io.out(`key ${id}\n${publicPem.trimEnd()}`);
  return EXIT.OK;
}
