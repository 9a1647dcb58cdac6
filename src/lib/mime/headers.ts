/**
 * Header block scanning (RFC 5322 2.2, 2.2.3 folding) over raw bytes.
 *
 * A field is `name ":" value` plus continuation lines (lines starting with SP/HTAB). A line
 * without a colon is skipped; a line holding only white space is a continuation (Dovecot does
 * the same). The block ends at an empty line (CRLF or bare LF), at end of input, or, inside a
 * multipart, at a boundary line (`isBoundaryAt`).
 */
import type { MimePart } from './types.js';

const LF = 0x0a;
const CR = 0x0d;

export interface FieldPos {
  nameStart: number;
  /** end of the name, white space before the colon removed */
  nameEnd: number;
  /** first byte after the colon */
  colon: number;
  /** end of the last line, its line break excluded */
  valueEnd: number;
}

export interface HeaderScan {
  fields: FieldPos[];
  /** where scanning stopped: after the blank line, at EOF, or at the boundary line */
  pos: number;
  /** the blank line ending the header was seen */
  eoh: boolean;
  /** a boundary line stopped the header (at `pos`) */
  boundaryHit: boolean;
  /** size of the line break ending the last header line (0, 1 or 2) */
  lastNl: number;
}

/** Line break at `lfPos`: 2 for CRLF, 1 for bare LF. */
const nlLen = (raw: Buffer, lfPos: number, lineStart: number): number =>
  lfPos > lineStart && raw[lfPos - 1] === CR ? 2 : 1;

/**
 * Scan a header block from `start`. `keep` filters the fields recorded (by name position) so
 * that a huge header does not build a huge array when only a few fields matter.
 */
export function scanHeader(
  raw: Buffer,
  start: number,
  limit: number,
  isBoundaryAt?: (pos: number) => boolean,
  keep?: (nameStart: number, nameEnd: number) => boolean,
): HeaderScan {
  const fields: FieldPos[] = [];
  let pos = start;
  let lastNl = 0;
  while (pos < limit) {
    const c = raw[pos];
    if (c === LF) return { fields, pos: pos + 1, eoh: true, boundaryHit: false, lastNl };
    if (c === CR && pos + 1 < limit && raw[pos + 1] === LF) {
      return { fields, pos: pos + 2, eoh: true, boundaryHit: false, lastNl };
    }
    if (isBoundaryAt && c === 0x2d && isBoundaryAt(pos)) {
      return { fields, pos, eoh: false, boundaryHit: true, lastNl };
    }
    // one field: first line, then continuation lines
    const lineStart = pos;
    let lf = raw.indexOf(LF, pos);
    if (lf < 0 || lf >= limit) lf = -1;
    let valueEnd: number;
    if (lf < 0) {
      valueEnd = limit;
      pos = limit;
      lastNl = 0;
    } else {
      lastNl = nlLen(raw, lf, lineStart);
      valueEnd = lf + 1 - lastNl;
      pos = lf + 1;
      while (pos < limit && (raw[pos] === 0x20 || raw[pos] === 0x09)) {
        const lf2 = raw.indexOf(LF, pos);
        if (lf2 < 0 || lf2 >= limit) {
          valueEnd = limit;
          pos = limit;
          lastNl = 0;
          break;
        }
        lastNl = nlLen(raw, lf2, pos);
        valueEnd = lf2 + 1 - lastNl;
        pos = lf2 + 1;
      }
    }
    // name: up to the first colon on the first line; a line without one is not a field
    const firstLineEnd = lf < 0 ? limit : lf;
    let colon = -1;
    for (let i = lineStart; i < firstLineEnd; i++) {
      if (raw[i] === 0x3a) {
        colon = i;
        break;
      }
    }
    if (colon < 0) continue;
    let nameEnd = colon;
    while (nameEnd > lineStart && (raw[nameEnd - 1] === 0x20 || raw[nameEnd - 1] === 0x09)) nameEnd--;
    if (keep === undefined || keep(lineStart, nameEnd)) {
      fields.push({ nameStart: lineStart, nameEnd, colon: colon + 1, valueEnd });
    }
  }
  return { fields, pos, eoh: false, boundaryHit: false, lastNl };
}

/**
 * The value of a field as a binary string (one char per byte): leading white space skipped
 * (all of it, or one char when the value is only white space), each line break kept as LF
 * with its CR dropped. This is the form Dovecot parses ENVELOPE and BODYSTRUCTURE data from.
 */
export function fieldValueBin(raw: Buffer, f: FieldPos): string {
  let s = raw.toString('latin1', f.colon, f.valueEnd);
  if (s.includes('\n')) s = s.replace(/\r?\n/g, '\n');
  let firstLen = s.indexOf('\n');
  if (firstLen < 0) firstLen = s.length;
  let i = 0;
  while (i < firstLen && (s[i] === ' ' || s[i] === '\t')) i++;
  if (i === firstLen && firstLen > 0) i = 1; // only white space: skip just one char
  return s.slice(i);
}

/** Lower-case field name (names are ASCII; anything else is compared byte-wise). */
export const fieldName = (raw: Buffer, f: FieldPos): string => raw.toString('latin1', f.nameStart, f.nameEnd);

/** The header block of a part: from headerStart to bodyStart (blank line included). */
export function headerBlock(raw: Buffer, part: MimePart): Buffer {
  return raw.subarray(part.headerStart, part.bodyStart);
}

/**
 * The fields of a part's header block in order, values unfolded (RFC 5322 2.2.3: line breaks
 * of folding removed, the white space after them kept), leading white space skipped.
 * Duplicates are all returned.
 */
export function getHeaders(raw: Buffer, part: MimePart): { name: string; value: Buffer }[] {
  const scan = scanHeader(raw, part.headerStart, part.bodyStart);
  return scan.fields.map((f) => {
    let v = f.colon;
    while (v < f.valueEnd && (raw[v] === 0x20 || raw[v] === 0x09)) v++;
    let value = raw.subarray(v, f.valueEnd);
    if (value.indexOf(LF) >= 0) {
      const pieces: Buffer[] = [];
      let p = 0;
      for (;;) {
        const lf = value.indexOf(LF, p);
        if (lf < 0) break;
        pieces.push(value.subarray(p, lf > p && value[lf - 1] === CR ? lf - 1 : lf));
        p = lf + 1;
      }
      pieces.push(value.subarray(p));
      value = Buffer.concat(pieces);
    }
    return { name: raw.toString('utf8', f.nameStart, f.nameEnd), value };
  });
}
