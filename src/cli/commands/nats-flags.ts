/**
 * NATS credential and TLS flags for the commands that connect to NATS outside `verdict serve`
 * (`verdict audit consume`, and `audit verify`, `explain`, `replay`, `diff` when they read the heads
 * KV bucket or the revisions Object Store). They map onto the same settings as the `events` section of
 * `verdict serve` (events.natsUser, natsPasswordFile, …) and are checked by the same code
 * (events/nats-options.ts): each secret is read from a file, never from the command line, and
 * never printed; at most one kind of credential.
 */
import type { ConnectionOptions } from 'nats';
import { natsAuthOptions, NatsSettingsError, type NatsAuthSettings } from '../../events/nats-options.js';
import { UsageError, type FlagSpec, type ParsedArgs } from '../spec.js';

/** Flag name → events setting. */
const FLAGS: readonly (readonly [flag: string, setting: keyof NatsAuthSettings, value: string, description: string])[] = [
  ['nats-user', 'natsUser', 'NAME', 'NATS user name (with --nats-password-file)'],
  ['nats-password-file', 'natsPasswordFile', 'FILE', 'file holding the NATS user\'s password'],
  ['nats-token-file', 'natsTokenFile', 'FILE', 'file holding a NATS token'],
  ['nats-nkey-seed-file', 'natsNkeySeedFile', 'FILE', 'file holding a NATS user nkey seed (SU…)'],
  ['nats-creds-file', 'natsCredsFile', 'FILE', 'NATS .creds file (user JWT and seed), for servers in operator mode'],
  ['nats-ca-file', 'natsCaFile', 'FILE', 'CA bundle to verify the NATS server\'s certificate (TLS)'],
  ['nats-cert-file', 'natsCertFile', 'FILE', 'client certificate for NATS servers that verify clients (with --nats-key-file)'],
  ['nats-key-file', 'natsKeyFile', 'FILE', 'the client certificate\'s private key'],
];

export const NATS_AUTH_FLAGS: readonly FlagSpec[] = FLAGS.map(([name, , value, description]) => ({ name, type: 'string', value, description }));

const flagOf = new Map(FLAGS.map(([flag, setting]) => [setting, flag]));

/** The connect options of the NATS flags; a missing or broken file is a usage error (exit 2) naming the flag, never the secret. */
export function natsAuthFromArgs(args: ParsedArgs): Partial<ConnectionOptions> {
  const settings = Object.fromEntries(FLAGS.map(([flag, setting]) => [setting, args.string(flag) ?? ''])) as unknown as NatsAuthSettings;
  try {
    return natsAuthOptions(settings);
  } catch (err) {
    if (!(err instanceof NatsSettingsError)) throw err;
    // The shared checks name the serve settings (events.natsKeyFile); name the flags instead.
    const message = err.message
      .replace(/^events: /, '')
      .replace(/(?:events\.)?(nats[A-Z][A-Za-z]*)/g, (whole, setting: string) => (flagOf.has(setting as keyof NatsAuthSettings) ? `--${flagOf.get(setting as keyof NatsAuthSettings)!}` : whole));
    throw new UsageError(message);
  }
}

/** An error message of a command that read NATS, with what to do when the server refused the connection. */
export function withCredentialHint(message: string): string {
  return /authorization violation|authentication|permissions violation/i.test(message)
    ? `${message} (give a user allowed to read it: --nats-user with --nats-password-file, --nats-token-file, --nats-nkey-seed-file or --nats-creds-file)`
    : message;
}
