/**
 * Delivery Status Notifications (RFC 3464, in the multipart/report container of RFC 6522): bounces ("failed"),
 * delay notices ("delayed") and "relayed" notices for NOTIFY=SUCCESS to a server without DSN (RFC 3461 5.2.2).
 *
 * - The DSN is sent from the null reverse-path (RFC 3461 6.1 / RFC 5321 4.5.5) to the original sender; the
 *   queue never creates one for a message whose sender was null (no bounce loops).
 * - NOTIFY (RFC 3461 4.1): NEVER -> nothing; absent -> FAILURE and DELAY; otherwise only the listed events.
 * - RET (RFC 3461 4.3): HDRS -> the original header only (text/rfc822-headers, RFC 6522 4); FULL or absent ->
 *   the whole message, unless larger than `maxReturnBytes`, then the header only.
 * - ENVID goes into Original-Envelope-Id (RFC 3464 2.2.1), ORCPT into Original-Recipient (2.3.1).
 * - A message sent with SMTPUTF8 gets message/global-delivery-status and message/global (RFC 6533 3, 6).
 * Pure: the caller supplies the time and the random boundary/Message-ID.
 */

export type DsnAction = 'failed' | 'delayed' | 'relayed' | 'delivered';

export interface DsnRecipient {
  address: string;
  orcpt: string | null;
  action: DsnAction;
  /** RFC 3463 status, e.g. "5.1.1". */
  status: string;
  diagnostic: string | null;
  /** The diagnostic is a remote SMTP reply (Diagnostic-Code: smtp;) rather than our own text. */
  fromRemote: boolean;
  remoteMta: string | null;
  lastAttempt: number | null;
  /** For "delayed": when we give up (RFC 3464 2.3.8). */
  willRetryUntil: number | null;
}

export interface DsnInput {
  hostname: string;
  queueId: string;
  /** The original envelope sender (the DSN's recipient). */
  sender: string;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  smtputf8: boolean;
  arrival: number;
  recipients: DsnRecipient[];
  /** The original message (prefix + body). */
  original: Buffer;
  now: number;
  /** Random token for the boundary and Message-ID. */
  token: string;
  maxReturnBytes?: number;
}

/** Which DSN events a recipient's NOTIFY asks for (RFC 3461 4.1; absent = FAILURE,DELAY as Postfix does). */
export function wantsDsn(notify: string[] | null, event: 'FAILURE' | 'DELAY' | 'SUCCESS'): boolean {
  if (!notify || !notify.length) return event !== 'SUCCESS';
  const n = notify.map((x) => x.toUpperCase());
  if (n.includes('NEVER')) return false;
  return n.includes(event);
}

/** RFC 5322 3.3 date-time. */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

const SUBJECTS: Record<DsnAction, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  relayed: 'Successful Mail Delivery Report',
  delivered: 'Successful Mail Delivery Report',
};

export function buildDsn(i: DsnInput): Buffer {
  const action: DsnAction = i.recipients.some((r) => r.action === 'failed') ? 'failed' : i.recipients.some((r) => r.action === 'delayed') ? 'delayed' : 'relayed';
  const boundary = `${i.token}/${i.hostname}`;
  const maxReturn = i.maxReturnBytes ?? 10 * 1024 * 1024;
  const headerEnd = i.original.indexOf('\r\n\r\n');
  const originalHeader = headerEnd < 0 ? i.original : i.original.subarray(0, headerEnd + 2);
  const returnFull = i.ret !== 'HDRS' && action === 'failed' && i.original.length <= maxReturn;
  const global = i.smtputf8;

  const human: string[] = [];
  human.push(`This is the mail system at host ${i.hostname}.`, '');
  if (action === 'failed') {
    human.push("I'm sorry to have to inform you that your message could not", 'be delivered to one or more recipients. It is attached below.', '');
  } else if (action === 'delayed') {
    const until = i.recipients.find((r) => r.willRetryUntil)?.willRetryUntil;
    human.push('Your message could not be delivered yet to one or more recipients.', `The mail system will keep trying${until ? ` until ${rfc5322Date(until)}` : ''}.`, 'You do not need to resend the message.', '');
  } else {
    human.push('Your message was relayed to a system that does not send delivery notifications;', 'this is the last notice you will get for these recipients.', '');
  }
  for (const r of i.recipients) human.push(`<${r.address}>: ${r.diagnostic ?? r.status}${r.remoteMta ? ` (${r.remoteMta})` : ''}`);

  // RFC 3464 2.2: per-message fields.
  const perMessage = [`Reporting-MTA: dns; ${i.hostname}`, `X-Postern-Queue-ID: ${i.queueId}`];
  if (i.envid) perMessage.push(`Original-Envelope-Id: ${i.envid}`);
  perMessage.push(`Arrival-Date: ${rfc5322Date(i.arrival)}`);
  // RFC 3464 2.3: per-recipient fields.
  const perRecipient = i.recipients.map((r) => {
    const f: string[] = [];
    if (r.orcpt) f.push(`Original-Recipient: ${r.orcpt.includes(';') ? r.orcpt : `rfc822;${r.orcpt}`}`);
    f.push(`Final-Recipient: ${global && /[^\x00-\x7f]/.test(r.address) ? 'utf-8' : 'rfc822'}; ${r.address}`);
    f.push(`Action: ${r.action}`);
    f.push(`Status: ${r.status}`);
    if (r.remoteMta) f.push(`Remote-MTA: dns; ${r.remoteMta.replace(/ \[.*\]$/, '')}`);
    if (r.diagnostic) f.push(r.fromRemote ? `Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}` : `Diagnostic-Code: X-Postern; ${oneLine(r.diagnostic)}`);
    if (r.lastAttempt) f.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`);
    if (r.willRetryUntil && r.action === 'delayed') f.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`);
    return f.join('\r\n');
  });

  const lines: string[] = [
    `From: Mail Delivery System <MAILER-DAEMON@${i.hostname}>`,
    `To: <${i.sender}>`,
    `Subject: ${SUBJECTS[action]}`,
    `Date: ${rfc5322Date(i.now)}`,
    `Message-ID: <${i.token}.dsn@${i.hostname}>`,
    // RFC 3834 5: an automatic response; auto-responders must not answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="${boundary}"`,
    'Content-Transfer-Encoding: 8bit',
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=utf-8',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    `Content-Type: message/${global ? 'global-delivery-status' : 'delivery-status'}`,
    '',
    perMessage.join('\r\n'),
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
  ];
  const head = Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
  let partHead: string;
  let body: Buffer;
  if (returnFull) {
    partHead = `Content-Description: Undelivered Message\r\nContent-Type: message/${global ? 'global' : 'rfc822'}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`;
    body = i.original;
  } else {
    partHead = `Content-Description: ${action === 'failed' ? 'Undelivered' : 'Delayed'} Message Headers\r\nContent-Type: ${global ? 'message/global-headers' : 'text/rfc822-headers'}\r\n\r\n`;
    body = originalHeader;
  }
  const needsCrlf = body.length > 0 && !body.subarray(-2).equals(Buffer.from('\r\n'));
  return Buffer.concat([head, Buffer.from(partHead), body, Buffer.from(`${needsCrlf ? '\r\n' : ''}\r\n--${boundary}--\r\n`)]);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}
