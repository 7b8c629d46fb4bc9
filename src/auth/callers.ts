import type { PeerCertificate } from 'node:tls';
import { status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Caller } from '../engine/request.js';
import { parseSpiffeId } from './spiffe-id.js';

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

/** How a caller was identified: kind "spiffe", "uri" or "cn" (see callerFromCertificate). */
export const CALLER_KINDS = ['spiffe', 'uri', 'cn'] as const;

/**
 * The caller a verified client certificate proves, by kind:
 * - "spiffe": its SPIFFE ID, when the certificate is an X.509-SVID: exactly one URI SAN, and that
 *   one a valid SPIFFE ID (parseSpiffeId). A malformed one is no identity at all.
 * - "uri": else its first URI SAN whose scheme is neither spiffe nor cn.
 * - "cn": else its subject CN, as "cn:<CN>", so it can never read as a SPIFFE ID or a URI (a CN
 *   of "spiffe://…" proves nothing about SPIFFE). Several CNs are ambiguous: none is used.
 */
export function callerFromCertificate(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): Caller | undefined {
  const uris = subjectAltNames(cert.subjectaltname)
    .filter((s) => s.type === 'URI')
    .map((s) => s.value);
  const spiffeLike = uris.filter((u) => /^spiffe:/i.test(u));
  if (spiffeLike.length > 0) {
    if (uris.length === 1) {
      const parsed = parseSpiffeId(uris[0]!);
      if (parsed.ok) return { id: parsed.value.id, kind: 'spiffe' };
    }
  } else {
    const uri = uris.find((u) => !/^cn:/i.test(u));
    if (uri) return { id: uri, kind: 'uri' };
  }
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? (cn.length === 1 ? cn[0] : undefined) : cn;
  return name ? { id: `cn:${name}`, kind: 'cn' } : undefined;
}

/** One allowlist entry, parsed: which kind of identity it names, and how it matches. */
export type AllowlistEntry =
  | { readonly kind: 'spiffe'; readonly id: string }
  /** "spiffe://td/a/*": every ID below spiffe://td/a/ (whole segments; not spiffe://td/a itself). */
  | { readonly kind: 'spiffe-prefix'; readonly prefix: string }
  | { readonly kind: 'cn'; readonly id: string }
  | { readonly kind: 'uri'; readonly id: string };

const ENTRY_FORMS = 'write a SPIFFE ID (spiffe://trust.domain/path, or spiffe://trust.domain/path/* for every ID below it), cn:<certificate subject CN> or uri:<URI SAN>';

/** Parses a tls.allowedCallers entry; a string is the problem, phrased to say how to fix it. */
export function parseAllowlistEntry(entry: string): AllowlistEntry | string {
  if (/^spiffe:/i.test(entry)) {
    const star = entry.indexOf('*');
    if (star !== -1) {
      if (!entry.endsWith('/*') || star !== entry.length - 1) {
        return `"${entry}": a SPIFFE prefix entry ends in "/*" and matches whole path segments (e.g. spiffe://example.org/ns/docs/*); "*" may not appear elsewhere`;
      }
      const base = entry.slice(0, -2);
      const parsed = parseSpiffeId(base);
      if (!parsed.ok) return `"${entry}": "${base}" is not a valid SPIFFE ID: ${parsed.problem}`;
      return { kind: 'spiffe-prefix', prefix: `${parsed.value.id}/` };
    }
    const parsed = parseSpiffeId(entry);
    return parsed.ok ? { kind: 'spiffe', id: parsed.value.id } : `"${entry}" is not a valid SPIFFE ID: ${parsed.problem}`;
  }
  if (entry.startsWith('cn:')) {
    const name = entry.slice(3);
    if (name === '') return `"${entry}": the CN is empty`;
    if (name.includes('*')) return `"${entry}": CN entries match the whole CN exactly; "*" is not a wildcard here`;
    return { kind: 'cn', id: entry };
  }
  if (entry.startsWith('uri:')) {
    const uri = entry.slice(4);
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(uri)) return `"${entry}": "${uri}" is not a URI`;
    if (/^(spiffe|cn):/i.test(uri)) return `"${entry}": SPIFFE IDs are written as such (without "uri:"), and cn: names a CN`;
    if (uri.includes('*')) return `"${entry}": URI entries match the whole URI SAN exactly; "*" is not a wildcard here`;
    return { kind: 'uri', id: uri };
  }
  return `"${entry}" names no kind of identity: ${ENTRY_FORMS}`;
}

/**
 * Caller ids allowed to ask, by kind: a SPIFFE entry matches only a SPIFFE ID from a URI SAN, a
 * cn: entry only a subject CN, a uri: entry only a (non-SPIFFE) URI SAN. Empty = everyone
 * (allowlist off). Entries are validated at config load; an invalid one here is a programming error.
 */
export class CallerAllowlist {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(readonly entries: readonly string[]) {
    for (const e of entries) {
      const parsed = parseAllowlistEntry(e);
      if (typeof parsed === 'string') throw new Error(`tls.allowedCallers: ${parsed}`);
      if (parsed.kind === 'spiffe-prefix') this.prefixes.push(parsed.prefix);
      // kinds never share ids: SPIFFE IDs start with spiffe://, CNs with cn:, URIs are neither
      else this.exact.add(`${parsed.kind}\u0000${parsed.id}`);
    }
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  allows(caller: Caller | undefined): boolean {
    if (!this.enabled) return true;
    if (!caller) return false;
    if (this.exact.has(`${caller.kind}\u0000${caller.id}`)) return true;
    // caller ids of kind spiffe are valid SPIFFE IDs (no "..", no "//"), so a prefix ending in "/" matches whole segments
    return caller.kind === 'spiffe' && this.prefixes.some((p) => caller.id.startsWith(p));
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
