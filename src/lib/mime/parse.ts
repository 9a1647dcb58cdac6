/**
 * MIME offset parser (RFC 5322, RFC 2045-2049), run once per message at ingest.
 *
 * Invariants:
 * - Never throws, for any input; work is linear in the message size (each byte is scanned a
 *   bounded number of times; line counts use a block index, see LineCounter). The raw buffer
 *   is never converted to one string.
 * - Offsets are absolute into `raw`, including inside embedded messages.
 * - Structure decisions follow Dovecot 2.3's message-parser, so that BODYSTRUCTURE and
 *   BODY[section] match what clients see from Dovecot:
 *   * a boundary line is "--" + boundary at the start of a line; only a prefix has to match
 *     (RFC 2046 5.1.1 allows trailing white space; Dovecot accepts anything), the longest
 *     matching boundary of all enclosing multiparts wins;
 *   * the line break before a boundary line belongs to the boundary (RFC 2046 5.1.1), unless it
 *     ends a previous boundary line; a header cut short by a boundary (even right after its
 *     blank line) gives up its last line break the same way;
 *   * a boundary of an enclosing multipart ends every part inside it, even within a header;
 *   * a missing close delimiter ends the multipart at the end of its parent (or the message);
 *   * after the close delimiter, lines starting with the same boundary are epilogue text;
 *   * Content-* fields count only in MIME parts (RFC 2045 4: MIME-Version or Content-Type
 *     present, or the part is inside a multipart); for the first Content-Type (and -ID,
 *     -Description, -Transfer-Encoding, -MD5, -Language, -Location) the first one wins;
 *   * a message/rfc822 body is parsed as a message whatever its Content-Transfer-Encoding;
 *   * descent stops at nesting depth MAX_DEPTH (Dovecot's limit is 100, ours 50): deeper
 *     multiparts and messages are served as single leaves;
 *   * after MAX_PARTS parts no boundary is recognised any more: the last part runs to the end.
 * - Difference from Dovecot: message/global (RFC 6532) is parsed as an embedded message too;
 *   whether IMAP shows it as one is the formatter's choice (IMAP4rev2 does, IMAP4rev1 did not).
 */
import { buildEnvelope } from './envelope.js';
import { decodeParams } from './decode.js';
import { type HeaderScan, fieldValueBin, scanHeader } from './headers.js';
import { Lexer, binToString, parseParams } from './lexer.js';
import type { MimePart, WireInfo } from './types.js';

export type { Address, Envelope, MimePart, WireInfo } from './types.js';
export { buildEnvelope } from './envelope.js';
export { getHeaders, headerBlock } from './headers.js';
export { decodeHeaderValue, decodedText } from './decode.js';
export { findSection, sectionBytes } from './section.js';

export const MAX_DEPTH = 50;
/** parts per message (Dovecot's default limit too); later content goes into the last part */
export const MAX_PARTS = 10000;
const BOUNDARY_MAX = 80;
const LF = 0x0a;
const CR = 0x0d;
const NL_DASHES = Buffer.from('\n--', 'latin1');

/** LF counts over byte ranges; large ranges use per-block counts built on first need. */
class LineCounter {
  private static readonly BLOCK = 1 << 16;
  private blocks: Uint32Array | null = null;
  constructor(private readonly raw: Buffer) {}

  private scan(a: number, b: number): number {
    const raw = this.raw;
    let n = 0;
    for (let p = raw.indexOf(LF, a); p >= 0 && p < b; p = raw.indexOf(LF, p + 1)) n++;
    return n;
  }

  count(a: number, b: number): number {
    const B = LineCounter.BLOCK;
    if (b - a <= 2 * B) return this.scan(a, b);
    if (this.blocks === null) {
      const nb = Math.ceil(this.raw.length / B);
      this.blocks = new Uint32Array(nb);
      const raw = this.raw;
      for (let i = 0; i < raw.length; i++) if (raw[i] === LF) this.blocks[(i / B) | 0]++;
    }
    const first = Math.ceil(a / B);
    const last = Math.floor(b / B);
    let n = this.scan(a, first * B) + this.scan(last * B, b);
    for (let i = first; i < last; i++) n += this.blocks[i];
    return n;
  }
}

