/**
 * The MIME tree computed once at ingest and stored as JSON. Everything IMAP FETCH needs
 * (ENVELOPE, BODYSTRUCTURE, BODY[section], .MIME, .HEADER, .TEXT) is answered from these
 * offsets into the stored raw message, without parsing it again.
 *
 * Strings that come from header bytes are UTF-8 when the bytes are valid UTF-8 (RFC 6532),
 * else Latin-1, one char per byte; NUL becomes U+FFFD.
 */

/**
 * RFC 9051 7.5.2 address. Group syntax (RFC 5322 3.4): the group start is
 * `{name:null, adl:null, mailbox: groupName, host:null}`, the group end has all four null.
 */
export interface Address {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

/**
 * RFC 9051 7.5.2 envelope: raw (not RFC 2047-decoded) values. String fields keep the value as
 * written after the colon, leading white space skipped, with each folding line break kept as a
 * single LF (CR dropped) so the IMAP form can follow Dovecot exactly; `.replace(/\n/g, '')`
 * unfolds. sender and replyTo already default to from (RFC 9051 7.5.2).
 */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: Address[] | null;
  sender: Address[] | null;
  replyTo: Address[] | null;
  to: Address[] | null;
  cc: Address[] | null;
  bcc: Address[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

/**
 * The Content-Type / Content-Disposition data exactly as IMAP BODYSTRUCTURE prints it:
 * case as in the message, parameters as sent (RFC 2231 continuations joined, not decoded).
 */
export interface WireInfo {
  /** null: no Content-Type, or the part is not MIME (RFC 2045 4): printed as the default type */
  type: string | null;
  /** "" when the Content-Type had no (readable) subtype */
  subtype: string;
  params: [string, string][];
  disposition: { type: string; params: [string, string][] } | null;
}

export interface MimePart {
  /** byte offset of this part's header block */
  headerStart: number;
  /** offset of the first body byte: end of the header including its blank line */
  bodyStart: number;
  /** offset just past the last body byte (the CRLF before a boundary is not part of the body) */
  end: number;
  /** lower-case; default text/plain (message/rfc822 inside multipart/digest) */
  type: string;
  subtype: string;
  /** Content-Type params, names lower-cased, RFC 2231 continuations and charsets decoded */
  params: [string, string][];
  id: string | null;
  description: string | null;
  /** Content-Transfer-Encoding as given, default "7bit" */
  encoding: string;
  /** body octets (end - bodyStart) */
  size: number;
  /** body line count (LF count) for text/* and message/*, else 0 */
  lines: number;
  md5: string | null;
  /** type lower-cased; params like `params` */
  disposition: { type: string; params: [string, string][] } | null;
  language: string[] | null;
  location: string | null;
  /**
   * multipart/*: the parts, never empty (a multipart without parts gets one empty text/plain
   * part, as Dovecot does). Absent when the nesting cap stopped the descent: the part is then
   * served as a single leaf.
   */
  children?: MimePart[];
  /** message/rfc822 and message/global: the embedded message, offsets absolute into raw */
  message?: { envelope: Envelope; part: MimePart };
  /** what BODYSTRUCTURE prints (see src/lib/imap/format.ts) */
  wire: WireInfo;
}
