/** Keys, keyrings, signed checkpoints and forged chains for the evidence tests. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { HashChain, type ChainedEvent } from '../../src/events/chain.js';
import { buildCheckpoint, type SignedCheckpoint } from '../../src/events/checkpoint.js';
import { buildUnchainedEvent } from '../../src/events/event.js';
import { Keyring } from '../../src/keys/keyring.js';
import { generateSigningKey, type GeneratedKey } from '../../src/keys/signing-key.js';
import { NO_ATTRIBUTES, record } from '../events/fixtures.js';
import { Proc, REPO_ROOT, VERDICT_BIN, type Resources } from '../support/events-harness.js';

export interface TestKey extends GeneratedKey {
  readonly file: string;
}

/** A new key whose private half is written (0600) into `dir`. */
export function newKey(dir: string, name = 'key'): TestKey {
  const k = generateSigningKey();
  const file = path.join(dir, `${name}-${k.id}.pem`);
  writeFileSync(file, k.privatePem, { mode: 0o600 });
  return { ...k, file };
}

export function keyringText(entries: { key: GeneratedKey; instances?: string[]; keeper?: boolean; name?: string }[]): string {
  return stringify({
    keys: entries.map((e) => ({ ...(e.name ? { name: e.name } : {}), id: e.key.id, ...(e.instances ? { instances: e.instances } : {}), ...(e.keeper ? { keeper: true } : {}), publicKey: e.key.publicPem })),
  });
}

export function writeKeyring(dir: string, entries: Parameters<typeof keyringText>[0]): string {
  const file = path.join(dir, 'keyring.yaml');
  writeFileSync(file, keyringText(entries));
  return file;
}

export function keyringOf(entries: Parameters<typeof keyringText>[0]): Keyring {
  return Keyring.parse(keyringText(entries), 'test keyring');
}

/** A chain of `count` decision events of `instance`, built by the real HashChain. */
export function chainOfInstance(instance: string, count: number, boot = 'boot-1', edit?: (i: number, body: Record<string, unknown>) => void): { chain: HashChain; events: ChainedEvent[] } {
  const chain = new HashChain(instance, boot);
  const events: ChainedEvent[] = [];
  for (let i = 1; i <= count; i++) {
    const body = buildUnchainedEvent(record(i), instance, NO_ATTRIBUTES) as unknown as Record<string, unknown>;
    edit?.(i, body);
    events.push(chain.append(body as never));
  }
  return { chain, events };
}

/** A checkpoint of `e`, signed with the key in `keyFile` (or unsigned when undefined). */
export function checkpointOf(e: ChainedEvent, instance: string, keyFile: string | undefined, final = false): SignedCheckpoint {
  return buildCheckpoint({ instanceId: instance, signingKeyFile: keyFile ?? '' }, { chain: e.link.id, seq: e.link.seq, hash: e.link.hash, final }, new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
}

/** Starts `verdict audit consume` with any flags; waits until it runs (or exits, for start-failure tests). */
export async function startKeeper(res: Resources, args: string[], waitForStart = true): Promise<Proc> {
  const child = spawn(process.execPath, [VERDICT_BIN, 'audit', 'consume', ...args], { cwd: REPO_ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = res.track(new Proc(`audit consume ${args.join(' ')}`, child));
  if (waitForStart) await proc.waitForLog('audit consumer started', 15_000);
  return proc;
}
