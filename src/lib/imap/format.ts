/**
 * IMAP string, ENVELOPE and BODY/BODYSTRUCTURE formatting (RFC 9051 4.3, 7.5.2; RFC 3501 7.4.2).
 *
 * The output follows Dovecot 2.3 byte for byte where it can, since clients have long been
 * tested against it (checked against Dovecot 2.3.19, see test/fixtures/mime/*.dovecot.json):
 * - types, subtypes and parameters print in the case found in the message; an absent
 *   Content-Type prints "text" "plain"; text parts without a charset get ("charset" "us-ascii");
 *   message/rfc822 prints as "message" "rfc822";
 * - a top-level text/plain part that carries nothing but charset=us-ascii and 7bit is printed in
 *   Dovecot's canonical lower-case form;
 * - a string goes out as a literal when it holds CR, LF, NUL or 8-bit, or more than four
 *   quoted-specials; Subject and display names are "for humans": folding removed, white space
 *   runs collapsed and trimmed, and a literal whenever anything had to change or they hold
 *   quotes or backslashes;
 * - Content-ID, Content-Description, Content-MD5, Content-Location, Date, Message-ID and
 *   In-Reply-To lose their line breaks.
 * Deliberate differences from Dovecot:
 * - strings longer than 1000 octets are sent as literals (Dovecot has no length rule); some
 *   servers' clients choke on very long quoted strings;
 * - header text that is not valid UTF-8 was decoded as Latin-1 by the parser and goes out as
 *   UTF-8 (Dovecot sends the raw bytes);
 * - sizes are octet counts of the stored message; Dovecot counts a bare LF as two octets, so
 *   store messages with CRLF line ends (parse.ts normalizeLineEndings) to get equal numbers;
 * - with `messageGlobal` (IMAP4rev2, RFC 9051) message/global is shown like message/rfc822;
 *   Dovecot 2.3 shows it as a basic part, which is also our default.
 *
 * All functions return JS strings to be written as UTF-8; literal lengths count UTF-8 octets.
 */
import type { Address, Envelope, MimePart } from '../mime/types.js';

export interface FormatOptions {
  /** allow UTF-8 in quoted strings (RFC 9051 / UTF8=ACCEPT, RFC 6855) */
  utf8?: boolean;
  /** show message/global parts with envelope and body, as RFC 9051 does */
  messageGlobal?: boolean;
}

const MAX_QUOTED = 1000;
const MAX_ESCAPES = 4; // Dovecot switches to a literal after four quoted-specials

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });
function bufToString(b: Buffer): string {
  try {
    return utf8Fatal.decode(b);
  } catch {
    return b.toString('latin1');
  }
}

const literal = (s: string): string => `{${Buffer.byteLength(s, 'utf8')}}\r\n${s}`;

/**
 * An IMAP nstring (RFC 9051 4.3): NIL, a quoted string, or a literal when quoting cannot carry
 * the value (CR, LF, NUL, 8-bit without `utf8`, over 1000 octets, many quoted-specials).
 */
export function imapString(s: string | Buffer | null, opts?: FormatOptions): string {
  if (s === null) return 'NIL';
  const str = typeof s === 'string' ? s : bufToString(s);
  // a UTF-16 unit is at most 3 UTF-8 octets: skip the count for short strings
  if (str.length * 3 > MAX_QUOTED && Buffer.byteLength(str, 'utf8') > MAX_QUOTED) return literal(str);
  let escapes = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) {
      if (++escapes > MAX_ESCAPES) return literal(str);
    } else if (c === 0x0d || c === 0x0a || c === 0) {
      return literal(str);
    } else if (c >= 0x80 && !opts?.utf8) {
      return literal(str);
    }
  }
  return escapes === 0 ? `"${str}"` : `"${str.replace(/["\\]/g, '\\$&')}"`;
}

/** Line breaks removed; one that is not followed by white space becomes a space (Dovecot). */
function noLf(s: string | null): string | null {
  if (s === null || !/[\r\n]/.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\r' && c !== '\n') out += c;
    else if (i + 1 < s.length && !' \t\r\n'.includes(s[i + 1])) out += ' ';
  }
  return out;
}

const nstringNoLf = (s: string | null, opts?: FormatOptions): string => imapString(noLf(s), opts);

/**
 * Subject and display names: line breaks dropped, TAB as SP, runs of white space collapsed,
 * leading and trailing white space removed. Quoted when nothing had to change (and it has no
 * quote, backslash or 8-bit), else a literal, "" when only white space is left (Dovecot 2.3
 * imap_append_string_for_humans).
 */
export function imapStringForHumans(s: string, opts?: FormatOptions): string {
  let out = '';
  let modify = false;
  let lastSpace = true; // at the start, white space is leading white space
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) {
      modify = true;
    } else if (c === 0x20 || c === 0x09) {
      if (c === 0x09 || lastSpace) modify = true;
      if (!lastSpace) out += ' ';
      lastSpace = true;
    } else {
      if (c === 0x22 || c === 0x5c || c === 0) modify = true;
      else if (c >= 0x80 && !opts?.utf8) modify = true;
      out += c === 0 ? '\uFFFD' : ch;
      lastSpace = false;
    }
  }
  if (out.endsWith(' ')) {
    out = out.slice(0, -1);
    modify = true;
  }
  if (out === '') return '""';
  return modify ? literal(out) : imapString(out, opts);
}

function formatAddresses(list: Address[] | null, opts?: FormatOptions): string {
  if (list === null || list.length === 0) return 'NIL';
  let out = '(';
  for (const a of list) {
    out +=
      '(' +
      (a.name === null ? 'NIL' : imapStringForHumans(a.name, opts)) +
      ' ' +
      nstringNoLf(a.adl, opts) +
      ' ' +
      nstringNoLf(a.mailbox, opts) +
      ' ' +
      nstringNoLf(a.host, opts) +
      ')';
  }
  return out + ')';
}

