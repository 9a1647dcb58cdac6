/**
 * RFC 5322 / RFC 2045 lexical scanning over one header value.
 *
 * Works on a "binary string" (one char per byte, as buf.toString('latin1') gives) so 8-bit header
 * bytes pass through untouched; callers turn results into real strings with `binToString`.
 *
 * The return convention follows Dovecot's rfc822-parser (which Postern matches for ENVELOPE and
 * BODYSTRUCTURE output): 1 = parsed and more input follows, 0 = parsed and input ended,
 * -1 = syntax error. Every function is total: nothing throws, every loop advances.
 */

/* Character classes. RFC 5322 3.2.3 atext; RFC 2045 5.1 token = atext minus tspecials.
   8-bit bytes count as atext (RFC 6532 allows UTF-8 there). */
const ATEXT = 1;
const TOKEN = 2;
const CLASS = new Uint8Array(256);
{
  for (let c = 0x80; c < 0x100; c++) CLASS[c] = ATEXT | TOKEN;
  for (let c = 0x30; c <= 0x39; c++) CLASS[c] = ATEXT | TOKEN;
  for (let c = 0x41; c <= 0x5a; c++) CLASS[c] = ATEXT | TOKEN;
  for (let c = 0x61; c <= 0x7a; c++) CLASS[c] = ATEXT | TOKEN;
  for (const ch of "!#$%&'*+-^_`{|}~") CLASS[ch.charCodeAt(0)] = ATEXT | TOKEN;
  for (const ch of '/=?') CLASS[ch.charCodeAt(0)] = ATEXT; // atext, but MIME tspecials
}
export const isAtext = (c: number): boolean => (CLASS[c & 0xff] & ATEXT) !== 0;
const isToken = (c: number): boolean => (CLASS[c & 0xff] & TOKEN) !== 0;

export class Lexer {
  p = 0;
  readonly end: number;
  /** When not null, the text of the last comment skipped (RFC 5322 3.2.2). */
  lastComment: string | null = null;

  constructor(readonly s: string, trackComments = false) {
    this.end = s.length;
    if (trackComments) this.lastComment = '';
  }

  get atEnd(): boolean {
    return this.p >= this.end;
  }
  cur(): number {
    return this.p < this.end ? this.s.charCodeAt(this.p) : -1;
  }

  /** Comment, with nesting and quoted-pairs. Returns -1 when unterminated. */
  private skipComment(): number {
    let level = 1;
    let text = '';
    let start = ++this.p;
    for (; this.p < this.end; this.p++) {
      const c = this.s.charCodeAt(this.p);
      if (c === 0x28) level++;
      else if (c === 0x29) {
        if (--level === 0) {
          if (this.lastComment !== null) this.lastComment = text + this.s.slice(start, this.p);
          this.p++;
          return this.p < this.end ? 1 : 0;
        }
      } else if (c === 0x5c) {
        text += this.s.slice(start, this.p);
        start = this.p + 1;
        this.p++;
        if (this.p >= this.end) return -1;
      }
    }
    return -1;
  }

