/**
 * DNS block and allow lists (RFC 5782), weighted as postscreen does (postscreen_dnsbl_sites):
 *   "zone"                  weight 1, any listing answer counts;
 *   "zone*2"                weight 2;
 *   "zone=127.0.0.4*3"      only that answer counts;
 *   "list.dnswl.test*-5"    a negative weight: an allow list.
 * Every list is asked in parallel when a client connects; the weights of the lists that list it are summed and
 * a score >= threshold refuses the session with 554 5.7.1 in place of the greeting (RFC 5321 3.1).
 *
 * RFC 5782 2.1/2.4: the query name is the address with its octets (IPv4) or nibbles (IPv6) reversed, under the
 * zone; an A record in 127.0.0.0/8 means listed. 127.0.0.1 is never a listing (RFC 5782 5: not used), and
 * 127.255.255.0/24 answers are the error codes some lists return to blocked resolvers (Spamhaus: 127.255.255.254
 * "public resolver", 127.255.255.255 "excessive queries"): treated as not listed, and logged. A list that
 * fails (timeout, SERVFAIL) counts as not listing the client (fail open: a broken list must not stop mail).
 *
 * The score of an address is cached for `cacheMs` (memory, bounded); the data stage copies the score and
 * the listing zones into the verdict log (result.log.dnsbl) for the spam scorer.
 */
import net from 'node:net';
import type { DataContext, DataResult, InboundFilter, SessionInfo } from './pipeline.js';
import { Reply, type SmtpError } from '../../protocols/smtp/replies.js';
import { isNotFound, type DnsLookup } from '../../lib/dns/mailauth-resolver.js';
import { normalizedIpBytes } from '../../net/cidr.js';

export interface DnsblSite {
  zone: string;
  /** Only this answer counts; null = any listing answer. */
  answer: string | null;
  weight: number;
}

export interface DnsblSettings {
  sites: string[];
  threshold: number;
  cacheMs: number;
}

export interface DnsblDeps {
  lookup: DnsLookup;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  now?: () => number;
}

export interface DnsblScore {
  score: number;
  /** The zones that listed the client, with the answers they gave. */
  hits: { zone: string; weight: number; answers: string[] }[];
}

const MAX_CACHED = 50_000;

/** Parses "zone[=a.b.c.d][*weight]". */
export function parseDnsblSite(spec: string): DnsblSite {
  const m = /^([A-Za-z0-9.-]+?)(?:=([0-9.]+))?(?:\*(-?\d+))?$/.exec(spec.trim());
  if (!m) throw new Error(`invalid DNSBL "${spec}" (expected zone, zone*weight or zone=127.0.0.2*weight)`);
  return { zone: m[1]!.toLowerCase().replace(/\.$/, ''), answer: m[2] ?? null, weight: m[3] === undefined ? 1 : Number(m[3]) };
}

/** RFC 5782 2.1 (IPv4: reversed octets) and 2.4 (IPv6: reversed nibbles); IPv4-mapped IPv6 is IPv4. */
export function dnsblQueryName(ip: string, zone: string): string | null {
  const b = normalizedIpBytes(ip);
  if (!b) return null;
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.${zone}`;
  const nibbles = Buffer.from(b).toString('hex').split('').reverse().join('.');
  return `${nibbles}.${zone}`;
}

/** A listing answer per RFC 5782 2.3: an address in 127/8 other than 127.0.0.1 and the 127.255.255.x error codes. */
function isListing(a: string): boolean {
  return net.isIPv4(a) && a.startsWith('127.') && a !== '127.0.0.1' && !a.startsWith('127.255.255.');
}

export class DnsblFilter implements InboundFilter {
  readonly name = 'dnsbl';
  /** A list that fails is already treated as "not listed"; a failure of the filter itself must not block mail. */
  readonly failOpen = true;
  private readonly sites: DnsblSite[];
  private readonly cache = new Map<string, { until: number; score: DnsblScore }>();
  private readonly now: () => number;

  constructor(
    private readonly settings: DnsblSettings,
    private readonly deps: DnsblDeps,
  ) {
    this.sites = settings.sites.map(parseDnsblSite);
    this.now = deps.now ?? Date.now;
  }

  async connect(s: SessionInfo): Promise<SmtpError | null> {
    if (!this.sites.length) return null;
    const r = await this.score(s.remoteAddress);
    if (r.score >= this.settings.threshold && r.hits.some((h) => h.weight > 0)) {
      const zones = r.hits.filter((h) => h.weight > 0).map((h) => h.zone).join(', ');
      this.deps.log.info({ cid: s.id, remote: s.remoteAddress, dnsbl: r }, 'client refused: DNSBL score over threshold');
      return Reply.dnsblListed(s.remoteAddress, zones);
    }
    return null;
  }

  async data(ctx: DataContext, result: DataResult): Promise<void> {
    if (!this.sites.length) return;
    const r = await this.score(ctx.remoteAddress);
    result.log.dnsbl = { score: r.score, zones: r.hits.map((h) => h.zone) };
  }

  /** The client's weighted score (cached). */
  async score(ip: string): Promise<DnsblScore> {
    const t = this.now();
    const cached = this.cache.get(ip);
    if (cached && cached.until > t) return cached.score;
    const hits = (await Promise.all(this.sites.map((site) => this.query(ip, site)))).filter((h): h is DnsblScore['hits'][number] => h !== null);
    const score: DnsblScore = { score: hits.reduce((n, h) => n + h.weight, 0), hits };
    if (this.cache.size >= MAX_CACHED) {
      for (const [k, v] of this.cache) if (v.until <= t) this.cache.delete(k);
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
    }
    this.cache.set(ip, { until: t + this.settings.cacheMs, score });
    return score;
  }

  private async query(ip: string, site: DnsblSite): Promise<DnsblScore['hits'][number] | null> {
    const name = dnsblQueryName(ip, site.zone);
    if (!name) return null;
    let answers: string[];
    try {
      answers = (await this.deps.lookup(name, 'A')) as string[];
    } catch (err) {
      if (!isNotFound(err)) this.deps.log.warn({ zone: site.zone, err: (err as Error).message }, 'DNSBL lookup failed; treated as not listed');
      return null;
    }
    const errors = answers.filter((a) => a.startsWith('127.255.255.'));
    if (errors.length) this.deps.log.warn({ zone: site.zone, answers: errors }, 'DNSBL answered with an error code (blocked or rate-limited resolver?)');
    const listed = answers.filter((a) => isListing(a) && (site.answer === null || a === site.answer));
    return listed.length ? { zone: site.zone, weight: site.weight, answers: listed } : null;
  }
}
