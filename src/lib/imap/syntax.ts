/**
 * IMAP lexical grammar (RFC 9051 section 9, RFC 3501 section 9) over one complete command.
 *
 * A command arrives from the reader as text segments split at literals: `segments[i]` ends with
 * the literal's marker (`{n}`, `{n+}`, `~{n}`, `~{n+}`) and `literals[i]` holds its octets; the
 * last segment has no marker. Segments never contain CR or LF (the reader removed the CRLF).
 * The cursor walks these bytes; every method either consumes exactly its production or throws
 * ImapSyntaxError without side effects worth keeping (the command is rejected as a whole).
 *
 * Character classes are RFC 9051 section 9 exactly:
 *   ATOM-CHAR = any CHAR except atom-specials;
 *   atom-specials = "(" / ")" / "{" / SP / CTL / "%" / "*" / DQUOTE / "\" / "]"
 *   ASTRING-CHAR = ATOM-CHAR / "]";  tag = 1*<ASTRING-CHAR except "+">
 *   list-char = ATOM-CHAR / "%" / "*" / "]"
 * 8-bit octets are never atom characters; UTF-8 is allowed in quoted strings (RFC 9051
 * `QUOTED-CHAR` includes UTF8-2/3/4) and in literals.
 */

import { MAX_UINT32, SequenceSetError, parseSequenceSet, type SequenceSet } from './sequence-set.js';

export interface CommandLiteral {
  data: Buffer;
  /** `~{n}` literal8 (RFC 3516 / RFC 9051 `literal8`): may contain NUL. */
  binary: boolean;
  /** `{n}` without "+": the server sent a continuation before the octets. */
  synchronizing: boolean;
}

/** One complete command as produced by the reader. segments.length === literals.length + 1. */
export interface RawCommand {
  segments: Buffer[];
  literals: CommandLiteral[];
}

export class ImapSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImapSyntaxError';
  }
}

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const TILDE = 0x7e;
const PLUS = 0x2b;

const C_ATOM = 1;
const C_ASTRING = 2;
const C_TAG = 4;
const C_LIST = 8;

const CLASS: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x21; c <= 0x7e; c++) {
    if ('(){%*"\\]'.includes(String.fromCharCode(c))) continue;
    t[c] = C_ATOM | C_ASTRING | C_TAG | C_LIST;
  }
  t[0x5d] |= C_ASTRING | C_TAG | C_LIST; // "]" resp-specials
  t[0x25] |= C_LIST; // "%"
  t[0x2a] |= C_LIST; // "*"
  t[PLUS] &= ~C_TAG; // tag excludes "+"
  return t;
})();

