/**
 * SEARCH CHARSET (RFC 9051 6.4.4): UTF-8 and US-ASCII are built into the parser; any other charset iconv-lite
 * knows (ISO-8859-x, windows-125x, KOI8-R, Shift_JIS, GB2312, ...) is decoded to UTF-8 here, as Dovecot does.
 * Unknown charsets stay NO [BADCHARSET].
 */
import iconv from 'iconv-lite';

export function searchCharsetDecoder(charset: string): ((data: Buffer) => string) | null {
  if (!iconv.encodingExists(charset)) return null;
  return (data) => iconv.decode(data, charset);
}
