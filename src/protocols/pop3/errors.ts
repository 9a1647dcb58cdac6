/**
 * Typed POP3 errors. Handlers throw them; the session's one catch point turns each into exactly one
 * "-ERR" line (RFC 1939 3), with an RFC 2449 8 / RFC 3206 response code where one applies.
 * Texts on the wire are generic; details go to the log with the connection id.
 */

/** RFC 2449 8.1 (IN-USE, LOGIN-DELAY) and RFC 3206 4-5 (SYS/TEMP, SYS/PERM, AUTH). */
export type RespCode = 'AUTH' | 'SYS/TEMP' | 'SYS/PERM' | 'IN-USE';

export class Pop3Error extends Error {
  override name = 'Pop3Error';
  constructor(
    message: string,
    readonly code: RespCode | null = null,
    /** Close the connection after the reply. */
    readonly close = false,
  ) {
    super(message);
  }

  line(): string {
    return `-ERR ${this.code ? `[${this.code}] ` : ''}${this.message}`;
  }
}

/** A multi-line response failed after "+OK" was sent: no "-ERR" can follow, the connection is closed. */
export class StreamAbort extends Error {
  override name = 'StreamAbort';
}

/** Every error reply, named (no string literals scattered in handlers). */
export const Err = {
  unknownCommand: () => new Pop3Error('Unknown command'),
  syntax: (name: string) => new Pop3Error(`Syntax error in ${name}`),
  lineTooLong: () => new Pop3Error('Line too long'),
  badState: (name: string) => new Pop3Error(`${name} is not valid in this state`),
  tooManyErrors: () => new Pop3Error('Too many errors, closing connection', null, true),
  tooManyCommands: () => new Pop3Error('Too many commands without login, closing connection', null, true),
  // RFC 2595 4 / issue: no credentials in the clear on the STLS port.
  tlsRequired: () => new Pop3Error('TLS required: use STLS first', 'AUTH'),
  stlsUnavailable: () => new Pop3Error('STLS not available: the connection is already using TLS'),
  userFirst: () => new Pop3Error('USER first'),
  authFailed: () => new Pop3Error('Authentication failed', 'AUTH'),
  authTemp: () => new Pop3Error('Authentication temporarily unavailable', 'SYS/TEMP'),
  authCancelled: () => new Pop3Error('Authentication cancelled'),
  authMechanism: () => new Pop3Error('Unsupported SASL mechanism'),
  saslInvalid: () => new Pop3Error('Invalid SASL response'),
  authzMismatch: () => new Pop3Error('Authorization identity must be empty or equal to the user', 'AUTH'),
  apop: () => new Pop3Error('APOP not supported; use STLS and USER/PASS or AUTH PLAIN'),
  // RFC 2449 8.1.1: the maildrop is locked by another session.
  inUse: () => new Pop3Error('Maildrop already locked by another session', 'IN-USE'),
  noMaildrop: () => new Pop3Error('No maildrop for this account', 'SYS/PERM'),
  storeTemp: () => new Pop3Error('Temporary storage error, try again later', 'SYS/TEMP'),
  noSuchMessage: () => new Pop3Error('No such message'),
  alreadyDeleted: () => new Pop3Error('Message already deleted'),
  messageGone: () => new Pop3Error('Message no longer available', 'SYS/TEMP'),
  // RFC 1939 6: UPDATE could not remove everything.
  notRemoved: () => new Pop3Error('Some deleted messages not removed', 'SYS/TEMP', true),
  internal: () => new Pop3Error('Internal error', 'SYS/TEMP'),
  shuttingDown: () => new Pop3Error('Server shutting down', 'SYS/TEMP', true),
  tooManyConnections: () => new Pop3Error('Too many connections, try again later', 'SYS/TEMP', true),
  tooManyConnectionsFromIp: () => new Pop3Error('Too many connections from your address, try again later', 'SYS/TEMP', true),
} as const;
