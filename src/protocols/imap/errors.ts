/**
 * Typed IMAP errors. Command handlers throw these; the session's single catch point turns each into
 * exactly one tagged reply (RFC 9051 7.1: NO = operational failure, BAD = protocol error), with the text
 * generic on the wire and the detail in the log.
 */

/** `tag BAD [code] text`: a protocol error (syntax, wrong state, unknown command). */
export class ImapBad extends Error {
  constructor(
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ImapBad';
  }
}

/** `tag NO [code] text`: the command was understood but could not be done (RFC 9051 7.1 response codes). */
export class ImapNo extends Error {
  constructor(
    readonly code: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'ImapNo';
  }
}

/** Ends the connection after an optional `* BYE` (RFC 9051 7.1.5). */
export class ImapBye extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImapBye';
  }
}