interface Boundary {
  bytes: Buffer;
}
interface Hit {
  entry: Boundary;
  /** start of the boundary line */
  lineStart: number;
  /** where the content before it ends (its line break excluded when it belongs to the boundary) */
  contentEnd: number;
  close: boolean;
}
interface Ctx {
  inMultipart: boolean;
  inDigest: boolean;
  depth: number;
}
interface Result {
  part: MimePart;
  hit: Hit | null;
  /** line break moved out of a header cut short by a boundary (belongs to the parent's body) */
  movedNl: number;
}

/** What the Content-* fields of one header say. */
interface ContentInfo {
  wire: WireInfo;
  flagType: string | null; // "type/subtype" as Dovecot's parser sees it, for classification
  ctParseOk: boolean;
  /** Content-Type parameters as bytes (binary strings), for the boundary */
  binParams: [string, string][];
  mimeVersion: boolean;
  id: string | null;
  description: string | null;
  encoding: string | null;
  md5: string | null;
  language: string[] | null;
  location: string | null;
}

const unfold = (bin: string): string => binToString(bin.includes('\n') ? bin.replace(/\n/g, '') : bin);

function readContentFields(raw: Buffer, scan: HeaderScan): ContentInfo {
  const info: ContentInfo = {
    wire: { type: null, subtype: '', params: [], disposition: null },
    flagType: null,
    ctParseOk: false,
    binParams: [],
    mimeVersion: false,
    id: null,
    description: null,
    encoding: null,
    md5: null,
    language: null,
    location: null,
  };
  for (const f of scan.fields) {
    const nlen = f.nameEnd - f.nameStart;
    if (nlen < 8 || nlen > 25) continue;
    const name = raw.toString('latin1', f.nameStart, f.nameEnd).toLowerCase();
    if (name === 'mime-version') {
      info.mimeVersion = true;
      continue;
    }
    if (!name.startsWith('content-')) continue;
    const v = fieldValueBin(raw, f);
    switch (name) {
      case 'content-type': {
        if (info.flagType !== null) break;
        const lx = new Lexer(v);
        lx.skipLwsp();
        const ct = lx.contentType();
        info.flagType = ct.subtype === null ? ct.type : `${ct.type}/${ct.subtype}`;
        info.ctParseOk = ct.ret >= 0;
        info.wire.type = binToString(ct.type);
        info.wire.subtype = binToString(ct.subtype ?? '');
        info.binParams = info.ctParseOk ? parseParams(lx) : [];
        info.wire.params = binParams(info.binParams);
        break;
      }
      case 'content-transfer-encoding': {
        if (info.encoding !== null) break;
        const lx = new Lexer(v);
        lx.skipLwsp();
        const t: string[] = [];
        if (lx.mimeToken(t) >= 0 && lx.skipLwsp() === 0 && t[0].length > 0) info.encoding = binToString(t[0]);
        break;
      }
      case 'content-disposition': {
        // Dovecot quirk kept: a later field replaces one that had no parameters
        if (info.wire.disposition !== null && info.wire.disposition.params.length > 0) break;
        const lx = new Lexer(v);
        lx.skipLwsp();
        const t: string[] = [];
        if (lx.mimeToken(t) < 0) break;
        info.wire.disposition = { type: binToString(t[0]), params: binParams(parseParams(lx)) };
        break;
      }
      case 'content-language': {
        if (info.language !== null) break;
        // RFC 3282: 1#Language-tag
        const lx = new Lexer(v);
        lx.skipLwsp();
        const langs: string[] = [];
        for (;;) {
          const t: string[] = [];
          if (lx.atom(t) < 0) break;
          langs.push(binToString(t[0]));
          if (lx.atEnd || lx.cur() !== 0x2c) break;
          lx.p++;
          lx.skipLwsp();
        }
        if (langs.length > 0) info.language = langs;
        break;
      }
      case 'content-id':
        info.id ??= unfold(v);
        break;
      case 'content-description':
        info.description ??= unfold(v);
        break;
      case 'content-md5':
        info.md5 ??= unfold(v);
        break;
      case 'content-location':
        info.location ??= unfold(v);
        break;
    }
  }
  return info;
}

