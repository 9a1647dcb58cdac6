/**
 * Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3; still used by IMAP4rev1 clients
 * that have not enabled UTF8=ACCEPT / IMAP4rev2, RFC 9051 section 5.1 and appendix E).
 *
 * Rules (RFC 3501 5.1.3):
 * - printable US-ASCII 0x20-0x7e except "&" represent themselves; "&" is written "&-";
 * - anything else is UTF-16BE in modified BASE64 (RFC 2152 with "," instead of "/", no "="
 *   padding) between "&" and "-";
 * - modified BASE64 MUST NOT be used for a printable US-ASCII character.
 * Decoding is strict: it rejects 8-bit and control characters, unterminated shifts, padding,
 * non-zero leftover bits, partial UTF-16 units, unpaired surrogates and encoded printable
 * ASCII, so every accepted name has exactly one decoded form.
 */

export class Utf7Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Utf7Error';
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_VALUE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

function isPrintable(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

function encodeRun(units: number[]): string {
  let out = '&';
  let bits = 0;
  let nbits = 0;
  for (const u of units) {
    bits = (bits << 16) | u;
    nbits += 16;
    while (nbits >= 6) {
      nbits -= 6;
      out += B64[(bits >> nbits) & 0x3f];
    }
    bits &= (1 << nbits) - 1;
  }
  if (nbits > 0) out += B64[(bits << (6 - nbits)) & 0x3f];
  return out + '-';
}

/** Encode a Unicode mailbox name to modified UTF-7. Throws Utf7Error on lone surrogates. */
export function encodeUtf7(name: string): string {
  let out = '';
  let run: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (isPrintable(u)) {
      if (run.length) {
        out += encodeRun(run);
        run = [];
      }
      out += u === 0x26 ? '&-' : name[i];
      continue;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = name.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) throw new Utf7Error('Unpaired surrogate in mailbox name');
      run.push(u, next);
      i++;
      continue;
    }
    if (u >= 0xdc00 && u <= 0xdfff) throw new Utf7Error('Unpaired surrogate in mailbox name');
    run.push(u);
  }
  if (run.length) out += encodeRun(run);
  return out;
}

/** Decode a modified UTF-7 mailbox name. Throws Utf7Error on invalid or non-canonical input. */
export function decodeUtf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (!isPrintable(c)) throw new Utf7Error('Invalid character in modified UTF-7 mailbox name');
    if (c !== 0x26) {
      out += text[i];
      i++;
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end < 0) throw new Utf7Error('Unterminated "&" shift in modified UTF-7');
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    let bits = 0;
    let nbits = 0;
    let highSurrogate = 0;
    for (let k = i + 1; k < end; k++) {
      const code = text.charCodeAt(k);
      const v = code < 128 ? B64_VALUE[code]! : -1;
      if (v < 0) throw new Utf7Error('Invalid modified BASE64 character');
      bits = ((bits << 6) | v) & 0xffffff;
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        const unit = (bits >> nbits) & 0xffff;
        if (highSurrogate) {
          if (unit < 0xdc00 || unit > 0xdfff) throw new Utf7Error('Unpaired surrogate in modified UTF-7');
          out += String.fromCharCode(highSurrogate, unit);
          highSurrogate = 0;
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
          highSurrogate = unit;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          throw new Utf7Error('Unpaired surrogate in modified UTF-7');
        } else if (isPrintable(unit)) {
          // RFC 3501 5.1.3: BASE64 MUST NOT represent a printing US-ASCII character.
          throw new Utf7Error('Printable US-ASCII encoded in modified BASE64');
        } else {
          out += String.fromCharCode(unit);
        }
      }
    }
    if (highSurrogate) throw new Utf7Error('Unpaired surrogate in modified UTF-7');
    // Leftover must be the zero padding of the last unit: fewer than 6 bits, all zero.
    if (nbits >= 6 || (bits & ((1 << nbits) - 1)) !== 0) {
      throw new Utf7Error('Incomplete modified BASE64 sequence');
    }
    i = end + 1;
  }
  return out;
}

/** Is `text` valid modified UTF-7? */
export function isValidUtf7(text: string): boolean {
  try {
    decodeUtf7(text);
    return true;
  } catch {
    return false;
  }
}
