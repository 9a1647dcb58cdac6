/**
 * Incremental IMAP command reader: socket bytes in, complete commands (a line plus its
 * literals, RFC 9051 section 4.3 / 7.5) out. No I/O: the session pushes chunks and pulls events.
 *
 * Usage (the session owns the socket):
 *   reader.push(chunk);
 *   for (let ev = reader.next(); ev; ev = reader.next()) { ...handle, maybe switch modes... }
 * Events are pulled one at a time so the session can switch to raw line mode (IDLE's DONE,
 * AUTHENTICATE responses) between a command and the bytes that follow it.
 *
 * Invariants:
 * - Memory is bounded: a line never grows past maxLineLength (+CR), one literal past
 *   maxLiteralSize, one command past maxCommandSize. Unconsumed socket input is whatever the
 *   session pushed and has not pulled; it should pause the socket while `pendingBytes` is
 *   large (e.g. during a slow command).
 * - A synchronizing literal `{n}` is accepted only after `onLiteral` (if any) and the limits
 *   agree; the session must then send a continuation (`+ Ready`) for the `continue` event.
 *   A rejected synchronizing literal ends the command: the client will not send the octets
 *   (RFC 9051 section 7.5 continuation / tagged response).
 * - A rejected non-synchronizing literal `{n+}` (RFC 7888) is already on its way: the reader
 *   reads and drops it (and the rest of that command) when it is at most maxDiscardSize,
 *   otherwise it stops reading and the session must close the connection.
 * - A line over maxLineLength is dropped up to its LF; the session replies BAD.
 * - Bare LF is accepted as a line end (one trailing CR is stripped); CR elsewhere is left
 *   for the parser to refuse.
 */

import type { CommandLiteral, RawCommand } from '../../lib/imap/syntax.js';

export type { CommandLiteral, RawCommand } from '../../lib/imap/syntax.js';

/** What the reader knows about a literal before its octets arrive. */
export interface LiteralRequest {
  tag: string | null;
  /** Upper-cased command name, `UID FETCH` style for UID commands; null if unreadable. */
  command: string | null;
  size: number;
  synchronizing: boolean;
  binary: boolean;
  /** 0-based index of this literal within the command (MULTIAPPEND: one per message). */
  index: number;
  /** Octets of this command buffered so far (lines and earlier literals). */
  commandBytes: number;
  /** The command text so far, split at earlier literals (to peek at e.g. the mailbox). */
  segments: readonly Buffer[];
}

/** Why a literal was refused. `hook` carries the value the onLiteral callback returned. */
export type LiteralRejectReason = 'too-big' | 'command-too-big' | 'hook';

export type ReaderEvent =
  | { type: 'command'; command: RawCommand; tag: string | null }
  /** Send a continuation request ("+ Ready for literal data") now. */
  | { type: 'continue'; tag: string | null; size: number }
  /** Raw line mode only: one line, CRLF removed. */
  | { type: 'line'; line: Buffer }
  /** Reply `tag BAD` (or `* BAD` when tag is null); the rest of the line is dropped. */
  | { type: 'line-too-long'; tag: string | null; command: string | null }
  /**
   * Reply NO [TOOBIG] / BAD (RFC 9051 section 7.1, RFC 7889 for APPEND), or whatever the
   * hook's `detail` calls for. action: 'none' (synchronizing: nothing more will come),
   * 'discard' (the reader drops the octets), 'close' (too much to drop: close the connection).
   */
  | {
      type: 'literal-rejected';
      tag: string | null;
      command: string | null;
      size: number;
      synchronizing: boolean;
      binary: boolean;
      reason: LiteralRejectReason;
      detail?: unknown;
      action: 'none' | 'discard' | 'close';
    };

export interface ImapReaderOptions {
  /** Longest line (between literals), CRLF excluded. Default 65536. */
  maxLineLength?: number;
  /** Largest single literal. Default 64 MiB. */
  maxLiteralSize?: number;
  /** Largest command: all its lines and literals together. Default 128 MiB. */
  maxCommandSize?: number;
  /** Largest rejected non-synchronizing literal that is read and dropped. Default 8 MiB. */
  maxDiscardSize?: number;
  /**
   * Called for every literal within the limits before any octet is read (and, for a
   * synchronizing literal, before the continuation). Return undefined to accept, or any other
   * value to reject: it comes back as `detail` of a `literal-rejected` event with reason 'hook'
   * (e.g. `{ code: 'OVERQUOTA' }` for an APPEND beyond quota, RFC 9208 / RFC 9051 7.1).
   */
  onLiteral?: (request: LiteralRequest) => unknown;
}

