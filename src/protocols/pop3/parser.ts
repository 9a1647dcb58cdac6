/**
 * POP3 grammar: pure functions and small state machines from bytes to typed values, no I/O.
 *
 *  - LineSplitter: CRLF (or bare LF) framed command lines with a length limit.
 *  - parseCommand: one command line -> a typed Command (RFC 1939 3, 5-7; RFC 2449 5; RFC 2595 4; RFC 5034 4).
 *  - MessageEncoder: a stored message -> the bytes of a RETR/TOP multi-line response body
 *    (RFC 1939 3: dot-stuffing, CRLF line ends; TOP's header + n body lines), chunk by chunk.
 *  - decodeSaslPlain: RFC 4616 message.
 */

/**
 * Longest command line we accept, CRLF included. RFC 2449 4 limits commands to 255 octets, but RFC 5034 4
 * lets SASL responses be longer (a base64 PLAIN response with a long password) and RFC 2449 4 allows a
 * server to accept more. We choose 4096 octets for every line: generous for any honest client, small
 * enough that a flood cannot grow memory.
 */
export const MAX_LINE_OCTETS = 4096;

export type SplitItem = { kind: 'line'; line: string } | { kind: 'too-long' };

/**
 * Splits a byte stream into lines (latin1 strings without the line end). A line longer than the limit
 * yields one 'too-long' item and its bytes are dropped up to the next LF.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private length = 0;
  private discarding = false;

  constructor(private readonly maxOctets = MAX_LINE_OCTETS) {}

  push(chunk: Buffer): SplitItem[] {
    const out: SplitItem[] = [];
    let start = 0;
    for (;;) {
      const lf = chunk.indexOf(10, start);
      const end = lf < 0 ? chunk.length : lf;
      if (!this.discarding) {
        this.parts.push(chunk.subarray(start, end));
        this.length += end - start;
        // The buffered bytes (a CR included) plus the LF may not exceed the limit.
        if (this.length > this.maxOctets - 1) {
          out.push({ kind: 'too-long' });
          this.discarding = true;
          this.parts = [];
          this.length = 0;
        }
      }
      if (lf < 0) break;
      if (!this.discarding) {
        let line = Buffer.concat(this.parts, this.length).toString('latin1');
        if (line.endsWith('\r')) line = line.slice(0, -1);
        out.push({ kind: 'line', line });
      }
      this.discarding = false;
      this.parts = [];
      this.length = 0;
      start = lf + 1;
    }
    return out;
  }

  /** Drops anything buffered (RFC 2595 4: bytes received before the TLS negotiation are discarded). */
  reset(): void {
    this.parts = [];
    this.length = 0;
    this.discarding = false;
  }
}

export type Command =
  | { name: 'USER'; user: string }
  | { name: 'PASS'; pass: string }
  | { name: 'APOP' }
  | { name: 'AUTH'; mechanism: string | null; initial: string | null }
  | { name: 'STLS' }
  | { name: 'CAPA' }
  | { name: 'QUIT' }
  | { name: 'STAT' }
  | { name: 'LIST'; msg: number | null }
  | { name: 'UIDL'; msg: number | null }
  | { name: 'RETR'; msg: number }
  | { name: 'TOP'; msg: number; lines: number }
  | { name: 'DELE'; msg: number }
  | { name: 'NOOP' }
  | { name: 'RSET' };

export type CommandName = Command['name'];

export type ParseResult = { ok: true; command: Command } | { ok: false; error: 'unknown' | 'syntax'; name: string };

const MAX_NUMBER = 2 ** 31 - 1;

/** RFC 1939 3: a message-number or line count: decimal digits only, no sign, no leading garbage. */
function number(arg: string | undefined, min: number): number | null {
  if (arg === undefined || !/^\d{1,10}$/.test(arg)) return null;
  const n = Number(arg);
  return n >= min && n <= MAX_NUMBER ? n : null;
}

/**
 * Parses one command line (without CRLF). RFC 1939 3: keywords are case-insensitive, arguments are
 * separated by a single space. PASS takes the rest of the line so passwords may contain spaces
 * (RFC 1939 7 notes servers may allow this).
 */
