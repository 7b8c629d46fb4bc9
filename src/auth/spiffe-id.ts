/**
 * SPIFFE IDs as the SPIFFE ID specification defines them: "spiffe://" + a trust domain of lower-case
 * letters, digits, ".", "-", "_" + a path of segments of letters, digits, ".", "-", "_", with no
 * empty, "." or ".." segment, no trailing "/", no percent-encoding, query, fragment, port or
 * userinfo, at most 2048 bytes. Anything else is not a SPIFFE ID: such strings are refused, never
 * repaired, so two spellings can never name one identity and a prefix can only match whole segments.
 */

export interface SpiffeId {
  /** The whole ID, e.g. spiffe://example.org/ns/edge/sa/envoy. */
  readonly id: string;
  readonly trustDomain: string;
  /** "" for a trust domain's own ID, else "/seg/seg". */
  readonly path: string;
}

export type SpiffeIdResult = { readonly ok: true; readonly value: SpiffeId } | { readonly ok: false; readonly problem: string };

const SCHEME = 'spiffe://';
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function parseSpiffeId(text: string): SpiffeIdResult {
  const fail = (problem: string): SpiffeIdResult => ({ ok: false, problem });
  if (!text.startsWith(SCHEME)) {
    return text.toLowerCase().startsWith(SCHEME) ? fail('the scheme must be "spiffe://" in lower case') : fail('must start with "spiffe://"');
  }
  if (text.length > MAX_ID_BYTES) return fail(`is longer than ${MAX_ID_BYTES} bytes`);
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain === '') return fail('the trust domain is missing');
  if (trustDomain.length > MAX_TRUST_DOMAIN) return fail(`the trust domain is longer than ${MAX_TRUST_DOMAIN} characters`);
  if (!TRUST_DOMAIN.test(trustDomain)) {
    return fail(`the trust domain "${trustDomain}" may hold only lower-case letters, digits, ".", "-" and "_" (no port, user, upper case or percent-encoding)`);
  }
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const seg of segments) {
      if (seg === '') return fail(path.endsWith('/') && segments.at(-1) === '' ? 'the path must not end with "/"' : 'the path has an empty segment ("//")');
      if (seg === '.' || seg === '..') return fail(`the path has a "${seg}" segment`);
      if (!SEGMENT.test(seg)) return fail(`the path segment "${seg}" may hold only letters, digits, ".", "-" and "_" (no percent-encoding, query or fragment)`);
    }
  }
  return { ok: true, value: { id: text, trustDomain, path } };
}
