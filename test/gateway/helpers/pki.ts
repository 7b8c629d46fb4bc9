/** A throwaway PKI made with the openssl CLI: a CA, server and client certificates, and a stranger CA. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pair(dir: string, name: string): KeyPair {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  return { cert, key, certPem: readFileSync(cert), keyPem: readFileSync(key) };
}

/** A self-signed CA (EC P-256) named `name` in `dir`. */
export function makeCa(dir: string, name: string): KeyPair {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return pair(dir, name);
}

export interface LeafOptions {
  readonly cn: string;
  /** subjectAltName entries, e.g. "URI:spiffe://example.org/ns/edge/sa/envoy" or "IP:127.0.0.1". */
  readonly san?: readonly string[];
  readonly usage: 'serverAuth' | 'clientAuth';
}

/** A certificate for `name` signed by `ca`. */
export function makeLeaf(dir: string, ca: KeyPair, name: string, o: LeafOptions): KeyPair {
  const ext = [`basicConstraints=CA:FALSE`, `keyUsage=critical,digitalSignature`, `extendedKeyUsage=${o.usage}`];
  if (o.san && o.san.length > 0) ext.push(`subjectAltName=${o.san.join(',')}`);
  writeFileSync(path.join(dir, `${name}.ext`), ext.join('\n') + '\n');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${o.cn.replace(/[/\\]/g, (c) => `\\${c}`)}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`], dir);
  return pair(dir, name);
}

export interface TestPki {
  readonly ca: KeyPair;
  readonly server: KeyPair;
  /** Client certificate of the gateway: spiffe://example.org/ns/edge/sa/envoy. */
  readonly envoy: KeyPair;
  /** A valid client certificate (same CA) of a caller outside the allowlist. */
  readonly outsider: KeyPair;
  /** A client certificate with only a subject CN. */
  readonly cnOnly: KeyPair;
  /** A client certificate for the envoy identity, signed by a CA the server does not trust. */
  readonly stranger: KeyPair;
}

export const ENVOY_ID = 'spiffe://example.org/ns/edge/sa/envoy';
export const OUTSIDER_ID = 'spiffe://example.org/ns/shop/sa/cart';

export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'ca');
  const strangerCa = makeCa(dir, 'stranger-ca');
  return {
    ca,
    server: makeLeaf(dir, ca, 'server', { cn: 'verdict', san: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'serverAuth' }),
    envoy: makeLeaf(dir, ca, 'envoy', { cn: 'envoy', san: [`URI:${ENVOY_ID}`], usage: 'clientAuth' }),
    outsider: makeLeaf(dir, ca, 'outsider', { cn: 'cart', san: [`URI:${OUTSIDER_ID}`], usage: 'clientAuth' }),
    cnOnly: makeLeaf(dir, ca, 'cn-only', { cn: 'batch-job.internal', usage: 'clientAuth' }),
    stranger: makeLeaf(dir, strangerCa, 'stranger', { cn: 'envoy', san: [`URI:${ENVOY_ID}`], usage: 'clientAuth' }),
  };
}
