import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';
import type { TlsConfig } from '../config/schema.js';

type CaListener = (update: experimental.CaCertificateUpdate | null) => void;
type IdentityListener = (update: experimental.IdentityCertificateUpdate | null) => void;

interface Material {
  readonly certificate: Buffer;
  readonly privateKey: Buffer;
  readonly ca: Buffer | undefined;
  /** Earliest notAfter of the server chain, for the log. */
  readonly validTo: string;
}

export interface TlsEvents {
  reloaded(info: { validTo: string }): void;
  rejected(message: string): void;
}

/** Reads and checks the files: PEM parses, the key matches the certificate, the CA bundle parses. */
export function readTlsMaterial(config: TlsConfig): Material {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`tls: cannot read ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const certificate = read(config.certFile, 'certFile');
  const privateKey = read(config.keyFile, 'keyFile');
  const ca = config.clientCaFile ? read(config.clientCaFile, 'clientCaFile') : undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificate);
  } catch (err) {
    throw new Error(`tls: certFile ${config.certFile} is not a PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKey);
  } catch (err) {
    throw new Error(`tls: keyFile ${config.keyFile} is not a PEM private key (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key)) throw new Error(`tls: keyFile ${config.keyFile} does not belong to the certificate in ${config.certFile}`);
  try {
    createSecureContext({ cert: certificate, key: privateKey, ca });
  } catch (err) {
    throw new Error(`tls: the certificate, key or CA bundle is unusable (${(err as Error).message})`);
  }
  return { certificate, privateKey, ca, validTo: leaf.validTo };
}

/**
 * grpc-js certificate provider over the configured files. They are polled every reloadIntervalMs;
 * a change is read, checked (key matches certificate, CAs parse) and only then handed to the
 * server, so a half-written rotation or a bad file keeps the last good credentials serving.
 * Listeners get the current material on the next tick (grpc-js registers them while it binds).
 */
export class ReloadingCertificateProvider implements experimental.CertificateProvider {
  private material: Material;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly files: string[];
  private closed = false;

  constructor(
    private readonly config: TlsConfig,
    private readonly events: TlsEvents,
  ) {
    this.material = readTlsMaterial(config);
    this.files = [config.certFile, config.keyFile, ...(config.clientCaFile ? [config.clientCaFile] : [])];
    for (const f of this.files) watchFile(f, { interval: config.reloadIntervalMs, persistent: false }, () => this.reload());
  }

  /** Re-reads the files now; keeps the current material when they are not a consistent set. */
  reload(): boolean {
    if (this.closed) return false;
    let next: Material;
    try {
      next = readTlsMaterial(this.config);
    } catch (err) {
      this.events.rejected(`${(err as Error).message}; the previous certificates keep serving`);
      return false;
    }
    const same = next.certificate.equals(this.material.certificate) && next.privateKey.equals(this.material.privateKey) && (next.ca?.equals(this.material.ca ?? Buffer.alloc(0)) ?? !this.material.ca);
    if (same) return true;
    this.material = next;
    for (const l of this.identityListeners) l({ certificate: next.certificate, privateKey: next.privateKey });
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
    this.events.reloaded({ validTo: next.validTo });
    return true;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && this.material.ca && listener({ caCertificate: this.material.ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener({ certificate: this.material.certificate, privateKey: this.material.privateKey }));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    for (const f of this.files) unwatchFile(f);
  }
}

/**
 * Server credentials from the provider: TLS, and with clientCaFile, client certificates requested
 * (and required unless requireClientCert is false). Note grpc-js's factory takes the identity
 * provider first whatever its parameter names say; one provider serves as both here.
 */
export function serverCredentials(config: TlsConfig, provider: ReloadingCertificateProvider): ServerCredentials {
  const caProvider = config.clientCaFile ? provider : null;
  return experimental.createCertificateProviderServerCredentials(provider, caProvider as experimental.CertificateProvider, config.requireClientCert);
}