type Phase = 'line' | 'literal' | 'discard-line' | 'closed';

const LF = 0x0a;
const CR = 0x0d;

/** Find a literal marker at the end of a line, ignoring anything inside a quoted string. */
function findLiteralMarker(line: Buffer): { size: number; sync: boolean; binary: boolean } | null {
  const n = line.length;
  if (n < 3 || line[n - 1] !== 0x7d) return null;
  let i = n - 2;
  const sync = line[i] !== 0x2b;
  if (!sync) i--;
  const digitsEnd = i + 1;
  while (i >= 0 && line[i]! >= 0x30 && line[i]! <= 0x39) i--;
  if (i === digitsEnd - 1 || i < 0 || line[i] !== 0x7b) return null;
  const braceAt = i;
  const binary = braceAt > 0 && line[braceAt - 1] === 0x7e;
  // The "{" must not sit inside a quoted string (a quoted string cannot contain CRLF, so a
  // line that ends inside quotes is simply a bad command, not a literal).
  let inQuote = false;
  for (let k = 0; k < braceAt; k++) {
    const c = line[k]!;
    if (inQuote) {
      if (c === 0x5c) k++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) inQuote = true;
  }
  if (inQuote) return null;
  const digits = line.toString('latin1', braceAt + 1, digitsEnd);
  const size = digits.length > 15 ? Infinity : Number(digits);
  return { size, sync, binary };
}