export function parseCommand(line: string): ParseResult {
  const sp = line.indexOf(' ');
  const name = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const rest = sp < 0 ? null : line.slice(sp + 1);
  const args = rest === null ? [] : rest.split(' ');
  const syntax: ParseResult = { ok: false, error: 'syntax', name };
  const none = (c: Command): ParseResult => (rest === null ? { ok: true, command: c } : syntax);
  const optMsg = (n: 'LIST' | 'UIDL'): ParseResult => {
    if (rest === null) return { ok: true, command: { name: n, msg: null } };
    const msg = args.length === 1 ? number(args[0], 1) : null;
    return msg === null ? syntax : { ok: true, command: { name: n, msg } };
  };
  const oneMsg = (n: 'RETR' | 'DELE'): ParseResult => {
    const msg = args.length === 1 ? number(args[0], 1) : null;
    return msg === null ? syntax : { ok: true, command: { name: n, msg } };
  };
  switch (name) {
    case 'USER':
      // RFC 1939 7: one argument; we take addresses, which contain no spaces.
      return rest && args.length === 1 && args[0] ? { ok: true, command: { name, user: rest } } : syntax;
    case 'PASS':
      return rest ? { ok: true, command: { name, pass: rest } } : syntax;
    case 'APOP':
      return { ok: true, command: { name } };
    case 'AUTH': {
      // RFC 5034 4: AUTH mechanism [initial-response]; bare AUTH lists the mechanisms (common practice).
      if (rest === null) return { ok: true, command: { name, mechanism: null, initial: null } };
      if (args.length > 2 || !/^[A-Za-z0-9_-]{1,20}$/.test(args[0]!)) return syntax;
      const initial = args[1] ?? null;
      if (initial !== null && !/^([A-Za-z0-9+/]+={0,2}|=)$/.test(initial)) return syntax;
      return { ok: true, command: { name, mechanism: args[0]!.toUpperCase(), initial } };
    }
    case 'STLS':
    case 'CAPA':
    case 'QUIT':
    case 'STAT':
    case 'NOOP':
    case 'RSET':
      return none({ name });
    case 'LIST':
    case 'UIDL':
      return optMsg(name);
    case 'RETR':
    case 'DELE':
      return oneMsg(name);
    case 'TOP': {
      const msg = args.length === 2 ? number(args[0], 1) : null;
      const lines = args.length === 2 ? number(args[1], 0) : null;
      return msg === null || lines === null ? syntax : { ok: true, command: { name, msg, lines } };
    }
    default:
      return { ok: false, error: 'unknown', name: name.slice(0, 16) };
  }
}

/** RFC 4616 2: [authzid] NUL authcid NUL passwd, base64 ("=" is an empty response, RFC 5034 4). */
export function decodeSaslPlain(b64: string): { authzid: string; user: string; pass: string } | null {
  if (b64 === '=' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return null;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1] || !parts[2]) return null;
  return { authzid: parts[0]!, user: parts[1], pass: parts[2] };
}

/**
 * Encodes a stored message for a RETR or TOP response, one chunk at a time, without ever holding the
 * message whole. RFC 1939 3: lines end with CRLF (a bare LF becomes CRLF), a line starting with "." gets
 * one more "."; the terminating ".CRLF" is added by finish(), preceded by a CRLF when the message does not
 * end with one. TOP (RFC 1939 7): the header, the blank line, then at most `bodyLines` body lines.
 */
export class MessageEncoder {
  private atLineStart = true;
  private prevCR = false;
  private inBody = false;
  /** Length of the current line so far (to recognise the empty line that ends the header). */
  private lineLength = 0;
  private bodyLinesSent = 0;
  private done = false;

  constructor(private readonly bodyLines: number | null = null) {}

  /** True once TOP has emitted everything it needs: the caller may stop reading the message. */
  get complete(): boolean {
    return this.done;
  }

  encode(chunk: Buffer): Buffer {
    if (this.done) return Buffer.alloc(0);
    const out: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length && !this.done; i++) {
      const b = chunk[i]!;
      if (this.atLineStart) {
        if (this.inBody && this.bodyLines !== null && this.bodyLinesSent >= this.bodyLines) {
          out.push(chunk.subarray(from, i));
          from = i;
          this.done = true;
          break;
        }
        this.atLineStart = false;
        if (b === 46 /* . */) {
          out.push(chunk.subarray(from, i), DOT);
          from = i;
        }
      }
      if (b === 10) {
        if (!this.prevCR) {
          out.push(chunk.subarray(from, i), CR);
          from = i;
        }
        this.endLine();
      } else {
        this.lineLength += b === 13 ? 0 : 1;
      }
      this.prevCR = b === 13;
    }
    if (!this.done) out.push(chunk.subarray(from));
    return Buffer.concat(out);
  }

  private endLine(): void {
    if (this.inBody) this.bodyLinesSent++;
    else if (this.lineLength === 0) this.inBody = true;
    this.lineLength = 0;
    this.atLineStart = true;
  }

  /** The response's end: CRLF if the content did not end with one, then ".CRLF". */
  finish(): Buffer {
    return this.atLineStart ? TERMINATOR : Buffer.concat([CRLF, TERMINATOR]);
  }
}

const DOT = Buffer.from('.');
const CR = Buffer.from('\r');
const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('.\r\n');

/** RFC 1939 7 UIDL: 1-70 characters 0x21-0x7E, unique and stable; ours is "<uidvalidity>.<uid>". */
export function uniqueId(uidValidity: number, uid: number): string {
  return `${uidValidity}.${uid}`;
}
