/**
 * Decoding for people and for full-text indexing: RFC 2047 encoded words, RFC 2231 parameter
 * values, transfer encodings (RFC 2045 6) and charsets. Nothing here throws: unknown charsets
 * fall back to UTF-8, broken encodings decode as far as they go.
 */
import iconv from 'iconv-lite';
import libmime from 'libmime';
import * as libqp from 'libqp';
import { binToString } from './lexer.js';
import type { MimePart } from './types.js';

/** Bytes -> string in `charset`; UTF-8 when the charset is unknown or missing. */
export function decodeCharset(buf: Buffer, charset: string | null | undefined): string {
  const cs = (charset ?? '').trim().toLowerCase();
  if (cs === '' || cs === 'utf-8' || cs === 'utf8' || cs === 'us-ascii' || cs === 'ascii') {
    return buf.toString('utf8');
  }
  try {
    if (iconv.encodingExists(cs)) return iconv.decode(buf, cs);
  } catch {
    /* fall through */
  }
  return buf.toString('utf8');
}

/** RFC 2047 encoded words in a header value (unfolded or not). */
export function decodeHeaderValue(s: string | Buffer): string {
  const str = typeof s === 'string' ? s : binToString(s.toString('latin1', 0, s.length));
  if (!str.includes('=?')) return str;
  try {
    return libmime.decodeWords(str);
  } catch {
    return str;
  }
}

/** RFC 2231 4: charset'language'percent-encoded-octets */
function decode2231(v: string): string {
  const m = /^([^']*)'[^']*'([\s\S]*)$/.exec(v);
  const charset = m ? m[1] : 'utf-8';
  const text = m ? m[2] : v;
  const bin = text.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  // `text` may hold chars above 0xff (raw UTF-8 already decoded): encode those as UTF-8
  // eslint-disable-next-line no-control-regex
  const bytes = /^[\x00-\xff]*$/.test(bin) ? Buffer.from(bin, 'latin1') : Buffer.from(bin, 'utf8');
  return decodeCharset(bytes, charset || 'utf-8');
}

/**
 * Parameters as BODYSTRUCTURE shows them -> parameters for programs: names lower-cased, RFC 2231
 * values ("name*") decoded, RFC 2047 words in plain values decoded (common in filenames).
 * When a name occurs twice the first position is kept; an RFC 2231 value wins (RFC 2231 4).
 */
export function decodeParams(wire: [string, string][]): [string, string][] {
  const out: [string, string][] = [];
  const at = new Map<string, number>();
  for (const [k, v] of wire) {
    let name = k.toLowerCase();
    let value: string;
    const extended = name.endsWith('*');
    if (extended) {
      name = name.slice(0, -1);
      value = decode2231(v);
    } else {
      value = decodeHeaderValue(v);
    }
    const i = at.get(name);
    if (i === undefined) {
      at.set(name, out.length);
      out.push([name, value]);
    } else if (extended) {
      out[i][1] = value;
    }
  }
  return out;
}

const param = (p: MimePart, name: string): string | null => p.params.find(([k]) => k === name)?.[1] ?? null;

/** A part's body with its transfer encoding (RFC 2045 6) and charset undone. */
function decodeBody(raw: Buffer, p: MimePart): string {
  let body = raw.subarray(p.bodyStart, p.end);
  const enc = p.encoding.toLowerCase();
  if (enc === 'base64') {
    body = Buffer.from(body.toString('latin1', 0, body.length).replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  } else if (enc === 'quoted-printable') {
    body = libqp.decode(body);
  }
  return decodeCharset(body, param(p, 'charset'));
}

function collectText(raw: Buffer, p: MimePart, out: string[]): void {
  if (p.children) {
    if (p.subtype === 'alternative') {
      // RFC 2046 5.1.4: any one alternative will do; the plain one indexes best
      const pick = p.children.find((c) => c.type === 'text' && c.subtype === 'plain') ?? p.children[p.children.length - 1];
      collectText(raw, pick, out);
    } else {
      for (const c of p.children) collectText(raw, c, out);
    }
  } else if (p.message) {
    collectText(raw, p.message.part, out);
  } else if (p.type === 'text') {
    out.push(decodeBody(raw, p));
  }
}

/**
 * The text of a part for indexing: for text/* its decoded body; for multiparts and embedded
 * messages the text parts inside, joined by newlines (of an alternative, only one: text/plain
 * when there is one). Attachments that are not text/* contribute nothing.
 */
export function decodedText(raw: Buffer, part: MimePart): string {
  const out: string[] = [];
  collectText(raw, part, out);
  return out.join('\n');
}
