/**
 * Sender authentication at the end of DATA (mailauth@4 with our injected DNS lookup):
 *   SPF (RFC 7208) for the MAIL FROM identity (postmaster@HELO for the null sender, RFC 7208 2.4) and, as
 *   RFC 7208 2.3 recommends, for the HELO identity; DKIM (RFC 6376, RSA and Ed25519 per RFC 8463); ARC
 *   (RFC 8617); DMARC (RFC 7489) with identifier alignment; iprev (RFC 8601 3, forward-confirmed reverse DNS).
 * The results go into ONE Authentication-Results header (RFC 8601) with our host name as authserv-id. Any
 * Authentication-Results already in the message that claims our authserv-id is removed first (RFC 8601 5):
 * only we may speak for us.
 *
 * Policy, in this order (the first that applies decides):
 *   1. DMARC fail (RFC 7489 6.6.3) with p=reject -> 550 5.7.1; with p=quarantine -> delivered to Junk;
 *      pct (6.6.4) samples which failing messages get the policy (the others get the next weaker one).
 *   2. SPF fail (hard, "-all") for MAIL FROM, with no valid DKIM signature of any domain and no DMARC pass
 *      -> 550 5.7.23 (RFC 7372). Nothing vouches for such a message; policyd-spf rejects it too.
 *   softfail, neutral, none, temperror and permerror never refuse: they are reported and left to the spam
 *   scorer (result.log.auth). A DNS failure must not bounce mail.
 * ARC override (RFC 8617 7.2, "local policy"): a DMARC or SPF failure as above is NOT enforced when the
 *   message carries a valid ARC chain (arc=pass) whose newest ARC-Seal was made by a domain in
 *   [protection] arc_trusted_sealers (or a subdomain of one), and that sealer's ARC-Authentication-Results
 *   recorded dmarc=pass, or dkim=pass for a domain aligned with the From domain. That is a mailing list or
 *   forwarder we trust telling us the message was authentic when it received it, before its footer or subject
 *   tag broke DKIM. The header keeps "dmarc=fail" with a comment naming the sealer, and so does the log line.
 *
 * Results are computed once per message and shared (`results(ctx)`), so the greylisting filter, which runs
 * earlier in the pipeline, can skip greylisting for allow-listed domains that pass SPF and DKIM.
 */
// mailauth (~40 MB of heap, ~200 ms to load) is imported on the first message checked, not at start-up: a
// server with [protection] off never loads it (Node caches the module after the first import()).
const mailauth = () => import('mailauth');
import libmime from 'libmime';
import type { DataContext, DataResult, InboundFilter } from './pipeline.js';
import { Reply } from '../../protocols/smtp/replies.js';
import { isNotFound, type DnsLookup } from '../../lib/dns/mailauth-resolver.js';
import { heloAddress } from './helo.js';

export interface AuthSettings {
  /** Our host name: the authserv-id of the Authentication-Results header. */
  hostname: string;
  arcTrustedSealers: string[];
}

export interface AuthDeps {
  lookup: DnsLookup;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** For DMARC pct sampling (0 <= x < 1). */
  random?: () => number;
}

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';

/** What the authentication checks found, for policy, greylisting and the spam scorer. */
export interface AuthOutcome {
  spf: { result: SpfResult; domain: string };
  spfHelo: { result: SpfResult; domain: string } | null;
  dkim: { domain: string; result: string; aligned: boolean; algorithm: string | null }[];
  dmarc: { result: string; domain: string; policy: string | null; pct: number } | null;
  arc: { result: string; sealer: string | null; trusted: boolean; vouches: boolean };
  iprev: { result: 'pass' | 'fail' | 'temperror' | 'permerror'; name: string | null };
  /** Authentication-Results lines (method results), in order. */
  lines: string[];
}

/** Sender domain of an address ("" for the null sender). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

function isSubdomainOf(domain: string, parent: string): boolean {
  return domain === parent || domain.endsWith(`.${parent}`);
}

/** Relaxed alignment (RFC 7489 3.1): same organizational domain, approximated by the last two labels. */
function relaxedAligned(a: string, b: string): boolean {
  const org = (d: string) => d.toLowerCase().split('.').slice(-2).join('.');
  return !!a && !!b && org(a) === org(b);
}

/**
 * RFC 8601 5: removes Authentication-Results fields whose authserv-id is ours (comments and an optional version
 * after the id are allowed). Returns the message unchanged when there is none.
 */