/** Best-effort tag and command name of a (possibly partial) first line, for error replies. */
export function sniffCommand(first: Buffer | undefined): { tag: string | null; command: string | null } {
  if (!first) return { tag: null, command: null };
  const text = first.toString('latin1', 0, Math.min(first.length, 200));
  const m = /^([\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+)(?: ([A-Za-z0-9.=-]+)(?: ([A-Za-z]+))?)?/.exec(text);
  if (!m) return { tag: null, command: null };
  let command = m[2] ? m[2].toUpperCase() : null;
  if (command === 'UID' && m[3]) command = `UID ${m[3].toUpperCase()}`;
  return { tag: m[1]!, command };
}

export class ImapReader {
  private readonly maxLineLength: number;
  private readonly maxLiteralSize: number;
  private readonly maxCommandSize: number;
  private readonly maxDiscardSize: number;
  private readonly onLiteral: ImapReaderOptions['onLiteral'];

  private chunks: Buffer[] = [];
  private offset = 0; // into chunks[0]
  private pending = 0;

  private phase: Phase = 'line';
  private rawMode = false;
  private lineParts: Buffer[] = [];
  private lineLength = 0;

  private segments: Buffer[] = [];
  private literals: CommandLiteral[] = [];
  private commandBytes = 0;
  /** The current command was rejected: keep framing, drop data, emit nothing at its end. */
  private rejected = false;

  /** Octets of the literal being read (null while dropping one); they grow as data arrives. */
  private literalParts: Buffer[] | null = null;
  private literalFilled = 0;
  private literalSize = 0;
  private literalMeta = { binary: false, synchronizing: false };

  constructor(options: ImapReaderOptions = {}) {
    this.maxLineLength = options.maxLineLength ?? 65536;
    this.maxLiteralSize = options.maxLiteralSize ?? 64 * 1024 * 1024;
    this.maxCommandSize = options.maxCommandSize ?? 128 * 1024 * 1024;
    this.maxDiscardSize = options.maxDiscardSize ?? 8 * 1024 * 1024;
    this.onLiteral = options.onLiteral;
  }

  /** Unconsumed input octets (for back-pressure). */
  get pendingBytes(): number {
    return this.pending;
  }

  /** True once the reader gave up (a `close` action); the session must close the connection. */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** True when no part of a command or line has been read (a clean boundary). */
  get idle(): boolean {
    return this.phase === 'line' && this.lineParts.length === 0 && this.segments.length === 0;
  }

  /**
   * Raw line mode: each line is returned as a `line` event with no literal handling (IDLE's
   * DONE, RFC 9051 6.3.13; AUTHENTICATE responses, RFC 9051 6.2.2). Switch between events.
   */
  setRawLineMode(on: boolean): void {
    this.rawMode = on;
  }

  get rawLineMode(): boolean {
    return this.rawMode;
  }

  push(chunk: Buffer): void {
    if (this.phase === 'closed' || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.pending += chunk.length;
  }

  /** The next event, or null when more input is needed. */
  next(): ReaderEvent | null {
    for (;;) {
      switch (this.phase) {
        case 'closed':
          return null;
        case 'literal':
          if (!this.readLiteral()) return null;
          break;
        case 'discard-line':
          if (!this.discardLine()) return null;
          break;
        case 'line': {
          const line = this.readLine();
          if (line === null) return null;
          if (line === 'overflow') {
            const first = this.segments[0] ?? this.overflowHead;
            const { tag, command } = this.rawMode ? { tag: null, command: null } : sniffCommand(first);
            const alreadyAnswered = this.rejected && !this.rawMode;
            this.lineParts = [];
            this.lineLength = 0;
            this.resetCommand();
            this.phase = this.overflowLineEnded ? 'line' : 'discard-line';
            if (!alreadyAnswered) return { type: 'line-too-long', tag, command };
            break;
          }
          const ev = this.completeLine(line);
          if (ev) return ev;
          break;
        }
      }
    }
  }

  private resetCommand(): void {
    this.segments = [];
    this.literals = [];
    this.commandBytes = 0;
    this.rejected = false;
  }

  private consume(n: number): void {
    this.pending -= n;
    this.offset += n;
    while (this.chunks.length && this.offset >= this.chunks[0]!.length) {
      this.offset -= this.chunks[0]!.length;
      this.chunks.shift();
    }
  }

  /** Whether the line that overflowed was read up to its LF already. */
  private overflowLineEnded = false;
  /** The first octets of the line that overflowed (to name its tag in the error). */
  private overflowHead: Buffer | undefined;

  private head(parts: Buffer[]): Buffer {
    const out: Buffer[] = [];
    let n = 0;
    for (const p of parts) {
      if (n >= 200) break;
      out.push(p.subarray(0, 200 - n));
      n += Math.min(p.length, 200 - n);
    }
    return Buffer.concat(out);
  }

  /** A complete line (CR stripped), 'overflow', or null if incomplete. */
  private readLine(): Buffer | 'overflow' | null {
    while (this.chunks.length) {
      const chunk = this.chunks[0]!;
      const lf = chunk.indexOf(LF, this.offset);
      const end = lf < 0 ? chunk.length : lf;
      const piece = chunk.subarray(this.offset, end);
      this.lineLength += piece.length;
      this.consume(end - this.offset + (lf < 0 ? 0 : 1));
      // +1 allows the CR of CRLF before we know it is one.
      if (this.lineLength > this.maxLineLength + 1) {
        this.overflowLineEnded = lf >= 0;
        this.overflowHead = this.head([...this.lineParts, piece]);
        return 'overflow';
      }
      if (piece.length) this.lineParts.push(piece);
      if (lf >= 0) {
        let line = this.lineParts.length === 1 ? this.lineParts[0]! : Buffer.concat(this.lineParts, this.lineLength);
        this.lineParts = [];
        this.lineLength = 0;
        if (line.length && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
        if (line.length > this.maxLineLength) {
          this.overflowLineEnded = true;
          this.overflowHead = this.head([line]);
          return 'overflow';
        }
        return line;
      }
    }
    return null;
  }

  private discardLine(): boolean {
    while (this.chunks.length) {
      const chunk = this.chunks[0]!;
      const lf = chunk.indexOf(LF, this.offset);
      if (lf >= 0) {
        this.consume(lf + 1 - this.offset);
        this.phase = 'line';
        return true;
      }
      this.consume(chunk.length - this.offset);
    }
    return false;
  }

  private completeLine(line: Buffer): ReaderEvent | null {
    if (this.rawMode) return { type: 'line', line };
    const marker = findLiteralMarker(line);
    // A rejected command keeps only its first line (for the tag): nothing accumulates.
    if (!this.rejected) this.segments.push(line);
    this.commandBytes += line.length + 2;
    if (!marker) {
      if (this.rejected) {
        this.resetCommand();
        return null;
      }
      const command: RawCommand = { segments: this.segments, literals: this.literals };
      const { tag } = sniffCommand(this.segments[0]);
      this.resetCommand();
      return { type: 'command', command, tag };
    }
    const { tag, command } = sniffCommand(this.segments[0]);
    const { size, sync, binary } = marker;

    if (this.rejected) {
      // Already answered: drop further non-synchronizing octets; a synchronizing literal
      // never gets its continuation, so the command ends here.
      if (sync) {
        this.resetCommand();
        return null;
      }
      if (size > this.maxDiscardSize) {
        this.shutDown();
        return { type: 'literal-rejected', tag, command, size, synchronizing: sync, binary, reason: 'too-big', action: 'close' };
      }
      this.startLiteral(size, binary, sync, false);
      return null;
    }

    let reason: LiteralRejectReason | null = null;
    let detail: unknown;
    if (size > this.maxLiteralSize) reason = 'too-big';
    else if (this.commandBytes + size > this.maxCommandSize) reason = 'command-too-big';
    else if (this.onLiteral) {
      detail = this.onLiteral({
        tag,
        command,
        size,
        synchronizing: sync,
        binary,
        index: this.literals.length,
        commandBytes: this.commandBytes,
        segments: this.segments,
      });
      if (detail !== undefined) reason = 'hook';
    }

    if (reason) {
      const base = { type: 'literal-rejected' as const, tag, command, size, synchronizing: sync, binary, reason };
      const withDetail = reason === 'hook' ? { ...base, detail } : base;
      if (sync) {
        this.resetCommand();
        return { ...withDetail, action: 'none' };
      }
      if (size > this.maxDiscardSize) {
        this.shutDown();
        return { ...withDetail, action: 'close' };
      }
      this.rejected = true;
      this.startLiteral(size, binary, sync, false);
      return { ...withDetail, action: 'discard' };
    }

    this.commandBytes += size;
    this.startLiteral(size, binary, sync, true);
    return sync ? { type: 'continue', tag, size } : null;
  }

  /** Stop reading for good: the session must close the connection. */
  private shutDown(): void {
    this.resetCommand();
    this.phase = 'closed';
    this.chunks = [];
    this.offset = 0;
    this.pending = 0;
    this.literalParts = null;
  }

  private startLiteral(size: number, binary: boolean, synchronizing: boolean, keep: boolean): void {
    this.literalSize = size;
    this.literalFilled = 0;
    // Nothing is allocated up front: an announced size costs memory only as octets arrive.
    this.literalParts = keep ? [] : null;
    this.literalMeta = { binary, synchronizing };
    this.phase = 'literal';
  }

  /** Move literal octets from the input; true when the literal is complete. */
  private readLiteral(): boolean {
    while (this.literalFilled < this.literalSize && this.chunks.length) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length - this.offset, this.literalSize - this.literalFilled);
      if (this.literalParts) this.literalParts.push(chunk.subarray(this.offset, this.offset + take));
      this.literalFilled += take;
      this.consume(take);
    }
    if (this.literalFilled < this.literalSize) return false;
    // A literal being dropped (rejected command) has no buffer and is not recorded.
    const parts = this.literalParts;
    if (parts) {
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.literalSize);
      this.literals.push({ data, ...this.literalMeta });
    }
    this.literalParts = null;
    this.phase = 'line';
    return true;
  }
}

/**
 * Frame a whole command given as text or bytes without its final CRLF (literals inline, e.g.
 * `A1 LOGIN {3}\r\nbob {6+}\r\nsecret`), for tests and tools. Throws unless the input is
 * exactly one command.
 */
export function rawCommandFrom(input: string | Buffer): RawCommand {
  const body = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const bytes = Buffer.concat([body, Buffer.from('\r\n')]);
  const reader = new ImapReader({
    maxLineLength: bytes.length,
    maxLiteralSize: bytes.length,
    maxCommandSize: bytes.length * 2 + 16,
  });
  reader.push(bytes);
  let command: RawCommand | null = null;
  for (let ev = reader.next(); ev; ev = reader.next()) {
    if (ev.type === 'continue') continue;
    if (ev.type !== 'command' || command) throw new Error(`rawCommandFrom: unexpected ${ev.type}`);
    command = ev.command;
  }
  if (!command || reader.pendingBytes || !reader.idle) throw new Error('rawCommandFrom: incomplete command');
  return command;
}