  /** CFWS: spaces, tabs, CR, LF and comments. */
  skipLwsp(): number {
    while (this.p < this.end) {
      const c = this.s.charCodeAt(this.p);
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) {
        this.p++;
        continue;
      }
      if (c !== 0x28) break;
      if (this.skipComment() < 0) return -1;
    }
    return this.p < this.end ? 1 : 0;
  }

  /** RFC 5322 atom (at least one atext char). */
  atom(out: string[]): number {
    if (this.p >= this.end || !isAtext(this.cur())) return -1;
    const start = this.p++;
    while (this.p < this.end && isAtext(this.s.charCodeAt(this.p))) this.p++;
    out.push(this.s.slice(start, this.p));
    return this.p < this.end ? this.skipLwsp() : 0;
  }

  /** dot-atom, allowing CFWS around the dots for RFC 822 compatibility. */
  dotAtom(out: string[]): number {
    if (this.p >= this.end || !isAtext(this.cur())) return -1;
    let start = this.p++;
    for (;;) {
      while (this.p < this.end && isAtext(this.s.charCodeAt(this.p))) this.p++;
      out.push(this.s.slice(start, this.p));
      if (this.p >= this.end) return 0;
      const r = this.skipLwsp();
      if (r <= 0) return r;
      if (this.cur() !== 0x2e) return 1;
      this.p++;
      out.push('.');
      const r2 = this.skipLwsp();
      if (r2 <= 0) return r2;
      start = this.p;
    }
  }

  /** RFC 2045 token ('.' included); may be empty. */
  mimeToken(out: string[]): number {
    const start = this.p;
    while (this.p < this.end) {
      const c = this.s.charCodeAt(this.p);
      if (!isToken(c) && c !== 0x2e) break;
      this.p++;
    }
    out.push(this.s.slice(start, this.p));
    return this.p < this.end ? this.skipLwsp() : 0;
  }

  /** quoted-string: quoted-pairs unescaped, folding line breaks removed. */
  quotedString(out: string[]): number {
    this.p++; // opening DQUOTE
    let start = this.p;
    for (; this.p < this.end; this.p++) {
      const c = this.s.charCodeAt(this.p);
      if (c === 0x22) {
        out.push(this.s.slice(start, this.p));
        this.p++;
        return this.skipLwsp();
      }
      if (c === 0x0a) {
        let e = this.p;
        if (e > start && this.s.charCodeAt(e - 1) === 0x0d) e--;
        out.push(this.s.slice(start, e));
        start = this.p + 1;
      } else if (c === 0x5c) {
        out.push(this.s.slice(start, this.p));
        this.p++;
        if (this.p >= this.end) return -1;
        start = this.p;
      }
    }
    return -1;
  }

  /** atext and dots, possibly empty, without skipping whitespace inside. */
  private atomOrDot(out: string[]): number {
    const start = this.p;
    while (this.p < this.end) {
      const c = this.s.charCodeAt(this.p);
      if (!isAtext(c) && c !== 0x2e) break;
      this.p++;
    }
    out.push(this.s.slice(start, this.p));
    return this.p < this.end ? this.skipLwsp() : 0;
  }

  /** RFC 5322 phrase (obs-phrase allowed); words joined with one space. May yield "". */
  phrase(out: string[]): number {
    if (this.p >= this.end) return 0;
    if (this.cur() === 0x2e) return -1;
    for (;;) {
      const r = this.cur() === 0x22 ? this.quotedString(out) : this.atomOrDot(out);
      if (r <= 0) return r;
      const c = this.cur();
      if (!isAtext(c) && c !== 0x22 && c !== 0x2e) break;
      out.push(' ');
    }
    return this.skipLwsp();
  }

  /** "@" domain: dot-atom or domain-literal (kept with its brackets). */
  domain(out: string[]): number {
    this.p++; // '@'
    if (this.skipLwsp() <= 0) return -1;
    if (this.cur() !== 0x5b) return this.dotAtom(out);
    const start = this.p;
    for (; this.p < this.end; this.p++) {
      const c = this.s.charCodeAt(this.p);
      if (c === 0x5c) {
        this.p++;
        if (this.p >= this.end) break;
      } else if (c === 0x5d) {
        this.p++;
        out.push(this.s.slice(start, this.p));
        return this.skipLwsp();
      }
    }
    return -1;
  }

  /**
   * RFC 2045 5.1 type "/" subtype. On a syntax error the part read so far is still returned
   * (Dovecot prints a broken Content-Type as well as it could read it).
   */
  contentType(): { type: string; subtype: string | null; ret: number } {
    const t: string[] = [];
    if (this.skipLwsp() <= 0) return { type: '', subtype: null, ret: -1 };
    if (this.mimeToken(t) <= 0) return { type: t.join(''), subtype: null, ret: -1 };
    if (this.cur() !== 0x2f) return { type: t.join(''), subtype: null, ret: -1 };
    this.p++;
    if (this.skipLwsp() <= 0) return { type: t.join(''), subtype: null, ret: -1 };
    const st: string[] = [];
    const ret = this.mimeToken(st);
    return { type: t.join(''), subtype: st.join(''), ret };
  }

  /** One `; attribute=value` parameter. 0 at end of input, -1 on error. */
  contentParam(): { ret: number; key: string; value: string } {
    const fail = { ret: -1, key: '', value: '' };
    if (this.p >= this.end) return { ret: 0, key: '', value: '' };
    if (this.cur() !== 0x3b) return fail;
    this.p++;
    if (this.skipLwsp() <= 0) return fail;
    const k: string[] = [];
    if (this.mimeToken(k) <= 0) return fail;
    if (this.cur() !== 0x3d) return fail;
    this.p++;
    const v: string[] = [];
    let ret = this.skipLwsp();
    if (ret <= 0) {
      /* no value */
    } else if (this.cur() === 0x22) {
      ret = this.quotedString(v);
    } else if (this.cur() === 0x3d) {
      /* broken input seen in the wild: name==?utf-8?b?...?= */
      const start = this.p;
      while (this.p < this.end && !';\t\r\n '.includes(this.s[this.p])) this.p++;
      v.push(this.s.slice(start, this.p));
    } else {
      ret = this.mimeToken(v);
    }
    return { ret: ret < 0 ? -1 : 1, key: k.join(''), value: v.join('') };
  }
}

