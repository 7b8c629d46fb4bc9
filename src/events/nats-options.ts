import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as Nats from 'nats';
import type { ConnectionOptions } from 'nats';
import { lazyModule } from '../files/lazy-module.js';

const nats = lazyModule<typeof Nats>('nats');
import type { EventsConfig } from '../config/schema.js';

/** The NATS credential and TLS settings of the events section (all file paths; '' = unset). */
export type NatsAuthSettings = Pick<
  EventsConfig,
  'natsUser' | 'natsPasswordFile' | 'natsTokenFile' | 'natsNkeySeedFile' | 'natsCredsFile' | 'natsCaFile' | 'natsCertFile' | 'natsKeyFile'
>;

export class NatsSettingsError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/** The URLs of events.natsUrl (comma-separated for a cluster). */
export function natsServers(natsUrl: string): string[] {
  return natsUrl
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A URL fit for logs: any user info (credentials) replaced. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@,]*@/g, '//[redacted]@');
}

/** A failed connect, for messages: the URL without credentials and NATS's reason (`Authorization Violation` when the server refused the user). */
export function natsConnectFailure(natsUrl: string, err: unknown): string {
  return `cannot connect to ${redactUrl(natsUrl)}: ${(err as Error).message}`;
}

function readSecret(file: string, setting: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new NatsSettingsError(`events.${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new NatsSettingsError(`events.${setting}: ${file} is empty`);
  return value;
}

/**
 * Reads and checks the credential and TLS files and returns the matching nats.js connect options.
 * Throws NatsSettingsError naming the setting (never the secret). Used at start (config validation)
 * and by the publisher when it connects, so a file replaced by a broken one is reported, not sent.
 */
export function natsAuthOptions(s: NatsAuthSettings): Partial<ConnectionOptions> {
  const methods = [s.natsUser !== '' && 'natsUser/natsPasswordFile', s.natsTokenFile !== '' && 'natsTokenFile', s.natsNkeySeedFile !== '' && 'natsNkeySeedFile', s.natsCredsFile !== '' && 'natsCredsFile'].filter(Boolean);
  if (methods.length > 1) throw new NatsSettingsError(`events: set only one NATS credential (${methods.join(', ')} are all set)`);
  const options: Partial<ConnectionOptions> = {};
  if (s.natsPasswordFile !== '' && s.natsUser === '') throw new NatsSettingsError('events.natsPasswordFile: needs events.natsUser');
  if (s.natsUser !== '') {
    options.user = s.natsUser;
    if (s.natsPasswordFile !== '') options.pass = readSecret(s.natsPasswordFile, 'natsPasswordFile');
  }
  if (s.natsTokenFile !== '') options.token = readSecret(s.natsTokenFile, 'natsTokenFile');
  if (s.natsNkeySeedFile !== '') {
    const seed = readSecret(s.natsNkeySeedFile, 'natsNkeySeedFile').trim();
    let kp: { getPublicKey(): string };
    try {
      kp = (nats().nkeys as { fromSeed(seed: Uint8Array): { getPublicKey(): string } }).fromSeed(new TextEncoder().encode(seed));
    } catch {
      throw new NatsSettingsError(`events.natsNkeySeedFile: ${s.natsNkeySeedFile} does not hold an nkey seed (a line starting with "SU")`);
    }
    if (!kp.getPublicKey().startsWith('U')) throw new NatsSettingsError(`events.natsNkeySeedFile: ${s.natsNkeySeedFile} holds a seed, but not a user's (it must start with "SU")`);
    options.authenticator = nats().nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (s.natsCredsFile !== '') {
    // As written: the client's parser needs the newline after the last block.
    const creds = `${readSecret(s.natsCredsFile, 'natsCredsFile')}\n`;
    if (!/-{3,}BEGIN NATS USER JWT-{3,}/.test(creds) || !/-{3,}BEGIN USER NKEY SEED-{3,}/.test(creds)) {
      throw new NatsSettingsError(`events.natsCredsFile: ${s.natsCredsFile} is not a NATS .creds file (it needs a user JWT and a user nkey seed block)`);
    }
    options.authenticator = nats().credsAuthenticator(new TextEncoder().encode(creds));
  }
  const tls = natsTlsOptions(s);
  if (tls) options.tls = tls;
  return options;
}

function natsTlsOptions(s: NatsAuthSettings): ConnectionOptions['tls'] | undefined {
  if (s.natsCaFile === '' && s.natsCertFile === '' && s.natsKeyFile === '') return undefined;
  if ((s.natsCertFile === '') !== (s.natsKeyFile === '')) throw new NatsSettingsError('events.natsCertFile and events.natsKeyFile: set both (a client certificate and its key) or neither');
  const tls: NonNullable<ConnectionOptions['tls']> = {};
  if (s.natsCaFile !== '') {
    const ca = readSecret(s.natsCaFile, 'natsCaFile');
    try {
      new X509Certificate(ca);
    } catch {
      throw new NatsSettingsError(`events.natsCaFile: ${s.natsCaFile} does not hold a PEM certificate`);
    }
    tls.ca = ca;
  }
  if (s.natsCertFile !== '') {
    const cert = readSecret(s.natsCertFile, 'natsCertFile');
    const key = readSecret(s.natsKeyFile, 'natsKeyFile');
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch {
      throw new NatsSettingsError(`events.natsCertFile: ${s.natsCertFile} does not hold a PEM certificate`);
    }
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new NatsSettingsError(`events.natsKeyFile: ${s.natsKeyFile} does not hold a PEM private key`);
    }
    if (!x509.checkPrivateKey(privateKey)) throw new NatsSettingsError(`events.natsKeyFile: ${s.natsKeyFile} does not belong to the certificate in ${s.natsCertFile}`);
    tls.cert = cert;
    tls.key = key;
  }
  return tls;
}

/** Problems with the NATS credential and TLS settings, for config validation (empty when fine). */
export function natsSettingsProblems(s: NatsAuthSettings): string[] {
  try {
    natsAuthOptions(s);
    return [];
  } catch (err) {
    if (err instanceof NatsSettingsError) return [err.message];
    throw err;
  }
}