const binParams = (ps: [string, string][]): [string, string][] =>
  ps.map(([k, v]) => [binToString(k), binToString(v)]);

function emptyPart(pos: number): MimePart {
  return {
    headerStart: pos,
    bodyStart: pos,
    end: pos,
    type: 'text',
    subtype: 'plain',
    params: [],
    id: null,
    description: null,
    encoding: '7bit',
    size: 0,
    lines: 0,
    md5: null,
    disposition: null,
    language: null,
    location: null,
    wire: { type: null, subtype: '', params: [], disposition: null },
  };
}

class Parser {
  private readonly stack: Boundary[] = [];
  private readonly len: number;
  private parts = 0;
  /** MAX_PARTS reached: no more boundaries are seen, the last part runs to the end (Dovecot) */
  private overflow = false;
  readonly lines: LineCounter;

  constructor(private readonly raw: Buffer) {
    this.len = raw.length;
    this.lines = new LineCounter(raw);
  }

  /** The boundary whose line starts at `pos`, if any (longest match, newest on ties). */
  private matchAt(pos: number): { entry: Boundary; close: boolean } | null {
    const raw = this.raw;
    if (this.overflow || raw[pos] !== 0x2d || raw[pos + 1] !== 0x2d) return null;
    let best: Boundary | null = null;
    const s = pos + 2;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const b = this.stack[i].bytes;
      const n = b.length;
      if ((best !== null && best.bytes.length >= n) || s + n > this.len) continue;
      let k = 0;
      while (k < n && raw[s + k] === b[k]) k++;
      if (k === n) best = this.stack[i];
    }
    if (best === null) return null;
    const after = pos + 2 + best.bytes.length;
    return { entry: best, close: raw[after] === 0x2d && raw[after + 1] === 0x2d };
  }

  private needleTop: Boundary | null = null;
  private needleDepth = -1;
  private needleBuf = NL_DASHES;
  /** "\n--" plus what all active boundaries start with: fewer false candidates to check. */
  private needle(): Buffer {
    const top = this.stack[this.stack.length - 1];
    if (top === this.needleTop && this.stack.length === this.needleDepth) return this.needleBuf;
    let common = Math.min(top.bytes.length, 16);
    for (const b of this.stack) {
      let k = 0;
      while (k < common && k < b.bytes.length && b.bytes[k] === top.bytes[k]) k++;
      common = k;
    }
    this.needleTop = top;
    this.needleDepth = this.stack.length;
    this.needleBuf = Buffer.concat([NL_DASHES, top.bytes.subarray(0, common)]);
    return this.needleBuf;
  }

  /** Would `own` (about to be pushed) beat `other` as the match of the line at `pos`? */
  private ownWins(own: Buffer, other: Boundary, pos: number): boolean {
    const s = pos + 2;
    return (
      own.length >= other.bytes.length &&
      s + own.length <= this.len &&
      this.raw.compare(own, 0, own.length, s, s + own.length) === 0
    );
  }

  /** Next boundary line at or after `from`; `from` itself counts when it starts a line. */
  private findNext(from: number, atLineStart: boolean): Hit | null {
    if (this.stack.length === 0 || this.overflow) return null;
    const raw = this.raw;
    if (atLineStart && from < this.len) {
      const m = this.matchAt(from);
      if (m) return { ...m, lineStart: from, contentEnd: from };
    }
    const needle = this.needle();
    for (let p = from; ; ) {
      const i = raw.indexOf(needle, p);
      if (i < 0) return null;
      const m = this.matchAt(i + 1);
      if (m) {
        const contentEnd = i > from && raw[i - 1] === CR ? i - 1 : i;
        return { ...m, lineStart: i + 1, contentEnd };
      }
      p = i + 1;
    }
  }

  parsePart(start: number, ctx: Ctx): Result {
    const raw = this.raw;
    if (++this.parts >= MAX_PARTS) this.overflow = true;
    let pending: { entry: Boundary; close: boolean } | null = null;
    const scan = scanHeader(
      raw,
      start,
      this.len,
      this.stack.length > 0 && !this.overflow ? (p) => (pending = this.matchAt(p)) !== null : undefined,
      // only Content-* and MIME-Version matter here
      (a, b) => b - a >= 8 && b - a <= 25 && ((raw[a] | 0x20) === 0x63 || (raw[a] | 0x20) === 0x6d),
    );
    const info = readContentFields(raw, scan);
    // RFC 2045 4: without MIME-Version (and outside multiparts) Content-* means nothing;
    // a Content-Type alone is honoured, as most agents do.
    const isMime = ctx.inMultipart || info.mimeVersion || info.flagType !== null;
    const ft = isMime && info.flagType !== null ? info.flagType.toLowerCase() : null;
    const wire: WireInfo = isMime ? info.wire : { type: null, subtype: '', params: [], disposition: null };
    const isRfc822 = ft === null ? ctx.inDigest : ft === 'message/rfc822';
    const isGlobal = ft === 'message/global';
    const isMultipart = ft !== null && ft.startsWith('multipart/');
    const canDescend = ctx.depth < MAX_DEPTH && !this.overflow;

    const boundary = isMultipart ? info.binParams.find(([k]) => k.toLowerCase() === 'boundary') : undefined;
    // RFC 2046 5.1.1 allows 70 chars; longer ones are cut (at 80, as Dovecot does): prefix match
    const ownBoundary =
      isMultipart && canDescend && boundary !== undefined
        ? Buffer.from(boundary[1].slice(0, BOUNDARY_MAX), 'latin1')
        : null;

    // Header cut short by a boundary line: the line break before it goes with the boundary.
    // That includes the blank line itself when a boundary follows it directly (Dovecot checks
    // for a boundary once more after the blank line), unless it is this multipart's own.
    let eoh = scan.eoh;
    let cut: { entry: Boundary; close: boolean } | null = scan.boundaryHit ? pending : null;
    let movedNl = cut ? scan.lastNl : 0;
    if (eoh && this.stack.length > 0 && raw[scan.pos] === 0x2d) {
      const m = this.matchAt(scan.pos);
      if (m && !(ownBoundary && this.ownWins(ownBoundary, m.entry, scan.pos))) {
        cut = m;
        eoh = false;
        movedNl = scan.pos >= start + 2 && raw[scan.pos - 2] === CR ? 2 : 1;
      }
    }
    const bodyStart = scan.pos - movedNl;
    const headerHit: Hit | null = cut ? { ...cut, lineStart: scan.pos, contentEnd: scan.pos } : null;

    let type: string;
    let subtype: string;
    if (wire.type === null) [type, subtype] = isRfc822 ? ['message', 'rfc822'] : ['text', 'plain'];
    else [type, subtype] = [wire.type.toLowerCase(), wire.subtype.toLowerCase()];

    const part: MimePart = {
      headerStart: start,
      bodyStart,
      end: bodyStart,
      type,
      subtype,
      params: decodeParams(wire.params),
      id: isMime ? info.id : null,
      description: isMime ? info.description : null,
      encoding: (isMime ? info.encoding : null) ?? '7bit',
      size: 0,
      lines: 0,
      md5: isMime ? info.md5 : null,
      disposition: wire.disposition
        ? { type: wire.disposition.type.toLowerCase(), params: decodeParams(wire.disposition.params) }
        : null,
      language: isMime ? info.language : null,
      location: isMime ? info.location : null,
      wire,
    };

    let hit: Hit | null;
    if (ownBoundary !== null && eoh) {
      hit = this.multipartBody(part, ownBoundary, ft === 'multipart/digest', ctx.depth);
    } else if ((isRfc822 || isGlobal) && canDescend) {
      let child: MimePart;
      if (eoh) {
        const r = this.parsePart(bodyStart, { inMultipart: false, inDigest: false, depth: ctx.depth + 1 });
        child = r.part;
        part.end = child.end + r.movedNl;
        hit = r.hit;
      } else {
        child = emptyPart(bodyStart); // header cut short: the embedded message is empty
        part.end = cut ? bodyStart : this.len;
        hit = headerHit;
      }
      part.message = { envelope: buildEnvelope(raw, child), part: child };
    } else {
      if (cut) hit = headerHit;
      else if (!eoh) hit = null;
      else hit = this.findNext(bodyStart, true);
      part.end = cut ? bodyStart : hit ? hit.contentEnd : this.len;
      if (isMultipart && canDescend) part.children = [emptyPart(part.end)];
    }
    part.size = part.end - part.bodyStart;
    if (type === 'text' || type === 'message') part.lines = this.lines.count(part.bodyStart, part.end);
    return { part, hit, movedNl };
  }

  /** RFC 2046 5.1.1: preamble, body parts between delimiters, close delimiter, epilogue. */
  private multipartBody(part: MimePart, boundary: Buffer, digest: boolean, depth: number): Hit | null {
    const raw = this.raw;
    const entry: Boundary = { bytes: boundary };
    const level = this.stack.length;
    this.stack.push(entry);
    const children: MimePart[] = [];
    let h = this.findNext(part.bodyStart, true);
    for (;;) {
      if (h === null) {
        part.end = this.len;
        break;
      }
      if (h.entry !== entry) {
        part.end = h.contentEnd; // an enclosing multipart's boundary ends this one too
        break;
      }
      const lf = raw.indexOf(LF, h.lineStart);
      const lineEnd = lf < 0 ? this.len : lf + 1;
      this.stack.length = level + (h.close ? 0 : 1);
      if (h.close || lf < 0) {
        h = h.close ? this.findNext(lineEnd, true) : null; // epilogue
        part.end = h ? h.contentEnd : this.len;
        break;
      }
      const r = this.parsePart(lineEnd, { inMultipart: true, inDigest: digest, depth: depth + 1 });
      children.push(r.part);
      h = r.hit;
    }
    this.stack.length = level;
    part.children = children.length > 0 ? children : [emptyPart(part.end)];
    return h;
  }
}

/** Parse a whole message. Never throws; always returns a tree covering [0, raw.length). */
export function parseMessage(raw: Buffer): MimePart {
  const p = new Parser(raw);
  return p.parsePart(0, { inMultipart: false, inDigest: false, depth: 0 }).part;
}

/**
 * Bare LF -> CRLF. IMAP serves CRLF text (RFC 9051 2.2) and Dovecot counts a bare LF as two
 * octets in every size; storing this form makes offsets, sizes and BODY[] literals agree with
 * that. A lone CR is left alone, as Dovecot does (it is not a line break there either).
 * Returns `raw` itself when there is nothing to change.
 */
export function normalizeLineEndings(raw: Buffer): Buffer {
  const n = raw.length;
  let extra = 0;
  for (let i = raw.indexOf(LF); i >= 0; i = raw.indexOf(LF, i + 1)) if (i === 0 || raw[i - 1] !== CR) extra++;
  if (extra === 0) return raw;
  const out = Buffer.allocUnsafe(n + extra);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = raw[i];
    if (c === LF && (i === 0 || raw[i - 1] !== CR)) out[o++] = CR;
    out[o++] = c;
  }
  return out;
}
