/**
 * HELO/EHLO sanity on port 25 (Postfix's reject_* helo restrictions, the ones without false positives):
 *   - a client naming OUR host name is lying (RFC 5321 4.1.4 lets us not believe it; spambots do it);
 *   - an address literal ("[192.0.2.1]", RFC 5321 4.1.3), or a bare address as many bots send it, must be the
 *     client's own address (IPv4-mapped IPv6 and IPv4 compare equal).
 * Anything else is accepted: a HELO name that does not resolve is common among legitimate MTAs, and SPF on
 * the HELO identity (auth.ts) already reports on it.
 */
import net from 'node:net';
import type { InboundFilter, SessionInfo } from './pipeline.js';
import { Reply, type SmtpError } from '../../protocols/smtp/replies.js';
import { normalizedIpBytes } from '../../net/cidr.js';

export interface HeloSettings {
  hostname: string;
}

/** The address named by a HELO argument ("[1.2.3.4]", "[IPv6:::1]", or a bare address), or null. */
export function heloAddress(helo: string): string | null {
  const m = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(helo);
  const candidate = m ? m[1]! : helo;
  return net.isIP(candidate) ? candidate : null;
}

function sameAddress(a: string, b: string): boolean {
  const x = normalizedIpBytes(a);
  const y = normalizedIpBytes(b);
  return !!x && !!y && Buffer.from(x).equals(Buffer.from(y));
}

export class HeloFilter implements InboundFilter {
  readonly name = 'helo';
  constructor(private readonly settings: HeloSettings) {}

  async helo(s: SessionInfo, helo: string): Promise<SmtpError | null> {
    const name = helo.toLowerCase().replace(/\.$/, '');
    if (name === this.settings.hostname.toLowerCase()) return Reply.heloOwnName();
    const literal = heloAddress(helo);
    if (literal && !sameAddress(literal, s.remoteAddress)) return Reply.heloWrongLiteral();
    return null;
  }
}
