/**
 * SMTP MTA Strict Transport Security for outbound mail (RFC 8461): a domain publishes, over DNS and HTTPS, that
 * its MX hosts take TLS with certificates that verify; a sender that knows the policy delivers only to the listed
 * MX hosts, only over TLS, only when the certificate verifies for the MX name (mode "enforce"), and never falls
 * back to plaintext. Mode "testing" changes nothing in delivery (failures are logged); "none" withdraws a policy.
 *
 * - Discovery (3.1): TXT `_mta-sts.<domain>`, exactly one record starting `v=STSv1`, with an `id`.
 * - Policy (3.2, 3.3): `https://mta-sts.<domain>/.well-known/mta-sts.txt`, the certificate verified for that host
 *   (Node's trust store, plus NODE_EXTRA_CA_CERTS for a private CA), status 200, no redirects, text/plain, at most
 *   64 KB, within 10 s. The host name resolves through Postern's own resolver (`[dns] servers`).
 * - Cache (5.1): a policy is kept for its max_age; while kept, the TXT id is looked up on each use and the policy
 *   fetched again only when the id changed; a failed refetch keeps the cached policy (a downgrade needs the
 *   attacker to block the refresh for max_age). No record and nothing cached: no policy (opportunistic TLS).
 *   Policies are kept in the store too (`mta_sts_policies`), so a restart does not forget them.
 */
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { DnsError, type Resolver } from '../lib/dns/resolver.js';
import type { StsPolicy, StsPolicyRepo } from '../storage/types.js';

export type { StsPolicy };
export type StsMode = StsPolicy['mode'];

/** RFC 8461 3.1: the id of the one `v=STSv1` TXT record, null when there is none (or more than one). */
export function stsRecordId(records: string[][]): string | null {
  const sts = records.map((r) => r.join('')).filter((t) => /^v=STSv1;/.test(t.trim()));
  if (sts.length !== 1) return null;
  for (const field of sts[0]!.split(';')) {
    const m = /^\s*id=([A-Za-z0-9]{1,32})\s*$/.exec(field);
    if (m) return m[1]!;
  }
  return null;
}

/** RFC 8461 3.2: the policy body; null when it is not a valid STSv1 policy. */
export function parseStsPolicy(text: string): { mode: StsMode; mx: string[]; maxAge: number } | null {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    fields.set(key, [...(fields.get(key) ?? []), m[2]!]);
  }
  if (fields.get('version')?.[0] !== 'STSv1') return null;
  const mode = fields.get('mode')?.[0];
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') return null;
  const maxAgeText = fields.get('max_age')?.[0] ?? '';
  if (!/^\d{1,10}$/.test(maxAgeText)) return null;
  const maxAge = Math.min(Number(maxAgeText), 31557600);
  const mx = (fields.get('mx') ?? []).map((p) => p.toLowerCase().replace(/\.$/, '')).filter((p) => p !== '');
  if (mode !== 'none' && !mx.length) return null;
  return { mode, mx, maxAge };
}

/** RFC 8461 4.1: an MX host matches a pattern exactly, or "*.example.com" by exactly one leftmost label. */
export function mxMatches(host: string, patterns: string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (!p.startsWith('*.')) return p === h;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}

const FETCH_TIMEOUT_MS = 10_000;
const MAX_POLICY_BYTES = 64 * 1024;

export class MtaSts {
  private readonly cache = new Map<string, StsPolicy>();

  constructor(
    private readonly deps: {
      resolver: Resolver;
      /** Where policies survive restarts (read when a domain is not in memory). */
      store?: StsPolicyRepo;
      now?: () => number;
      /** Test seam: fetches the policy text for a domain (default: HTTPS as in RFC 8461 3.3). */
      fetchPolicy?: (domain: string, resolver: Resolver) => Promise<string>;
      log?: { info: (o: object, m: string) => void };
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private async forget(domain: string): Promise<void> {
    this.cache.delete(domain);
    await this.deps.store?.delete(domain);
  }

  /** The policy to apply to a delivery to `domain` (null: none, deliver with opportunistic TLS). */
  async policy(domain: string): Promise<StsPolicy | null> {
    const d = domain.toLowerCase();
    let cached = this.cache.get(d) ?? null;
    if (!cached && this.deps.store) {
      cached = await this.deps.store.get(d);
      if (cached) this.cache.set(d, cached);
    }
    if (cached && this.now() > cached.fetchedAt + cached.maxAge * 1000) {
      await this.forget(d);
      cached = null;
    }
    let id: string | null;
    try {
      id = stsRecordId(await this.deps.resolver.txt(`_mta-sts.${d}`));
    } catch (err) {
      // No record (or a DNS failure): a cached policy stays in force (RFC 8461 5.1); else none.
      if (!(err instanceof DnsError)) throw err;
      return cached;
    }
    if (id === null || (cached && cached.id === id)) return cached;
    try {
      const parsed = parseStsPolicy(await (this.deps.fetchPolicy ?? fetchPolicy)(d, this.deps.resolver));
      if (!parsed) throw new Error('not a valid STSv1 policy');
      const policy: StsPolicy = { domain: d, id, ...parsed, fetchedAt: this.now() };
      if (policy.mode === 'none') await this.forget(d);
      else {
        this.cache.set(d, policy);
        await this.deps.store?.put(policy);
      }
      this.deps.log?.info({ domain: d, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAge }, 'MTA-STS policy fetched');
      return policy.mode === 'none' ? null : policy;
    } catch (err) {
      this.deps.log?.info({ domain: d, err: (err as Error).message }, cached ? 'MTA-STS policy refresh failed; the cached policy stays' : 'MTA-STS policy fetch failed; delivering without one');
      return cached;
    }
  }
}

/** RFC 8461 3.3: GET the policy over HTTPS from mta-sts.<domain>, resolving that name through `resolver`. */
function fetchPolicy(domain: string, resolver: Resolver): Promise<string> {
  const host = `mta-sts.${domain}`;
  const lookup: LookupFunction = (hostname, options, cb) => {
    const done = cb as unknown as (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void;
    resolver.a(hostname).then(
      (addrs) => (options.all ? done(null, addrs.map((address) => ({ address, family: 4 }))) : done(null, addrs[0]!, 4)),
      (err: Error) => done(err, '', 4),
    );
  };
  return new Promise((resolve, reject) => {
    const req = https.get({ host, servername: host, path: '/.well-known/mta-sts.txt', lookup, timeout: FETCH_TIMEOUT_MS, headers: { 'user-agent': 'Postern MTA-STS' } }, (res) => {
      // No redirects (3.3): anything but 200 is a failed fetch.
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`HTTP ${res.statusCode} from ${host}`));
      }
      if (!/^text\/plain\b/i.test(res.headers['content-type'] ?? '')) {
        res.resume();
        return reject(new Error(`${host} answered with ${res.headers['content-type'] ?? 'no content type'}, not text/plain`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_POLICY_BYTES) req.destroy(new Error(`policy from ${host} larger than ${MAX_POLICY_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${host} did not answer within ${FETCH_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}
