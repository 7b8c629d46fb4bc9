import type { PeerCertificate } from 'node:tls';
import { status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Caller } from '../engine/request.js';

/** Splits Node's subjectaltname string ("URI:spiffe://a, DNS:b", values may be JSON-quoted). */
export function subjectAltNames(text: string | undefined): { type: string; value: string }[] {
  if (!text) return [];
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // Node quotes values holding separators as JSON strings
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        value = text.slice(colon + 2, j);
      }
      next = text.indexOf(',', j + 1);
    } else {
      next = text.indexOf(', ', colon + 1);
      value = text.slice(colon + 1, next === -1 ? undefined : next);
    }
    out.push({ type, value });
    if (next === -1) break;
    i = next + 1;
    while (text[i] === ' ') i++;
  }
  return out;
}

/**
 * The caller a verified client certificate proves: its SPIFFE ID (a spiffe:// URI SAN), else its
 * first URI SAN, else its subject CN. Kind "spiffe" or "x509".
 */
export function callerFromCertificate(cert: PeerCertificate): Caller | undefined {
  const sans = subjectAltNames(cert.subjectaltname);
  const uris = sans.filter((s) => s.type === 'URI').map((s) => s.value);
  const spiffe = uris.find((u) => u.startsWith('spiffe://'));
  if (spiffe) return { id: spiffe, kind: 'spiffe' };
  if (uris[0]) return { id: uris[0], kind: 'x509' };
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return name ? { id: name, kind: 'x509' } : undefined;
}

/** Caller ids allowed to ask; "prefix*" matches by prefix. Empty = everyone (allowlist off). */
export class CallerAllowlist {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(readonly entries: readonly string[]) {
    for (const e of entries) {
      if (e.endsWith('*')) this.prefixes.push(e.slice(0, -1));
      else this.exact.add(e);
    }
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  allows(caller: Caller | undefined): boolean {
    if (!this.enabled) return true;
    if (!caller) return false;
    return this.exact.has(caller.id) || this.prefixes.some((p) => caller.id.startsWith(p));
  }
}

type AnyCall = Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>;

const CACHE_LIMIT = 1024;

/**
 * Identifies callers from the mTLS peer certificate (grpc-js reports it only once the handshake
 * verified it against the client CAs) and enforces the allowlist. Identities are cached by
 * certificate fingerprint, so the SAN parsing happens once per client certificate.
 */
export class CallerIdentity {
  private readonly cache = new Map<string, Caller | null>();
  private readonly byCall = new WeakMap<object, Caller>();

  constructor(readonly allowlist: CallerAllowlist) {}

  identify(call: AnyCall): Caller | undefined {
    const cert = call.getAuthContext()?.sslPeerCertificate;
    if (!cert) return undefined;
    const key = cert.fingerprint256;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const caller = callerFromCertificate(cert);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, caller ?? null);
    return caller;
  }

  /** The caller identified for this call by `guard`; undefined without a client certificate. */
  callerOf(call: object): Caller | undefined {
    return this.byCall.get(call);
  }

  /**
   * Wraps every unary handler of a service: identifies the caller once, refuses callers outside the
   * allowlist with PERMISSION_DENIED, and remembers the caller for `callerOf(call)`.
   */
  guard<T extends Record<string, unknown>>(implementation: T, service: string): T {
    const out: Record<string, unknown> = {};
    for (const [name, handler] of Object.entries(implementation)) {
      if (typeof handler !== 'function') {
        out[name] = handler;
        continue;
      }
      out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const caller = this.identify(call);
        if (!this.allowlist.allows(caller)) {
          const details = caller
            ? `caller ${caller.id} may not use ${service}: not in tls.allowedCallers`
            : `${service} needs a client certificate naming an allowed caller (tls.allowedCallers)`;
          callback({ code: status.PERMISSION_DENIED, details, name: 'Error', message: details });
          return;
        }
        if (caller) this.byCall.set(call, caller);
        (handler as (c: unknown, cb: unknown) => void)(call, callback);
      };
    }
    return out as T;
  }
}
