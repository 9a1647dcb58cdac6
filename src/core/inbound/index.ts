/**
 * The inbound checks for port 25, assembled from [protection] (and later [spam] / [virus]) settings.
 *
 * Order of the filters (each stage runs them in this order; the first refusal wins):
 *   1. ratelimit  connections / messages / recipients per minute per client IP (cheapest first)
 *   2. dnsbl      known bad sources, at connect
 *   3. pregreet   records clients that waited for the banner (the wait itself is the screen, see below)
 *   4. helo       HELO/EHLO sanity
 *   5. greylist   at RCPT, or at the end of DATA for allow-listed sender domains
 *   6. auth       SPF, DKIM, ARC, DMARC, iprev; Authentication-Results; DMARC/SPF policy
 *   7. [spam, virus: appended by inboundFilters() below when configured]
 * `[protection] enabled = false` gives no pipeline and no screen at all: a plain MTA.
 */
import type { Settings } from '../../config/load.js';
import { InboundPipeline, type InboundFilter } from './pipeline.js';
import { cidrContains, parseCidrList } from '../../net/cidr.js';
import { Reply } from '../../protocols/smtp/replies.js';
import type { DnsLookup } from '../../lib/dns/mailauth-resolver.js';
import type { GreylistRepo } from '../../storage/types.js';
import { RateLimitFilter } from './ratelimit.js';
import { DnsblFilter } from './dnsbl.js';
import { Pregreet, type ClientScreen } from './pregreet.js';
import { HeloFilter } from './helo.js';
import { GreylistFilter } from './greylist.js';
import { AuthFilter } from './auth.js';
import { SpamFilter } from './spam.js';
import { VirusFilter } from './virus.js';

export interface InboundLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface InboundDeps {
  log: InboundLog;
  /** DNS for SPF/DKIM/DMARC/ARC, DNSBL and iprev (createDnsLookup with [dns] servers). */
  lookup: DnsLookup;
  greylist: GreylistRepo;
  now?: () => number;
  random?: () => number;
}

export interface InboundSetup {
  pipeline: InboundPipeline | null;
  /** Per-client banner delay and protocol checks for the SMTP engine (SmtpDeps.screen). */
  screen: ClientScreen | null;
}

/** Budget for all data-stage filters of one message (RFC 5321 4.5.3.2.6 gives the client 10 minutes). */
const DATA_BUDGET_MS = 60_000;

/** The filter list in pipeline order (see the header). Spam and virus filters are appended at the marked place. */
export function inboundFilters(settings: Settings, deps: InboundDeps): { filters: InboundFilter[]; screen: ClientScreen } {
  const p = settings.protection;
  const now = deps.now ?? Date.now;
  const pregreet = new Pregreet({ waitMs: p.pregreetWaitMs, rememberMs: p.pregreetRememberMs, pipeliningCheck: p.pipeliningCheck }, { log: deps.log, now });
  const auth = new AuthFilter({ hostname: settings.hostname, arcTrustedSealers: p.arcTrustedSealers }, { lookup: deps.lookup, log: deps.log, random: deps.random });
  const filters: InboundFilter[] = [
    new RateLimitFilter(
      { connectionsPerMinute: p.rateLimitConnectionsPerMinute, messagesPerMinute: p.rateLimitMessagesPerMinute, recipientsPerMinute: p.rateLimitRecipientsPerMinute },
      now,
    ),
    new DnsblFilter({ sites: p.dnsbl, threshold: p.dnsblThreshold, cacheMs: p.dnsblCacheMs }, { lookup: deps.lookup, log: deps.log, now }),
    pregreet,
  ];
  if (p.heloChecks) filters.push(new HeloFilter({ hostname: settings.hostname }));
  if (p.greylisting) {
    filters.push(
      new GreylistFilter(
        { delayMs: p.greylistDelayMs, autoAllowMs: p.greylistAutoAllowMs, allowDomains: p.greylistAllowDomains },
        { repo: deps.greylist, log: deps.log, now, authResults: (ctx) => auth.results(ctx) },
      ),
    );
  }
  filters.push(auth);
  // --- content filters ([spam], [virus]) go here, after sender authentication (they may use result.log.auth).
  filters.push(new SpamFilter({ rspamd: settings.spam.rspamd, timeoutMs: settings.spam.timeoutMs, threshold: settings.spam.threshold, hostname: settings.hostname }, { log: deps.log }));
  if (settings.virus.clamd) filters.push(new VirusFilter({ clamd: settings.virus.clamd, failOpen: settings.virus.failOpen, timeoutMs: settings.virus.timeoutMs }, { log: deps.log }));
  return { filters, screen: pregreet };
}

/** Filters that screen unknown clients; trusted networks skip them (Postfix: permit_mynetworks first). */
const SCREENING = new Set(['ratelimit', 'dnsbl', 'pregreet', 'helo', 'greylist']);

/** A filter that answers nothing for trusted clients and defers to `f` for everyone else. */
function unlessTrusted(f: InboundFilter, trusted: (ip: string) => boolean): InboundFilter {
  const pass = (ip: string) => trusted(ip);
  return {
    name: f.name,
    failOpen: f.failOpen,
    connect: f.connect && ((s) => (pass(s.remoteAddress) ? Promise.resolve(null) : f.connect!(s))),
    helo: f.helo && ((s, h) => (pass(s.remoteAddress) ? Promise.resolve(null) : f.helo!(s, h))),
    mailFrom: f.mailFrom && ((s, m) => (pass(s.remoteAddress) ? Promise.resolve(null) : f.mailFrom!(s, m))),
    rcpt: f.rcpt && ((s, m, r) => (pass(s.remoteAddress) ? Promise.resolve(null) : f.rcpt!(s, m, r))),
    data: f.data && ((ctx, result) => (pass(ctx.remoteAddress) ? Promise.resolve() : f.data!(ctx, result))),
  };
}

export function buildInboundPipeline(settings: Settings, deps: InboundDeps): InboundSetup {
  if (!settings.protection.enabled) return { pipeline: null, screen: null };
  const { filters: all, screen: pregreet } = inboundFilters(settings, deps);
  const exempt = parseCidrList([...settings.protection.screenExempt, ...settings.smtp.relayNetworks]);
  const trusted = (ip: string) => cidrContains(exempt, ip);
  const filters = all.map((f) => (SCREENING.has(f.name) ? unlessTrusted(f, trusted) : f));
  const screen: ClientScreen = {
    bannerDelayMs: (ip) => (trusted(ip) ? 0 : pregreet.bannerDelayMs(ip)),
    get pipeliningCheck() {
      return pregreet.pipeliningCheck;
    },
    exempt: trusted,
    violation: (ip, kind, cid) => pregreet.violation(ip, kind, cid),
  };
  const pipeline = new InboundPipeline(filters, { tempFail: Reply.inboundTempFail, log: deps.log, dataBudgetMs: DATA_BUDGET_MS });
  return { pipeline, screen };
}