/** RFC 9051 7.5.2 ENVELOPE value, with its parentheses: `(date subject from ... message-id)`. */
export function formatEnvelope(env: Envelope, opts?: FormatOptions): string {
  return (
    '(' +
    [
      nstringNoLf(env.date, opts),
      env.subject === null ? 'NIL' : imapStringForHumans(env.subject, opts),
      formatAddresses(env.from, opts),
      formatAddresses(env.sender ?? env.from, opts),
      formatAddresses(env.replyTo ?? env.from, opts),
      formatAddresses(env.to, opts),
      formatAddresses(env.cc, opts),
      formatAddresses(env.bcc, opts),
      nstringNoLf(env.inReplyTo, opts),
      nstringNoLf(env.messageId, opts),
    ].join(' ') +
    ')'
  );
}

/** body-fld-param: `("name" "value" ...)` or NIL; text parts always show a charset. */
function formatParams(params: [string, string][], textDefault: boolean, opts?: FormatOptions): string {
  if (params.length === 0 && !textDefault) return 'NIL';
  const items: string[] = [];
  let seenCharset = false;
  for (const [k, v] of params) {
    if (k.toLowerCase() === 'charset') seenCharset = true;
    items.push(imapString(k, opts), imapString(v, opts));
  }
  if (textDefault && !seenCharset) items.push('"charset" "us-ascii"');
  return '(' + items.join(' ') + ')';
}

/** body-fld-dsp, body-fld-lang, body-fld-loc (shared by multipart and single-part extensions) */
function formatExtensionTail(p: MimePart, opts?: FormatOptions): string {
  const d = p.wire.disposition;
  const dsp = d === null ? 'NIL' : `(${imapString(d.type, opts)} ${formatParams(d.params, false, opts)})`;
  const lang = p.language === null ? 'NIL' : '(' + p.language.map((l) => imapString(l, opts)).join(' ') + ')';
  return ` ${dsp} ${lang} ${nstringNoLf(p.location, opts)}`;
}

const showsAsMessage = (p: MimePart, opts?: FormatOptions): boolean =>
  p.message !== undefined && (p.subtype === 'rfc822' || (opts?.messageGlobal === true && p.subtype === 'global'));

/**
 * Dovecot prints a top-level part that is plain text in every respect in one canonical form
 * (its "plain 7bit" shortcut): text/plain, at most charset=us-ascii, 7bit, no other fields.
 */
function isPlain7bit(p: MimePart): boolean {
  const w = p.wire;
  if (p.children || p.message || p.type !== 'text') return false;
  if (w.type !== null && w.subtype.toLowerCase() !== 'plain') return false;
  if (w.params.length > 1) return false;
  if (w.params.length === 1 && (w.params[0][0].toLowerCase() !== 'charset' || w.params[0][1].toLowerCase() !== 'us-ascii')) {
    return false;
  }
  return (
    p.id === null &&
    p.description === null &&
    p.encoding.toLowerCase() === '7bit' &&
    p.md5 === null &&
    w.disposition === null &&
    p.language === null &&
    p.location === null
  );
}

function formatPart(p: MimePart, extended: boolean, top: boolean, opts?: FormatOptions): string {
  if (p.children) {
    // RFC 9051 body-type-mpart: 1*body SP media-subtype [SP body-ext-mpart]
    let out = p.children.map((c) => '(' + formatPart(c, extended, false, opts) + ')').join('');
    out += ' ' + imapString(p.wire.subtype, opts);
    if (extended) out += ' ' + formatParams(p.wire.params, false, opts) + formatExtensionTail(p, opts);
    return out;
  }
  if (top && isPlain7bit(p)) {
    const base = `"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${p.size} ${p.lines}`;
    return extended ? base + ' NIL NIL NIL NIL' : base;
  }
  const asMessage = showsAsMessage(p, opts);
  let text = false;
  let out: string;
  if (asMessage) {
    out = p.subtype === 'global' ? '"message" "global"' : '"message" "rfc822"';
  } else if (p.wire.type === null) {
    // no usable Content-Type: the default (message/rfc822 in a digest is handled above)
    text = p.type === 'text';
    out = `${imapString(p.type, opts)} ${imapString(p.subtype, opts)}`;
  } else {
    text = p.wire.type.toLowerCase() === 'text';
    out = `${imapString(p.wire.type, opts)} ${imapString(p.wire.subtype, opts)}`;
  }
  // body-fields: param, id, desc, enc, octets
  out += ' ' + formatParams(p.wire.params, text, opts);
  out += ` ${nstringNoLf(p.id, opts)} ${nstringNoLf(p.description, opts)} ${imapString(p.encoding, opts)} ${p.size}`;
  if (text) {
    out += ` ${p.lines}`; // body-type-text: body-fld-lines
  } else if (asMessage) {
    // body-type-msg: envelope SP body SP body-fld-lines
    const m = p.message!;
    out += ` ${formatEnvelope(m.envelope, opts)} (${formatPart(m.part, extended, false, opts)}) ${p.lines}`;
  }
  if (extended) out += ' ' + nstringNoLf(p.md5, opts) + formatExtensionTail(p, opts); // body-ext-1part
  return out;
}

/**
 * The value of BODY (extended = false) or BODYSTRUCTURE (extended = true) for a message's top
 * part, with its parentheses (RFC 9051 7.5.2).
 */
export function formatBodystructure(part: MimePart, extended: boolean, opts?: FormatOptions): string {
  return '(' + formatPart(part, extended, true, opts) + ')';
}
