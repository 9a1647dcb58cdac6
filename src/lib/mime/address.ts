/**
 * Address lists for IMAP ENVELOPE (RFC 5322 3.4 address-list, RFC 9051 7.5.2 address).
 *
 * Lenient the way Dovecot 2.3 is, so that clients see the same ENVELOPE from Postern as from
 * Dovecot: an unparsable mailbox still yields an entry, with MISSING_MAILBOX / MISSING_DOMAIN /
 * SYNTAX_ERROR placeholders; an unterminated group is closed; a comment after a bare addr-spec
 * ("a@b (Name)") is taken as the display name. Names stay undecoded (RFC 2047 words as sent).
 * Input is a binary string (one char per byte); output strings are decoded with binToString.
 */
import { Lexer, binToString } from './lexer.js';
import type { Address } from './types.js';

interface Draft {
  name: string | null;
  route: string | null;
  mailbox: string | null;
  domain: string | null;
}

const blank = (): Draft => ({ name: null, route: null, mailbox: null, domain: null });

class AddressParser {
  readonly lx: Lexer;
  out: Draft[] = [];
  addr: Draft = blank();
  /** set by addrSpec when the local part was unusable (Dovecot's invalid_syntax at that point) */
  private invalid = false;

  constructor(value: string) {
    this.lx = new Lexer(value, true);
  }

  private push(): void {
    this.out.push(this.addr);
    this.addr = blank();
  }

  private localPart(): number {
    const o: string[] = [];
    const r = this.lx.cur() === 0x22 ? this.lx.quotedString(o) : this.lx.dotAtom(o);
    if (r < 0) return -1;
    this.addr.mailbox = o.join('');
    return r;
  }

  private domain(): number {
    const o: string[] = [];
    const r = this.lx.domain(o);
    if (r < 0) return -1;
    this.addr.domain = o.join('');
    return r;
  }

  /** obs-route: "@a,@b" */
  private domainList(): number {
    const lx = this.lx;
    let route = '';
    for (;;) {
      if (lx.atEnd) return 0;
      if (lx.cur() !== 0x40) break;
      if (route.length > 0) route += ',';
      route += '@';
      const o: string[] = [];
      const r = lx.domain(o);
      route += o.join('');
      if (r <= 0) return r;
      while (lx.skipLwsp() > 0 && lx.cur() === 0x2c) lx.p++;
    }
    this.addr.route = route;
    return 1;
  }

  private angleAddr(): number {
    const lx = this.lx;
    lx.p++; // '<'
    if (lx.skipLwsp() <= 0) return -1;
    if (lx.cur() === 0x40) {
      if (this.domainList() > 0 && lx.cur() === 0x3a) {
        lx.p++;
      } else {
        this.addr.route = 'INVALID_ROUTE';
        if (lx.atEnd) return -1;
      }
      if (lx.skipLwsp() <= 0) return -1;
    }
    if (lx.cur() !== 0x3e) {
      // "<>" has neither mailbox nor domain
      if (this.localPart() <= 0) return -1;
      if (lx.cur() === 0x40 && this.domain() <= 0) return -1;
    }
    if (lx.cur() !== 0x3e) return -1;
    lx.p++;
    return lx.skipLwsp();
  }

  private nameAddr(): number {
    const lx = this.lx;
    const o: string[] = [];
    if (lx.phrase(o) <= 0 || lx.cur() !== 0x3c) return -1;
    const name = o.join('');
    this.addr.name = name === '' ? null : name;
    if (this.angleAddr() < 0) this.addr.domain = 'SYNTAX_ERROR';
    return lx.atEnd ? 0 : 1;
  }

  private addrSpec(): number {
    const lx = this.lx;
    lx.lastComment = '';
    const quoted = lx.cur() === 0x22;
    let ret = this.localPart();
    let ret2 = -2;
    if (ret <= 0) this.invalid = true;
    if (ret !== 0 && !lx.atEnd && lx.cur() === 0x40) {
      ret2 = this.domain();
      if (ret2 <= 0) ret = ret2;
    }
    if (lx.lastComment) {
      this.addr.name = lx.lastComment;
    } else if (ret2 === -2) {
      // "user" alone is a mailbox without domain; "user more words" is a display name
      const o: string[] = [];
      lx.phrase(o);
      const more = o.join('');
      if (more.length > 0) {
        this.addr.name = (this.addr.mailbox ?? '') + ' ' + more;
        this.addr.mailbox = null;
      } else if (!quoted) {
        this.addr.domain = '';
      }
      this.invalid = true;
      ret = -1;
    }
    return ret;
  }

  private fixedPush(): void {
    if (this.addr.mailbox === null) this.addr.mailbox = 'MISSING_MAILBOX';
    if (this.addr.domain === null || this.addr.domain === '') this.addr.domain = 'MISSING_DOMAIN';
    this.push();
  }

  private mailbox(): number {
    const lx = this.lx;
    const start = lx.p;
    let ret = this.nameAddr();
    if (ret < 0) {
      lx.p = start;
      this.addr = blank();
      this.invalid = false;
      ret = this.addrSpec();
      if (this.invalid && this.addr.name === null && this.addr.mailbox !== null && this.addr.domain === null) {
        this.addr.name = this.addr.mailbox;
        this.addr.mailbox = null;
      }
    }
    this.fixedPush();
    return ret;
  }

  private group(): number {
    const lx = this.lx;
    const o: string[] = [];
    if (lx.phrase(o) <= 0 || lx.cur() !== 0x3a) return -1;
    // from here on this is a group, even when broken
    lx.p++;
    let ret = lx.skipLwsp();
    this.addr.mailbox = o.join('');
    this.push(); // group start: (NIL NIL "name" NIL)
    if (ret > 0 && lx.cur() !== 0x3b) {
      for (;;) {
        this.mailbox();
        if (lx.atEnd || lx.cur() !== 0x2c) break;
        lx.p++;
        if (lx.skipLwsp() <= 0) {
          ret = -1;
          break;
        }
      }
    }
    if (ret >= 0) {
      if (lx.atEnd || lx.cur() !== 0x3b) ret = -1;
      else {
        lx.p++;
        ret = lx.skipLwsp();
      }
    }
    this.push(); // group end: (NIL NIL NIL NIL)
    return ret === 0 ? 0 : 1;
  }

  private address(): number {
    const start = this.lx.p;
    const ret = this.group();
    if (ret >= 0) return ret;
    this.lx.p = start;
    this.addr = blank();
    return this.mailbox();
  }

  parseList(): void {
    const lx = this.lx;
    if (lx.skipLwsp() <= 0) return;
    // each round consumes input or stops, so this ends; the cap is a guard against surprises
    for (let guard = 0; guard < 100000; guard++) {
      if (this.address() === 0) break;
      if (lx.atEnd || lx.cur() !== 0x2c) break;
      lx.p++;
      const r = lx.skipLwsp();
      if (r <= 0) {
        if (r < 0) this.fixedPush(); // ends with garbage
        break;
      }
    }
  }
}

/** Parse one header value (binary string) into IMAP address structures; [] when empty. */
export function parseAddressList(value: string): Address[] {
  const p = new AddressParser(value);
  p.parseList();
  return p.out.map((a) => ({
    name: a.name === null ? null : binToString(a.name),
    adl: a.route === null ? null : binToString(a.route),
    mailbox: a.mailbox === null ? null : binToString(a.mailbox),
    host: a.domain === null ? null : binToString(a.domain),
  }));
}
