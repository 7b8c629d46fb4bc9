import type { TLSSocket } from 'node:tls';
import { CallerAllowlist, callerFromCertificate } from '../auth/callers.js';
import type { Caller } from '../engine/request.js';
import { HttpError } from './errors.js';

/**
 * The mTLS caller of an HTTP connection and the allowlist, as on the gRPC port (tls.clientCaFile,
 * tls.allowedCallers): the caller is the identity of a client certificate the handshake verified
 * against the client CAs; an unverified certificate proves nothing. Identified once per connection.
 */
export class TlsCallers {
  private readonly allowlist: CallerAllowlist;
  private readonly byConnection = new WeakMap<object, Caller | null>();

  constructor(allowedCallers: readonly string[]) {
    this.allowlist = new CallerAllowlist(allowedCallers);
  }

  /** The caller of a connection (`connection`: the key it is remembered by; `socket`: its TLS socket, or a proxy of it). */
  callerOf(connection: object, socket: object): Caller | undefined {
    const known = this.byConnection.get(connection);
    if (known !== undefined) return known ?? undefined;
    const tls = socket as Partial<TLSSocket>;
    let caller: Caller | undefined;
    if (tls.authorized === true && typeof tls.getPeerCertificate === 'function') {
      const cert = tls.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) caller = callerFromCertificate(cert);
    }
    this.byConnection.set(connection, caller ?? null);
    return caller;
  }

  /** Throws 403 when the allowlist is on and does not name the caller. */
  check(caller: Caller | undefined): void {
    if (this.allowlist.allows(caller)) return;
    throw new HttpError(
      403,
      'PERMISSION_DENIED',
      caller ? `caller ${caller.id} may not use the AuthZEN API: not in tls.allowedCallers` : 'the AuthZEN API needs a client certificate naming an allowed caller (tls.allowedCallers)',
    );
  }
}
