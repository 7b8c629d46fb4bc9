import { isIPv4, isIPv6 } from 'node:net';

/** A parsed CIDR block, compared as a bigint so IPv4 and IPv6 share one code path. */
export interface CidrBlock {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly mask: bigint;
}

function ipv4ToBigInt(ip: string): bigint {
  let value = 0n;
  for (const part of ip.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function ipv6ToBigInt(ip: string): bigint {
  // Strip a zone id ("fe80::1%eth0"); it never matters for containment.
  let text = ip.split('%')[0]!;
  // An embedded IPv4 tail ("::ffff:10.0.0.1") becomes two hextets.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4ToBigInt(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headParts = head === '' ? [] : head.split(':');
  const restParts = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headParts.length - restParts.length;
  const parts = rest === undefined ? headParts : [...headParts, ...Array<string>(missing).fill('0'), ...restParts];
  let value = 0n;
  for (const part of parts) value = (value << 16n) | BigInt(parseInt(part, 16));
  return value;
}

/** Parses an IP address; returns undefined for anything that is not a valid IPv4/IPv6 literal. */
export function parseIp(ip: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(ip)) return { family: 4, value: ipv4ToBigInt(ip) };
  if (isIPv6(ip)) {
    const value = ipv6ToBigInt(ip);
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is the same host as a.b.c.d: proxies report either form.
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
    return { family: 6, value };
  }
  return undefined;
}

/** Parses "10.0.0.0/8" or "2001:db8::/32"; throws a descriptive Error when invalid. */
export function parseCidr(cidr: string): CidrBlock {
  const slash = cidr.indexOf('/');
  const addressText = slash === -1 ? cidr : cidr.slice(0, slash);
  if (!isIPv4(addressText) && !isIPv6(addressText)) {
    throw new Error(`invalid CIDR "${cidr}": "${addressText}" is not an IP address`);
  }
  const family: 4 | 6 = isIPv4(addressText) ? 4 : 6;
  const width = family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(width) : cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > width) {
    throw new Error(`invalid CIDR "${cidr}": prefix length must be 0..${width}`);
  }
  const prefix = Number(prefixText);
  const full = (1n << BigInt(width)) - 1n;
  const mask = prefix === 0 ? 0n : (full << BigInt(width - prefix)) & full;
  const value = family === 4 ? ipv4ToBigInt(addressText) : ipv6ToBigInt(addressText);
  return { family, network: value & mask, mask };
}

const cidrCache = new Map<string, CidrBlock>();

/**
 * True when `ip` lies inside `cidr`. An unparsable ip is simply not inside (callers send
 * whatever the proxy saw); an invalid CIDR throws, which fails the condition closed.
 */
export function inCidr(ip: string, cidr: string): boolean {
  let block = cidrCache.get(cidr);
  if (!block) {
    block = parseCidr(cidr);
    if (cidrCache.size < 10_000) cidrCache.set(cidr, block);
  }
  const address = parseIp(ip);
  if (!address || address.family !== block.family) return false;
  return (address.value & block.mask) === block.network;
}