export function stripOwnAuthResults(raw: Buffer, authservId: string): { raw: Buffer; removed: number } {
  const text = raw.toString('latin1');
  let end = text.indexOf('\r\n\r\n');
  if (end < 0) end = text.length;
  else end += 2;
  const header = text.slice(0, end);
  const fields = header.split(/\r\n(?![ \t])/);
  const id = authservId.toLowerCase();
  let removed = 0;
  const kept = fields.filter((f) => {
    const m = /^authentication-results[ \t]*:([\s\S]*)$/i.exec(f);
    if (!m) return true;
    const value = m[1]!.replace(/\([^()]*\)/g, ' ').trim();
    const first = value.split(';', 1)[0]!.trim().split(/\s+/)[0]!.toLowerCase();
    if (first.replace(/\.$/, '') !== id) return true;
    removed++;
    return false;
  });
  if (!removed) return { raw, removed: 0 };
  return { raw: Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), raw.subarray(end)]), removed };
}

export class AuthFilter implements InboundFilter {
  readonly name = 'auth';
  private readonly memo = new WeakMap<DataContext, Promise<AuthOutcome>>();
  private readonly random: () => number;

  constructor(
    private readonly settings: AuthSettings,
    private readonly deps: AuthDeps,
  ) {
    this.random = deps.random ?? Math.random;
  }

  /** The checks for this message, computed once. */
  results(ctx: DataContext): Promise<AuthOutcome> {
    let p = this.memo.get(ctx);
    if (!p) {
      p = this.compute(ctx);
      this.memo.set(ctx, p);
    }
    return p;
  }

  async data(ctx: DataContext, result: DataResult): Promise<void> {
    const a = await this.results(ctx);
    const stripped = stripOwnAuthResults(ctx.raw, this.settings.hostname);
    if (stripped.removed) ctx.raw = stripped.raw;
    const lines = [...a.lines];
    let reject = null;
    let junk = false;
    let overriddenBy: string | null = null;
    const dmarc = a.dmarc;
    if (dmarc && dmarc.result === 'fail' && dmarc.policy && dmarc.policy !== 'none') {
      // RFC 7489 6.6.4: pct; a message outside the sample gets the next weaker policy.
      const sampled = dmarc.pct >= 100 || this.random() * 100 < dmarc.pct;
      const policy = sampled ? dmarc.policy : dmarc.policy === 'reject' ? 'quarantine' : 'none';
      if (policy !== 'none') {
        if (a.arc.vouches) overriddenBy = a.arc.sealer;
        else if (policy === 'reject') reject = Reply.dmarcReject(dmarc.domain);
        else junk = true;
      }
    }
    if (!reject && !junk && !overriddenBy && a.spf.result === 'fail' && !a.dkim.some((d) => d.result === 'pass') && dmarc?.result !== 'pass') {
      if (a.arc.vouches) overriddenBy = a.arc.sealer;
      else reject = Reply.spfFail(a.spf.domain);
    }
    if (overriddenBy) {
      // Reported as a comment (RFC 8601 2.3) on the result that was not enforced; the result itself stays true.
      const method = dmarc?.result === 'fail' ? 'dmarc' : 'spf';
      const i = lines.findIndex((l) => l.startsWith(`${method}=fail`));
      if (i >= 0) lines[i] = lines[i]!.replace(`${method}=fail`, `${method}=fail (not enforced: trusted ARC sealer ${overriddenBy})`);
    }
    result.log.auth = {
      spf: a.spf.result,
      spfHelo: a.spfHelo?.result ?? null,
      dkim: a.dkim.map((d) => `${d.result}:${d.domain}`),
      dmarc: dmarc ? `${dmarc.result}${dmarc.policy ? `:p=${dmarc.policy}` : ''}` : 'none',
      arc: a.arc.result,
      arcSealer: a.arc.sealer,
      iprev: a.iprev.result,
      ...(overriddenBy ? { arcOverride: overriddenBy } : {}),
      ...(stripped.removed ? { forgedAuthResultsRemoved: stripped.removed } : {}),
    };
    if (reject) {
      result.reject = reject;
      return;
    }
    if (junk) result.junk = true;
    result.headers.push(`${libmime.foldLines(`Authentication-Results: ${this.settings.hostname};\r\n ${lines.join(';\r\n ')}`, 160)}\r\n`);
  }