/**
 * Parameter list after a Content-Type / Content-Disposition value (RFC 2045 5.1), with
 * RFC 2231 section 3 continuations joined ("name*0*=a; name*1=b" -> "name*" = "ab") but NOT
 * charset-decoded: IMAP BODYSTRUCTURE shows them this way (as Dovecot does) so clients decode.
 * Broken parameters are skipped. Order: plain parameters as they came, then the RFC 2231 ones
 * sorted by name.
 */
export function parseParams(lx: Lexer): [string, string][] {
  const result: [string, string][] = [];
  const ext: { key: string; value: string; idx: number; extended: boolean; seq: number }[] = [];
  let idx = 0; // deliberately not reset for "name*": Dovecot 2.3 behaves the same way
  for (;;) {
    const r = lx.contentParam();
    if (r.ret === 0) break;
    if (r.ret < 0) {
      if (lx.atEnd) break;
      lx.p++; // try to continue anyway
      continue;
    }
    const star = r.key.indexOf('*');
    let plain = true;
    if (star >= 0) {
      let i = star;
      if (i + 1 < r.key.length) {
        i++;
        idx = 0;
        while (i < r.key.length && r.key.charCodeAt(i) >= 0x30 && r.key.charCodeAt(i) <= 0x39) {
          idx = idx * 10 + (r.key.charCodeAt(i) - 0x30);
          i++;
        }
      }
      let extended = false;
      if (r.key[i] === '*') {
        extended = true;
        i++;
      }
      if (i >= r.key.length) {
        plain = false;
        ext.push({ key: r.key.slice(0, star), value: r.value, idx, extended, seq: ext.length });
      }
    }
    if (plain) result.push([r.key, r.value]);
  }
  if (ext.length === 0) return result;
  ext.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.idx - b.idx || a.seq - b.seq));
  for (let i = 0; i < ext.length; ) {
    let j = i;
    let ok = true;
    let haveExtended = false;
    const lname = ext[i].key.toLowerCase();
    for (let n = 0; j < ext.length && ext[j].key.toLowerCase() === lname; j++, n++) {
      if (ext[j].idx !== n) ok = false;
      if (ext[j].extended) haveExtended = true;
    }
    if (!ok) {
      for (let k = i; k < j; k++) {
        result.push([`${ext[k].key}*${ext[k].idx}${ext[k].extended ? '*' : ''}`, ext[k].value]);
      }
    } else {
      let v = !ext[i].extended && haveExtended ? "''" : '';
      for (let k = i; k < j; k++) {
        v += !ext[k].extended && haveExtended ? ext[k].value.replace(/%/g, '%25') : ext[k].value;
      }
      result.push([haveExtended ? ext[i].key + '*' : ext[i].key, v]);
    }
    i = j;
  }
  return result;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/**
 * Binary string -> JS string: UTF-8 when the bytes are valid UTF-8 (RFC 6532), otherwise each
 * byte as Latin-1. NUL becomes U+FFFD (as Dovecot does for header values).
 */
export function binToString(bin: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x01-\x7f]*$/.test(bin)) return bin;
  let s = bin;
  if (/[\x80-\xff]/.test(bin)) {
    try {
      s = utf8Fatal.decode(Buffer.from(bin, 'latin1'));
    } catch {
      s = bin;
    }
  }
  return s.includes('\0') ? s.replace(/\0/g, '\uFFFD') : s;
}
