/**
 * IP addresses and CIDR prefixes (RFC 4632 for IPv4, RFC 4291 2.3 for IPv6) for allow lists:
 * trusted PROXY-protocol peers, relay networks, rate-limit exemptions.
 *
 * Invariants:
 * - IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, RFC 4291 2.5.5.2) are the IPv4 address they
 *   carry: a dual-stack listener reports IPv4 clients that way, and an operator who writes
 *   `10.0.0.0/8` means them too. A mapped prefix (`::ffff:10.0.0.0/104`) is stored as the IPv4
 *   prefix it denotes (`10.0.0.0/8`).
 * - parseCidr is strict: a prefix with host bits set (`10.0.0.1/8`) is an error, since it is
 *   almost always a typo for a single address or a different network; the message names the
 *   network the operator probably meant. Zone ids (`fe80::1%eth0`) are refused.
 * - Pure functions, no module state. Matching compares bytes under a mask; net.BlockList would
 *   match as well, but it cannot give the canonical network or detect host bits, and we need the
 *   byte form anyway for those, so one representation serves all three. The tests use BlockList
 *   as an independent oracle.
 */
import net from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address in canonical text form (host bits zero; IPv6 per RFC 5952). */
  readonly network: string;
  readonly prefix: number;
  /** Network address bytes: 4 for IPv4, 16 for IPv6. */
  readonly bytes: Uint8Array;
}

export class CidrError extends Error {
  override readonly name = 'CidrError';
}

/** Parse an IPv4 or IPv6 address to bytes (4 or 16), or null if it is not one. */
export function ipToBytes(ip: string): Uint8Array | null {
  if (net.isIPv4(ip)) return ipv4ToBytes(ip);
  if (!net.isIPv6(ip) || ip.includes('%')) return null;
  return ipv6ToBytes(ip);
}

/**
 * The address as bytes with IPv4-mapped IPv6 unwrapped to its 4 IPv4 bytes, or null if `ip` is
 * not an address.
 */
export function normalizedIpBytes(ip: string): Uint8Array | null {
  const b = ipToBytes(ip);
  if (b === null) return null;
  return isV4Mapped(b) ? b.slice(12) : b;
}

/** Canonical text for 4 or 16 address bytes: dotted quad, or RFC 5952 for IPv6. */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new RangeError(`address must be 4 or 16 bytes, got ${b.length}`);
  // RFC 5952 5: IPv4-mapped addresses keep the dotted quad in the low 32 bits.
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16)); // RFC 5952 4.1, 4.3: no leading zeros, lowercase
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address (IPv4-mapped IPv6 stays mapped), or null if not an address. */
export function canonicalIp(ip: string): string | null {
  const b = ipToBytes(ip);
  return b === null ? null : bytesToIp(b);
}

/**
 * Parse `addr/prefix` or a bare address (a /32 or /128). Throws CidrError on anything else,
 * including host bits set beyond the prefix.
 */
export function parseCidr(s: string): Cidr {
  const text = s.trim();
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let bytes = ipToBytes(addrText);
  if (bytes === null) throw new CidrError(`not an IP address or CIDR prefix: ${JSON.stringify(s)}`);
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      throw new CidrError(`bad prefix length in ${JSON.stringify(s)}: must be 0..${max}`);
    }
    prefix = Number(p);
  }
  const network = mask(bytes, prefix);
  if (!equalBytes(network, bytes)) {
    throw new CidrError(
      `${JSON.stringify(s)} has host bits set beyond /${prefix}: did you mean ${bytesToIp(network)}/${prefix}?`,
    );
  }
  // Mapped prefixes that cover only mapped addresses are IPv4 prefixes (see header).
  if (bytes.length === 16 && prefix >= 96 && isV4Mapped(bytes)) {
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  return {
    family: bytes.length === 4 ? 4 : 6,
    network: bytesToIp(bytes),
    prefix,
    bytes,
  };
}

/** Parse a list of prefixes; the error names the entry that failed. */
export function parseCidrList(list: readonly string[]): Cidr[] {
  return list.map((s) => parseCidr(s));
}

export function formatCidr(c: Cidr): string {
  return `${c.network}/${c.prefix}`;
}

/**
 * Whether `ip` falls in any prefix of `list`. An IPv4 address and its IPv4-mapped IPv6 form are
 * the same address; an IPv6 prefix shorter than /96 that covers `::ffff:0:0/96` (e.g. `::/0`)
 * contains IPv4 addresses as well. Returns false for an `ip` that is not an IP address.
 *
 * String entries are parsed on each call, and one that does not parse never matches (fails
 * closed) rather than throwing inside a connection handler: validate lists once at config load
 * with parseCidrList, which reports the bad entry, and pass the parsed Cidr[] on hot paths.
 */
export function cidrContains(list: readonly (Cidr | string)[], ip: string): boolean {
  const addr = normalizedIpBytes(ip);
  if (addr === null) return false;
  let mapped: Uint8Array | null = null;
  for (const entry of list) {
    const c = typeof entry === 'string' ? tryParseCidr(entry) : entry;
    if (c === null) continue;
    if (addr.length === c.bytes.length) {
      if (prefixMatches(c.bytes, addr, c.prefix)) return true;
    } else if (addr.length === 4 && c.family === 6) {
      mapped ??= v4ToMapped(addr);
      if (prefixMatches(c.bytes, mapped, c.prefix)) return true;
    }
  }
  return false;
}

function tryParseCidr(s: string): Cidr | null {
  try {
    return parseCidr(s);
  } catch {
    return null;
  }
}

// --- internals -------------------------------------------------------------------------------

function ipv4ToBytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map((x) => Number(x)));
}

/** Expects text that net.isIPv6 accepted and that has no zone id. */
function ipv6ToBytes(ip: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = ip;
  let tail: Uint8Array | null = null;
  // RFC 4291 2.2 form 3: the low 32 bits may be written as a dotted quad.
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail = ipv4ToBytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = text.indexOf('::');
  const parseGroups = (s: string): number[] =>
    s === '' ? [] : s.split(':').map((g) => parseInt(g, 16));
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(text.slice(0, dbl));
    const rest = parseGroups(text.slice(dbl + 2));
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    groups = parseGroups(text);
  }
  for (let i = 0; i < 8; i++) {
    out[i * 2] = (groups[i]! >> 8) & 0xff;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  if (b.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function v4ToMapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function mask(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = b[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function prefixMatches(network: Uint8Array, addr: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (network[i] !== addr[i]) return false;
  const rem = prefix & 7;
  if (rem === 0) return true;
  const m = (0xff << (8 - rem)) & 0xff;
  return (network[full]! & m) === (addr[full]! & m);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
