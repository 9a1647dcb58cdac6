/**
 * Greylisting (RFC 6647; Postgrey's job). A triplet is (client network, envelope sender, recipient), the network
 * being the client's /24 (IPv4) or /64 (IPv6), since large senders retry from another address of the same
 * pool (RFC 6647 4.1). The first message for a triplet gets 451 4.7.1; a retry after `delayMs` passes, and
 * the client network is then allowed without greylisting for `autoAllowMs` (renewed, at most daily, while it
 * keeps sending). Triplets never retried are forgotten after TRIPLET_MAX_AGE_MS.
 *
 * Where the decision is taken:
 *   - at RCPT TO, per recipient, for every sender domain NOT in `allowDomains` (cheap: no message transferred);
 *   - at the end of DATA for sender domains in `allowDomains`, because the exemption (the message passes SPF
 *     for that domain AND carries a valid DKIM signature of that domain) needs the message. Such a message that
 *     does not authenticate is greylisted there, with all its recipients' triplets.
 * State is in the GreylistRepo (SQLite): it survives restarts, as a sender's retry may come after one.
 * The clock is injected (`now`).
 */
import type { DataContext, DataResult, InboundFilter, SessionInfo } from './pipeline.js';
import { Reply, type SmtpError } from '../../protocols/smtp/replies.js';
import type { GreylistRepo } from '../../storage/types.js';
import { normalizedIpBytes, bytesToIp } from '../../net/cidr.js';
import { domainOf, type AuthOutcome } from './auth.js';

export interface GreylistSettings {
  delayMs: number;
  autoAllowMs: number;
  allowDomains: string[];
}

export interface GreylistDeps {
  repo: GreylistRepo;
  log: { info(o: object, msg: string): void };
  now?: () => number;
  /** The sender authentication results of a message (AuthFilter.results), for the allow-domain exemption. */
  authResults?: (ctx: DataContext) => Promise<AuthOutcome>;
}

/** A triplet not retried within this time is forgotten (Postgrey's max-age is similar). */
export const TRIPLET_MAX_AGE_MS = 2 * 86_400_000;
const PURGE_EVERY_MS = 3_600_000;
const RENEW_EVERY_MS = 86_400_000;

/** The client network greylisting groups by: "192.0.2.0/24" or "2001:db8:1:2::/64". */
export function clientNetwork(ip: string): string {
  const b = normalizedIpBytes(ip);
  if (!b) return ip;
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.0/24`;
  const n = new Uint8Array(16);
  n.set(b.subarray(0, 8));
  return `${bytesToIp(n)}/64`;
}

export class GreylistFilter implements InboundFilter {
  readonly name = 'greylist';
  private readonly now: () => number;
  private lastPurge = 0;

  constructor(
    private readonly settings: GreylistSettings,
    private readonly deps: GreylistDeps,
  ) {
    this.now = deps.now ?? Date.now;
  }

  private allowListed(sender: string): boolean {
    const d = domainOf(sender);
    return !!d && this.settings.allowDomains.some((a) => d === a || d.endsWith(`.${a}`));
  }

  async rcpt(s: SessionInfo, sender: string, rcpt: string): Promise<SmtpError | null> {
    if (this.allowListed(sender) && this.deps.authResults) return null; // decided at the end of DATA
    return this.check(s, sender, [rcpt]);
  }

  async data(ctx: DataContext, result: DataResult): Promise<void> {
    if (!this.allowListed(ctx.sender) || !this.deps.authResults) return;
    const network = clientNetwork(ctx.remoteAddress);
    if ((await this.deps.repo.allowedUntil(network)) > this.now()) return;
    const a = await this.deps.authResults(ctx);
    const domain = domainOf(ctx.sender);
    const spfOk = a.spf.result === 'pass' && a.spf.domain.toLowerCase() === domain;
    const dkimOk = a.dkim.some((d) => d.result === 'pass' && d.domain === domain);
    if (spfOk && dkimOk) {
      result.log.greylist = 'skipped: allow-listed domain authenticated';
      return;
    }
    const err = await this.check(ctx, ctx.sender, ctx.recipients);
    if (err) result.reject = err;
  }

  /** Greylists unless every triplet has waited long enough; a pass allows the network. */
  private async check(s: SessionInfo, sender: string, rcpts: string[]): Promise<SmtpError | null> {
    const t = this.now();
    const network = clientNetwork(s.remoteAddress);
    const repo = this.deps.repo;
    if (t - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = t;
      await repo.purge(t - TRIPLET_MAX_AGE_MS, t);
    }
    const allowedUntil = await repo.allowedUntil(network);
    if (allowedUntil > t) {
      if (allowedUntil - t < this.settings.autoAllowMs - RENEW_EVERY_MS) await repo.allowNetwork(network, t + this.settings.autoAllowMs);
      return null;
    }
    let waiting = false;
    for (const rcpt of rcpts) {
      const triplet = `${network}|${sender.toLowerCase()}|${rcpt.toLowerCase()}`;
      const seen = await repo.touch(triplet, t);
      if (seen.isNew || t - seen.firstSeen < this.settings.delayMs) waiting = true;
    }
    if (waiting) {
      this.deps.log.info({ cid: s.id, remote: s.remoteAddress, network, sender, rcpts }, 'greylisted');
      return Reply.greylisted();
    }
    if (this.settings.autoAllowMs > 0) await repo.allowNetwork(network, t + this.settings.autoAllowMs);
    return null;
  }
}