export function isAtomChar(c: number): boolean {
  return (CLASS[c]! & C_ATOM) !== 0;
}
export function isAstringChar(c: number): boolean {
  return (CLASS[c]! & C_ASTRING) !== 0;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding; throws ImapSyntaxError naming `what`. */
export function decodeUtf8(data: Buffer, what = 'string'): string {
  try {
    return UTF8.decode(data);
  } catch {
    throw new ImapSyntaxError(`Invalid UTF-8 in ${what}`);
  }
}

/** A calendar date (RFC 9051 `date`), used by SEARCH; no time or zone. */
export interface ImapDate {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
}

/** RFC 9051 `date-time`: the instant and the zone the client wrote it in. */
export interface ImapDateTime {
  date: Date;
  /** Zone offset east of UTC in minutes, e.g. -420 for "-0700". */
  offsetMinutes: number;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The largest `mod-sequence-value` (RFC 7162 section 7: 63-bit). */
export const MAX_MODSEQ = 9223372036854775807n;
/** `number64` (RFC 9051 section 9) values beyond this cannot be held exactly in a JS number. */
const MAX_NUMBER64_SAFE = Number.MAX_SAFE_INTEGER;

/** Describe a byte for error messages. */
function describe(c: number): string {
  if (c < 0) return 'end of line';
  if (c === SP) return 'SP';
  if (c >= 0x21 && c <= 0x7e) return `"${String.fromCharCode(c)}"`;
  return `${c >= 0x80 ? '8-bit ' : ''}octet 0x${c.toString(16).padStart(2, '0')}`;
}

export class ImapCursor {
  private seg = 0;
  private pos = 0;
  private buf: Buffer;

  constructor(private readonly cmd: RawCommand) {
    if (cmd.segments.length !== cmd.literals.length + 1) {
      throw new ImapSyntaxError('Malformed command framing');
    }
    this.buf = cmd.segments[0]!;
  }

  error(message: string): never {
    throw new ImapSyntaxError(message);
  }

  /** A position to return to (for the few productions that need one look-back). */
  mark(): { seg: number; pos: number } {
    return { seg: this.seg, pos: this.pos };
  }

  reset(mark: { seg: number; pos: number }): void {
    this.seg = mark.seg;
    this.pos = mark.pos;
    this.buf = this.cmd.segments[mark.seg]!;
  }

  /** Next octet of the current segment, or -1 at a segment end (a literal or end of command). */
  peek(offset = 0): number {
    const i = this.pos + offset;
    return i < this.buf.length ? this.buf[i]! : -1;
  }

  /** True at the very end of the command. */
  atEnd(): boolean {
    return this.pos >= this.buf.length && this.seg === this.cmd.segments.length - 1;
  }

  expectEnd(): void {
    if (!this.atEnd()) this.error(`Unexpected ${describe(this.peek())} where the command should end`);
  }

  /** Consume `c` if it is next. */
  tryChar(c: number): boolean {
    if (this.peek() === c) {
      this.pos++;
      return true;
    }
    return false;
  }

  expectChar(c: number, what?: string): void {
    if (!this.tryChar(c)) {
      this.error(`Expected ${what ?? describe(c)}, got ${describe(this.peek())}`);
    }
  }

  /** Exactly one SP (RFC 9051 allows no other whitespace). */
  sp(what?: string): void {
    if (this.peek() !== SP) {
      const got = describe(this.peek());
      this.error(what ? `Expected SP before ${what}, got ${got}` : `Expected SP, got ${got}`);
    }
    this.pos++;
  }

  trySp(): boolean {
    return this.tryChar(SP);
  }

  /** Read a maximal run of octets of class `cls` (no literal crossing). */
  private run(cls: number): Buffer {
    const start = this.pos;
    while (this.pos < this.buf.length && (CLASS[this.buf[this.pos]!]! & cls) !== 0) this.pos++;
    return this.buf.subarray(start, this.pos);
  }

  private runError(what: string): never {
    const c = this.peek();
    if (c >= 0x80) this.error(`8-bit octet in ${what}`);
    this.error(`Expected ${what}, got ${describe(c)}`);
  }

  /** atom = 1*ATOM-CHAR */
  atom(what = 'atom'): string {
    const b = this.run(C_ATOM);
    if (b.length === 0) this.runError(what);
    return b.toString('latin1');
  }

  /** An atom, upper-cased: command names, keywords, options. */
  keyword(what = 'keyword'): string {
    return this.atom(what).toUpperCase();
  }

  /** tag = 1*<any ASTRING-CHAR except "+"> */
  tag(): string {
    const b = this.run(C_TAG);
    if (b.length === 0) this.runError('tag');
    return b.toString('latin1');
  }

  /** Upper-cased run of [A-Za-z0-9.-] (fetch att names, section specs) without consuming more. */
  word(): string {
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      const ok =
        (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d;
      if (!ok) break;
      this.pos++;
    }
    return this.buf.toString('latin1', start, this.pos).toUpperCase();
  }

  /** Digits as text (for number parsing with range checks). */
  private digits(what: string): string {
    const start = this.pos;
    while (this.pos < this.buf.length && this.buf[this.pos]! >= 0x30 && this.buf[this.pos]! <= 0x39) this.pos++;
    if (this.pos === start) this.error(`Expected ${what}, got ${describe(this.peek())}`);
    return this.buf.toString('latin1', start, this.pos);
  }

  /** number = 1*DIGIT, unsigned 32-bit (RFC 9051 section 9). */
  number(what = 'number'): number {
    const d = this.digits(what);
    const n = d.length > 10 ? Infinity : Number(d);
    if (n > MAX_UINT32) this.error(`${what} out of range`);
    return n;
  }

  /** nz-number = digit-nz *DIGIT, 1..2^32-1. */
  nzNumber(what = 'non-zero number'): number {
    if (this.peek() === 0x30) this.error(`Expected ${what}, got "0"`);
    return this.number(what);
  }

  /**
   * number64 = 1*DIGIT, 63-bit (RFC 9051 section 9). Returned as a JS number, so values above
   * 2^53-1 are refused rather than silently rounded.
   */
  number64(what = 'number'): number {
    const d = this.digits(what);
    const n = d.length > 19 ? Infinity : Number(d);
    if (n > MAX_NUMBER64_SAFE) this.error(`${what} out of range`);
    return n;
  }

  /**
   * mod-sequence-valzer = "0" / mod-sequence-value (RFC 7162 section 7), 63-bit, as a bigint.
   * With `nonZero`, the `mod-sequence-value` production (1..2^63-1).
   */
  modSeq(nonZero = false, what = 'mod-sequence'): bigint {
    const d = this.digits(what);
    if (d.length > 19) this.error(`${what} out of range`);
    const n = BigInt(d);
    if (n > MAX_MODSEQ) this.error(`${what} out of range`);
    if (nonZero && n === 0n) this.error(`${what} must not be zero`);
    return n;
  }

  /** quoted = DQUOTE *QUOTED-CHAR DQUOTE, with `\"` and `\\` escapes and UTF-8 (RFC 9051 9). */
  quoted(): Buffer {
    this.expectChar(DQUOTE, 'DQUOTE');
    const start = this.pos;
    const buf = this.buf;
    let parts: Buffer[] | null = null;
    let chunkStart = start;
    let eightBit = false;
    for (;;) {
      if (this.pos >= buf.length) this.error('Unterminated quoted string');
      const c = buf[this.pos]!;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const n = this.pos + 1 < buf.length ? buf[this.pos + 1]! : -1;
        if (n !== DQUOTE && n !== BACKSLASH) this.error('Invalid escape in quoted string');
        (parts ??= []).push(buf.subarray(chunkStart, this.pos));
        chunkStart = this.pos + 1; // keep the escaped octet
        this.pos += 2;
        continue;
      }
      if (c === 0 || c === 0x0d || c === 0x0a) this.error(`Invalid ${describe(c)} in quoted string`);
      if (c >= 0x80) eightBit = true;
      this.pos++;
    }
    const end = this.pos;
    this.pos++; // closing DQUOTE
    let value: Buffer;
    if (parts) {
      parts.push(buf.subarray(chunkStart, end));
      value = Buffer.concat(parts);
    } else {
      value = buf.subarray(start, end);
    }
    if (eightBit) decodeUtf8(value, 'quoted string'); // QUOTED-CHAR allows only valid UTF-8
    return value;
  }

  /** True if a literal (`{` or `~{`) starts here. */
  atLiteral(): boolean {
    const c = this.peek();
    return c === LBRACE || (c === TILDE && this.peek(1) === LBRACE);
  }

  /**
   * literal / literal8: the marker must end the segment (the reader guarantees that framing
   * when the marker was real); then the cursor moves into the next segment.
   */
  literal(allowBinary = false): CommandLiteral {
    const binary = this.tryChar(TILDE);
    if (binary && !allowBinary) this.error('literal8 not allowed here');
    this.expectChar(LBRACE, '"{"');
    this.digits('literal size');
    this.tryChar(PLUS);
    this.expectChar(RBRACE, '"}"');
    if (this.pos !== this.buf.length || this.seg >= this.cmd.literals.length) {
      this.error('Literal must be followed by CRLF');
    }
    const lit = this.cmd.literals[this.seg]!;
    if (lit.binary !== binary) this.error('Literal framing mismatch');
    // CHAR8 = %x01-ff: a plain literal may not contain NUL (RFC 9051 section 9 / 4.3).
    if (!binary && lit.data.indexOf(0) >= 0) this.error('NUL octet in literal');
    this.seg++;
    this.pos = 0;
    this.buf = this.cmd.segments[this.seg]!;
    return lit;
  }

  /** string = quoted / literal */
  string(what = 'string'): Buffer {
    const c = this.peek();
    if (c === DQUOTE) return this.quoted();
    if (this.atLiteral()) return this.literal().data;
    this.error(`Expected ${what}, got ${describe(c)}`);
  }

  /** astring = 1*ASTRING-CHAR / string */
  astring(what = 'astring'): Buffer {
    const c = this.peek();
    if (c === DQUOTE || this.atLiteral()) return this.string(what);
    const b = this.run(C_ASTRING);
    if (b.length === 0) this.runError(what);
    return b;
  }

  /** astring decoded as strict UTF-8. */
  astringText(what = 'astring'): string {
    return decodeUtf8(this.astring(what), what);
  }

  /** True if the next octets are `NIL` followed by a delimiter. */
  atNil(): boolean {
    if (this.pos + 3 > this.buf.length) return false;
    if (this.buf.toString('latin1', this.pos, this.pos + 3).toUpperCase() !== 'NIL') return false;
    const after = this.peek(3);
    return after < 0 || !isAtomChar(after);
  }

  /** nstring = string / nil */
  nstring(what = 'nstring'): Buffer | null {
    if (this.atNil()) {
      this.pos += 3;
      return null;
    }
    return this.string(what);
  }

  /** list-mailbox = 1*list-char / string (RFC 9051 section 9; wildcards allowed bare). */
  listMailbox(): Buffer {
    const c = this.peek();
    if (c === DQUOTE || this.atLiteral()) return this.string('mailbox pattern');
    const b = this.run(C_LIST);
    if (b.length === 0) this.runError('mailbox pattern');
    return b;
  }

  /** Case-insensitively consume `word` if it is next and followed by a non-atom octet. */
  tryKeyword(word: string): boolean {
    const n = word.length;
    if (this.pos + n > this.buf.length) return false;
    if (this.buf.toString('latin1', this.pos, this.pos + n).toUpperCase() !== word) return false;
    const after = this.peek(n);
    if (after >= 0 && isAtomChar(after)) return false;
    this.pos += n;
    return true;
  }

  /**
   * flag (RFC 9051 section 9): "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
   * flag-keyword / flag-extension ("\" atom). System flags come back in canonical case;
   * keywords keep the client's spelling (matching them is case-insensitive, RFC 9051 2.3.2).
   */
  flag(): string {
    if (this.tryChar(BACKSLASH)) {
      if (this.peek() === 0x2a) this.error('"\\*" is not a valid flag here');
      const name = this.atom('flag name');
      return canonicalFlag('\\' + name);
    }
    return this.atom('flag');
  }

  /** flag-list = "(" [flag *(SP flag)] ")" */
  flagList(): string[] {
    this.expectChar(LPAREN, '"("');
    const flags: string[] = [];
    if (this.tryChar(RPAREN)) return flags;
    for (;;) {
      flags.push(this.flag());
      if (this.tryChar(RPAREN)) return flags;
      this.sp();
    }
  }

  /**
   * date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-"
   * date-year; date-day = 1*2DIGIT (RFC 9051 section 9).
   */
  date(): ImapDate {
    const q = this.tryChar(DQUOTE);
    const day = this.fixedDigits(1, 2, 'day');
    this.expectChar(0x2d, '"-" in date');
    const month = this.month();
    this.expectChar(0x2d, '"-" in date');
    const year = this.fixedDigits(4, 4, 'year');
    if (q) this.expectChar(DQUOTE, 'closing DQUOTE of date');
    if (day < 1 || day > daysInMonth(year, month)) this.error('Invalid day of month');
    return { year, month, day };
  }

  /**
   * date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE;
   * date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT;
   * zone = ("+" / "-") 4DIGIT (RFC 9051 section 9).
   */
  dateTime(): ImapDateTime {
    this.expectChar(DQUOTE, 'DQUOTE before date-time');
    let day: number;
    if (this.tryChar(SP)) day = this.fixedDigits(1, 1, 'day');
    else day = this.fixedDigits(2, 2, 'day');
    this.expectChar(0x2d, '"-" in date-time');
    const month = this.month();
    this.expectChar(0x2d, '"-" in date-time');
    const year = this.fixedDigits(4, 4, 'year');
    this.expectChar(SP, 'SP before time');
    const hh = this.fixedDigits(2, 2, 'hour');
    this.expectChar(0x3a, '":" in time');
    const mm = this.fixedDigits(2, 2, 'minute');
    this.expectChar(0x3a, '":" in time');
    const ss = this.fixedDigits(2, 2, 'second');
    this.expectChar(SP, 'SP before zone');
    const sign = this.peek();
    if (sign !== 0x2b && sign !== 0x2d) this.error('Expected "+" or "-" in zone');
    this.pos++;
    const zh = this.fixedDigits(2, 2, 'zone hours', false);
    const zm = this.fixedDigits(2, 2, 'zone minutes');
    this.expectChar(DQUOTE, 'closing DQUOTE of date-time');
    if (day < 1 || day > daysInMonth(year, month)) this.error('Invalid day of month');
    if (hh > 23 || mm > 59 || ss > 60) this.error('Invalid time');
    if (zm > 59) this.error('Invalid zone');
    const offsetMinutes = (sign === 0x2d ? -1 : 1) * (zh * 60 + zm);
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day); // setUTCFullYear keeps years 0-99 as written
    d.setUTCHours(hh, mm, Math.min(ss, 59), 0);
    return { date: new Date(d.getTime() - offsetMinutes * 60000), offsetMinutes };
  }

  /** min..max digits; unless `delimited` is false, no further digit may follow. */
  private fixedDigits(min: number, max: number, what: string, delimited = true): number {
    const start = this.pos;
    while (this.pos - start < max && this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    const len = this.pos - start;
    if (len < min) this.error(`Invalid ${what} in date`);
    if (delimited && this.peek() >= 0x30 && this.peek() <= 0x39) this.error(`Invalid ${what} in date`);
    return Number(this.buf.toString('latin1', start, this.pos));
  }

  private month(): number {
    const m = this.pos + 3 <= this.buf.length ? this.buf.toString('latin1', this.pos, this.pos + 3).toUpperCase() : '';
    const i = MONTHS.indexOf(m);
    if (i < 0) this.error('Invalid month in date');
    this.pos += 3;
    return i + 1;
  }

  /** sequence-set (RFC 9051 section 9; `$` per RFC 5182). */
  sequenceSet(what = 'sequence set'): SequenceSet {
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if ((c >= 0x30 && c <= 0x39) || c === 0x3a || c === 0x2c || c === 0x2a || c === 0x24) this.pos++;
      else break;
    }
    if (this.pos === start) this.error(`Expected ${what}, got ${describe(this.peek())}`);
    const after = this.peek();
    if (after >= 0 && isAtomChar(after)) this.error(`Invalid ${what}`);
    try {
      return parseSequenceSet(this.buf.toString('latin1', start, this.pos));
    } catch (e) {
      if (e instanceof SequenceSetError) this.error(`Invalid ${what}: ${e.message}`);
      throw e;
    }
  }

  /** Does a sequence set start here? */
  atSequenceSet(): boolean {
    const c = this.peek();
    return (c >= 0x30 && c <= 0x39) || c === 0x2a || c === 0x24;
  }

}

const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', '\\Recent'];
const SYSTEM_FLAG_BY_UPPER = new Map(SYSTEM_FLAGS.map((f) => [f.toUpperCase(), f]));

/** Canonical spelling of a system flag (`\SEEN` -> `\Seen`); other flags unchanged. */
export function canonicalFlag(flag: string): string {
  return SYSTEM_FLAG_BY_UPPER.get(flag.toUpperCase()) ?? flag;
}

export const CHAR = { SP, DQUOTE, LPAREN, RPAREN, BACKSLASH, LBRACE, RBRACE, TILDE, PLUS } as const;
