/** The Received trace header (RFC 5321 4.4, RFC 3848 "with" protocol types). Pure. */

export interface ReceivedInfo {
  helo: string | null;
  remoteAddress: string;
  /** Reverse DNS name when known (verified), else null. */
  remoteName?: string | null;
  hostname: string;
  protocol: 'SMTP' | 'ESMTP' | 'ESMTPS' | 'ESMTPA' | 'ESMTPSA';
  tls?: { version: string; cipher: string } | null;
  id: string;
  /** Only for single-recipient messages (a list would disclose Bcc recipients). */
  recipient?: string | null;
  date: Date;
}

const SAFE_HELO = /^[A-Za-z0-9.:_[\]-]{1,255}$/;

export function addressLiteral(ip: string): string {
  return ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
}

/** RFC 5322 3.3 date-time, e.g. "Mon, 30 Nov 2026 10:05:07 +0000". */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export function receivedHeader(i: ReceivedInfo): string {
  const helo = i.helo && SAFE_HELO.test(i.helo) ? i.helo : 'unknown';
  const from = `from ${helo} (${i.remoteName ? `${i.remoteName} ` : ''}${addressLiteral(i.remoteAddress)})`;
  const tls = i.tls ? `\r\n\t(using ${i.tls.version} with cipher ${i.tls.cipher})` : '';
  const rcpt = i.recipient && !/[\r\n<>]/.test(i.recipient) ? `\r\n\tfor <${i.recipient}>` : '';
  return `Received: ${from}\r\n\tby ${i.hostname} (Postern) with ${i.protocol}${tls}\r\n\tid ${i.id}${rcpt};\r\n\t${rfc5322Date(i.date)}\r\n`;
}