  private async compute(ctx: DataContext): Promise<AuthOutcome> {
    const lookup = this.deps.lookup;
    const ip = ctx.remoteAddress.replace(/^::ffff:(?=\d+\.)/i, '');
    const helo = ctx.helo ?? `[${ip}]`;
    const heloIsName = !heloAddress(helo) && helo.includes('.');
    const { authenticate, spf: spfCheck } = await mailauth();
    const [res, iprev, heloSpf] = await Promise.all([
      authenticate(ctx.raw, { ip, helo, sender: ctx.sender, mta: this.settings.hostname, resolver: lookup as never, disableBimi: true, minBitLength: 1024 }),
      this.iprev(ip),
      // RFC 7208 2.3: the HELO identity; for the null sender the MAIL FROM check already is this one.
      heloIsName && ctx.sender !== '' ? spfCheck({ sender: `postmaster@${helo}`, ip, helo, mta: this.settings.hostname, resolver: lookup as never }) : Promise.resolve(null),
    ]);
    const lines: string[] = [];
    lines.push(iprev.result === 'pass' ? `iprev=pass policy.iprev=${ip} (${iprev.name})` : `iprev=${iprev.result} policy.iprev=${ip}`);
    const spfRes = res.spf ? (res.spf.status.result as SpfResult) : 'none';
    const spfDomain = (res.spf && (res.spf as unknown as { domain?: string }).domain) || domainOf(ctx.sender) || helo;
    if (res.spf) lines.push(res.spf.info);
    let spfHelo: AuthOutcome['spfHelo'] = null;
    if (heloSpf) {
      spfHelo = { result: heloSpf.status.result as SpfResult, domain: helo.toLowerCase() };
      lines.push(`spf=${spfHelo.result} smtp.helo=${helo}`);
    }
    const dkimRows = (res.dkim?.results ?? []) as unknown as { signingDomain?: string; info: string; algo?: string; status: { result: string; aligned?: string | false } }[];
    for (const r of dkimRows) lines.push(r.info);
    const arcRaw = res.arc as unknown as { status: { result: string }; info?: string; chain?: { 'arc-seal'?: { parsed?: { d?: { value?: string } } } }[]; authenticationResults?: Record<string, any> } | false;
    if (arcRaw && arcRaw.info) lines.push(arcRaw.info);
    const dmarcRaw = res.dmarc as unknown as { status: { result: string; header?: { from?: string } }; domain?: string; policy?: string; pct?: number; info?: string } | false;
    if (dmarcRaw && dmarcRaw.info) lines.push(dmarcRaw.info);

    const fromDomain = (dmarcRaw && (dmarcRaw.status.header?.from || dmarcRaw.domain)) || '';
    const chain = arcRaw ? arcRaw.chain : undefined;
    const sealer = chain && chain.length ? (chain[chain.length - 1]?.['arc-seal']?.parsed?.d?.value ?? '').toLowerCase() || null : null;
    const arcResult = arcRaw ? arcRaw.status.result : 'none';
    const trusted = !!sealer && arcResult === 'pass' && this.settings.arcTrustedSealers.some((t) => isSubdomainOf(sealer, t));
    let vouches = false;
    if (trusted && arcRaw && arcRaw.authenticationResults) {
      const aar = arcRaw.authenticationResults;
      const dkims = (Array.isArray(aar.dkim) ? aar.dkim : []) as { result?: string; header?: { d?: string; i?: string } }[];
      vouches =
        aar.dmarc?.result === 'pass' ||
        dkims.some((d) => d.result === 'pass' && relaxedAligned((d.header?.d ?? d.header?.i ?? '').replace(/^.*@/, ''), fromDomain));
    }
    return {
      spf: { result: spfRes, domain: spfDomain },
      spfHelo,
      dkim: dkimRows.map((r) => ({ domain: (r.signingDomain ?? '').toLowerCase(), result: r.status.result, aligned: !!r.status.aligned, algorithm: r.algo ?? null })),
      dmarc: dmarcRaw ? { result: dmarcRaw.status.result, domain: fromDomain, policy: dmarcRaw.policy ?? null, pct: dmarcRaw.pct ?? 100 } : null,
      arc: { result: arcResult, sealer, trusted, vouches },
      iprev,
      lines,
    };
  }

  /** RFC 8601 3 (iprev): a PTR name of the address whose A/AAAA records include the address. */
  private async iprev(ip: string): Promise<AuthOutcome['iprev']> {
    const v6 = ip.includes(':');
    let names: string[];
    try {
      names = (await this.deps.lookup(reverseName(ip), 'PTR')) as string[];
    } catch (err) {
      return { result: isNotFound(err) ? 'permerror' : 'temperror', name: null };
    }
    let temp = false;
    for (const name of names.slice(0, 10)) {
      try {
        const addrs = (await this.deps.lookup(name, v6 ? 'AAAA' : 'A')) as string[];
        if (addrs.some((a) => a.toLowerCase() === ip.toLowerCase())) return { result: 'pass', name: name.replace(/\.$/, '') };
      } catch (err) {
        if (!isNotFound(err)) temp = true;
      }
    }
    return { result: temp ? 'temperror' : 'fail', name: null };
  }
}

/** The in-addr.arpa / ip6.arpa name of an address (RFC 1035 3.5, RFC 3596 2.5). */
export function reverseName(ip: string): string {
  if (!ip.includes(':')) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const parts = ip.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail].map((g) => g.padStart(4, '0'));
  return `${groups.join('').split('').reverse().join('.')}.ip6.arpa`;
}
