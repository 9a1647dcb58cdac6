/**
 * Pregreet detection (postscreen's greet test) and the protocol checks that go with it.
 *
 * A client not yet known waits `waitMs` for the 220 banner; an SMTP client must wait for the greeting
 * (RFC 5321 3.1, 4.3.1), so one that talks first is a bot: smtp-server answers it "421 You talk too soon" and
 * closes, and we forget any pass it had. A client that waited (its session reached the connect stage, which
 * only happens after the banner delay without early talk) is remembered as passed for `rememberMs` and gets
 * the banner at once afterwards, so real MTAs pay the wait once a day, not per connection (postscreen's cache).
 *
 * Pipelining before the EHLO/HELO reply (RFC 2920 3.1: EHLO must end a command group) is detected by the SMTP
 * engine (server.ts): a command dispatched before the event loop turned after the EHLO reply was written
 * cannot be an answer to it. Best effort: it catches commands sent in the same packet as, or queued behind,
 * EHLO; a bot that happens to wait one packet is not caught. Such a client loses its pass too.
 *
 * State is in memory (bounded): a restart makes known clients wait once more, nothing worse.
 */
import type { InboundFilter, SessionInfo } from './pipeline.js';
import type { SmtpError } from '../../protocols/smtp/replies.js';

export interface PregreetSettings {
  waitMs: number;
  rememberMs: number;
  pipeliningCheck: boolean;
}

/** What the SMTP engine asks of the screen (SmtpDeps.screen). */
export interface ClientScreen {
  /** Milliseconds this client waits for the banner. */
  bannerDelayMs(ip: string): number;
  /** Whether commands pipelined before the EHLO reply are refused. */
  readonly pipeliningCheck: boolean;
  /** Trusted clients ([protection] screen_exempt, relay_networks) are not screened at all. */
  exempt?(ip: string): boolean;
  /** The engine saw a protocol violation: early talk or pipelining before the EHLO reply. */
  violation(ip: string, kind: 'pregreet' | 'pipelining', cid?: string): void;
}

const MAX_REMEMBERED = 200_000;

export class Pregreet implements InboundFilter, ClientScreen {
  readonly name = 'pregreet';
  readonly failOpen = true;
  private readonly passed = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly settings: PregreetSettings,
    private readonly deps: { log: { info(o: object, msg: string): void }; now?: () => number },
  ) {
    this.now = deps.now ?? Date.now;
  }

  get pipeliningCheck(): boolean {
    return this.settings.pipeliningCheck;
  }

  bannerDelayMs(ip: string): number {
    const until = this.passed.get(ip);
    if (until !== undefined && until > this.now()) return 0;
    return this.settings.waitMs;
  }

  violation(ip: string, kind: 'pregreet' | 'pipelining', cid?: string): void {
    this.passed.delete(ip);
    this.deps.log.info({ cid, remote: ip, check: kind }, kind === 'pregreet' ? 'client talked before the banner (pregreet)' : 'client pipelined before the EHLO reply');
  }

  /** Reaching the connect stage means the client waited for the banner. */
  async connect(s: SessionInfo): Promise<SmtpError | null> {
    const t = this.now();
    if (this.passed.size >= MAX_REMEMBERED) {
      for (const [k, until] of this.passed) if (until <= t) this.passed.delete(k);
      if (this.passed.size >= MAX_REMEMBERED) this.passed.clear();
    }
    this.passed.set(s.remoteAddress, t + this.settings.rememberMs);
    return null;
  }

  isKnown(ip: string): boolean {
    return this.bannerDelayMs(ip) === 0;
  }
}
