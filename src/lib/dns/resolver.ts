/**
 * DNS resolution behind an interface, so core code never touches node:dns directly and tests (or a later
 * DNSSEC-validating resolver for DANE) can substitute their own.
 *
 * Every lookup distinguishes the three outcomes mail routing needs (RFC 5321 5.1):
 *   - records found;
 *   - the name does not exist (NXDOMAIN) or has no records of the type (NODATA): `DnsError.notFound`,
 *     with `nxdomain` telling the two apart (an MX lookup with NODATA means "use the implicit MX");
 *   - a temporary failure (SERVFAIL, timeout, refused): `DnsError.temporary`, the caller retries later.
 * Pure library: imports nothing from src/.
 */
import { getServers } from 'node:dns';
import { Resolver as NodeDnsResolver } from 'node:dns/promises';
import { parseServer, querySecure } from './secure.js';

export interface MxRecord {
  preference: number;
  exchange: string;
}

export interface Resolver {
  /** MX records as published (unsorted); throws DnsError. */
  mx(domain: string): Promise<MxRecord[]>;
  a(name: string): Promise<string[]>;
  aaaa(name: string): Promise<string[]>;
  /** TXT records, each as its list of character-strings (RFC 1035 3.3.14). */
  txt(name: string): Promise<string[][]>;
  /**
   * Whether the resolver validated the answer for `name` (DNSSEC, the AD bit; lib/dns/secure.ts), for DANE, with
   * the TLSA records when `type` is TLSA (an MX query is asked only for its validation). NXDOMAIN and NODATA give
   * no records; a failure throws a temporary DnsError. Optional: a resolver without it means no DANE.
   */
  secure?(name: string, type: 'MX' | 'TLSA'): Promise<{ secure: boolean; tlsa: TlsaRecord[] }>;
}

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export class DnsError extends Error {
  override name = 'DnsError';
  constructor(
    message: string,
    readonly kind: 'nxdomain' | 'nodata' | 'temporary',
    readonly code: string,
  ) {
    super(message);
  }
  get notFound(): boolean {
    return this.kind !== 'temporary';
  }
  get temporary(): boolean {
    return this.kind === 'temporary';
  }
}

/** RFC 7505 3: a null MX is exactly one MX record, preference 0, exchange "." (shown as ""). */
export function isNullMx(records: MxRecord[]): boolean {
  return records.length === 1 && records[0]!.preference === 0 && (records[0]!.exchange === '' || records[0]!.exchange === '.');
}

/**
 * RFC 5321 5.1: MX hosts by ascending preference; hosts of equal preference in random order ("randomize
 * them to spread the load"). `random` is injected (tests make it deterministic).
 */
export function orderMx(records: MxRecord[], random: () => number): MxRecord[] {
  const keyed = records.map((r) => ({ r, k: random() }));
  keyed.sort((x, y) => x.r.preference - y.r.preference || x.k - y.k);
  return keyed.map((x) => x.r);
}

export interface NodeResolverOptions {
  /** "host:port" or bare IPs; empty = the system's resolvers. */
  servers: string[];
  /** Per-try timeout in ms (default 5000) and number of tries (default 2). */
  timeoutMs?: number;
  tries?: number;
}

/** The implementation on node:dns/promises (c-ares): the configured servers only, no /etc/hosts. */
export class NodeResolver implements Resolver {
  private readonly r: NodeDnsResolver;

  constructor(private readonly opts: NodeResolverOptions) {
    this.r = new NodeDnsResolver({ timeout: opts.timeoutMs ?? 5000, tries: opts.tries ?? 2 });
    if (opts.servers.length) this.r.setServers(opts.servers);
  }

  async secure(name: string, type: 'MX' | 'TLSA'): Promise<{ secure: boolean; tlsa: TlsaRecord[] }> {
    const servers = this.opts.servers.length ? this.opts.servers : getServers();
    let last: Error = new Error('no DNS server');
    for (let i = 0; i < (this.opts.tries ?? 2) * Math.max(1, servers.length); i++) {
      try {
        const res = await querySecure(parseServer(servers[i % servers.length]!), name, type, this.opts.timeoutMs ?? 5000);
        if (res.rcode !== 'NOERROR' && res.rcode !== 'NXDOMAIN') throw new DnsError(`${type} ${name}: ${res.rcode}`, 'temporary', res.rcode);
        const tlsa: TlsaRecord[] = [];
        for (const a of res.answers) if (a.type === 'TLSA') tlsa.push({ usage: a.data.usage, selector: a.data.selector, matchingType: a.data.matchingType, data: Buffer.from(a.data.certificate) });
        return { secure: res.secure, tlsa };
      } catch (err) {
        if (err instanceof DnsError) throw err;
        last = err as Error;
      }
    }
    throw new DnsError(`${type} ${name}: ${last.message}`, 'temporary', 'ETIMEOUT');
  }

  async mx(domain: string): Promise<MxRecord[]> {
    return this.wrap(domain, 'MX', () => this.r.resolveMx(domain)).then((rs) => rs.map((x) => ({ preference: x.priority, exchange: x.exchange.replace(/\.$/, '') })));
  }
  a(name: string): Promise<string[]> {
    return this.wrap(name, 'A', () => this.r.resolve4(name));
  }
  aaaa(name: string): Promise<string[]> {
    return this.wrap(name, 'AAAA', () => this.r.resolve6(name));
  }
  txt(name: string): Promise<string[][]> {
    return this.wrap(name, 'TXT', () => this.r.resolveTxt(name));
  }

  private async wrap<T>(name: string, type: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw toDnsError(err, name, type);
    }
  }
}

/** c-ares codes: ENOTFOUND = NXDOMAIN, ENODATA = NOERROR with no answer; everything else is temporary. */
export function toDnsError(err: unknown, name: string, type: string): DnsError {
  const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  const kind = code === 'ENOTFOUND' ? 'nxdomain' : code === 'ENODATA' ? 'nodata' : 'temporary';
  return new DnsError(`${type} ${name}: ${kind === 'nxdomain' ? 'no such domain' : kind === 'nodata' ? 'no records' : code}`, kind, code);
}
