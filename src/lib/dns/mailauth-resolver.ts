/**
 * The lookup function mailauth (SPF, DKIM, DMARC, ARC) calls, and that our DNSBL and iprev checks use too:
 * the signature of node:dns/promises `resolve(name, rrtype)`, with failures as c-ares error codes
 * (ENOTFOUND = NXDOMAIN, ENODATA = no records of that type, anything else temporary). mailauth tells a void
 * lookup (RFC 7208 4.6.4) from a temporary error by exactly these codes, so they must pass through unchanged.
 *
 * Built on the configured servers only ([dns] servers), never /etc/hosts, so tests stay on loopback and
 * the answers are the ones a remote MTA would see. Pure library: imports nothing from src/.
 */
import { Resolver as NodeDnsResolver } from 'node:dns/promises';

export type DnsLookup = (name: string, rrtype: string) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface LookupOptions {
  /** "host:port" or bare IPs; empty = the system's resolvers. */
  servers: string[];
  /** Per-try timeout in ms (default 3000) and number of tries (default 2). */
  timeoutMs?: number;
  tries?: number;
}

export function createDnsLookup(opts: LookupOptions): DnsLookup {
  const r = new NodeDnsResolver({ timeout: opts.timeoutMs ?? 3000, tries: opts.tries ?? 2 });
  if (opts.servers.length) r.setServers(opts.servers);
  return (name: string, rrtype: string) => r.resolve(name, rrtype as 'A');
}

/** True for the two "no such data" outcomes (NXDOMAIN, NODATA); false for temporary failures. */
export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}
