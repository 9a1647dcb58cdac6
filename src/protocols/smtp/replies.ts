/**
 * SMTP replies as named constants, each with its RFC 3463 enhanced status code. Handlers throw SmtpError;
 * the engine turns it into exactly one reply line. Never build reply strings in handlers.
 */
export class SmtpError extends Error {
  override name = 'SmtpError';
  readonly responseCode: number;
  constructor(
    readonly code: number,
    readonly enhanced: string,
    readonly text: string,
  ) {
    // smtp-server writes `${responseCode} ${message}`; the message carries the enhanced code first.
    super(`${enhanced} ${text}`);
    this.responseCode = code;
  }
  get temporary(): boolean {
    return this.code >= 400 && this.code < 500;
  }
}

const r = (code: number, enhanced: string, text: string) => () => new SmtpError(code, enhanced, text);

export const Reply = {
  // RFC 3207 4 / RFC 4954 4: submission must be secured before AUTH or MAIL (our listener on 587).
  mustStartTls: r(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authRequired: r(530, '5.7.0', 'Authentication required'),
  authInvalid: r(535, '5.7.8', 'Authentication credentials invalid'),
  authTempFail: r(454, '4.7.0', 'Temporary authentication failure'),
  authMechanism: r(504, '5.5.4', 'Unrecognized authentication type'),
  senderNotOwned: (addr: string, user: string) => new SmtpError(553, '5.7.1', `Sender address <${addr}> rejected: not owned by user ${user}`),
  nullSenderSubmission: r(553, '5.7.1', 'Null sender not allowed for authenticated submission'),
  badSenderSyntax: r(553, '5.1.7', 'Bad sender address syntax'),
  badRecipientSyntax: r(553, '5.1.3', 'Bad recipient address syntax'),
  unknownUser: r(550, '5.1.1', 'Recipient address rejected: User unknown'),
  relayDenied: r(554, '5.7.1', 'Relay access denied'),
  tooManyRecipients: r(452, '4.5.3', 'Too many recipients'),
  mailboxFull: r(452, '4.2.2', 'Mailbox full'),
  quotaExceededPermanently: r(552, '5.2.2', 'Message larger than the recipient\'s quota'),
  messageTooBig: (max: number) => new SmtpError(552, '5.3.4', `Message size exceeds fixed maximum message size (${max} bytes)`),
  bareLineEnding: r(554, '5.6.0', 'Message contains a bare LF or bare CR; only CRLF line endings are allowed (RFC 5321 2.3.8)'),
  tempFailure: r(451, '4.3.0', 'Local error in processing; please try again later'),
  tooManyErrors: r(421, '4.7.0', 'Too many errors, closing connection'),
  tooManyCommands: r(421, '4.7.0', 'Too many commands without mail, closing connection'),
  tooManyConnections: r(421, '4.7.0', 'Too many connections, try again later'),
  tooManyConnectionsFromIp: r(421, '4.7.0', 'Too many connections from your address, try again later'),
  shuttingDown: r(421, '4.3.2', 'Service shutting down, try again later'),
  // Inbound protection on port 25 (core/inbound/*).
  /** A filter failed (DNS down, daemon down, time budget): try later rather than accept unchecked. */
  inboundTempFail: r(451, '4.7.1', 'Temporary failure in inbound checks, please try again later'),
  /** RFC 5782 / RFC 5321 3.1: 554 in place of the greeting. */
  dnsblListed: (ip: string, zones: string) => new SmtpError(554, '5.7.1', `Service unavailable; client [${ip}] blocked using ${zones}`),
  heloOwnName: r(550, '5.7.1', 'HELO/EHLO rejected: that is my own name'),
  heloWrongLiteral: r(550, '5.7.1', 'HELO/EHLO rejected: address literal does not match your IP address'),
  /** RFC 2920 3.1: EHLO must be the last command of a group; a client that does not wait for its reply is not an MTA. */
  pipelinedBeforeGreeting: r(554, '5.5.1', 'Protocol error: command sent before the EHLO/HELO reply'),
  /** RFC 6647 2.1: greylisting answers with a temporary failure. */
  greylisted: r(451, '4.7.1', 'Greylisted, please try again later'),
  rateConnections: r(421, '4.7.0', 'Too many connections per minute from your address, try again later'),
  rateMessages: r(450, '4.7.1', 'Too many messages per minute from your address, try again later'),
  rateRecipients: r(452, '4.5.3', 'Too many recipients per minute from your address, try again later'),
  /** RFC 7489 6.6.3 / 7.1: DMARC p=reject. */
  dmarcReject: (domain: string) => new SmtpError(550, '5.7.1', `Message rejected: DMARC policy of ${domain} says reject`),
  /** RFC 7208 8.4 / RFC 7372 3.2: X.7.23 SPF validation failed. */
  spfFail: (domain: string) => new SmtpError(550, '5.7.23', `Message rejected: SPF of ${domain} does not permit your address`),
  // Content filters (RFC 3463 3.8: X.7.1 "delivery not authorized, message refused").
  spamRejected: r(550, '5.7.1', 'Message refused: classified as spam'),
  spamDeferred: r(451, '4.7.1', 'Message deferred by the spam filter; please try again later'),
  virusFound: r(554, '5.7.1', 'Message refused: it contains malware'),
} as const;
