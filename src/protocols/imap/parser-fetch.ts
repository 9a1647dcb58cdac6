/**
 * FETCH arguments (RFC 9051 section 6.4.5 and section 9 `fetch`, `fetch-att`, `section`;
 * RFC 3501 6.4.5 for RFC822.*; RFC 3516 BINARY; RFC 7162 MODSEQ / CHANGEDSINCE / VANISHED;
 * RFC 4466 section 2.4 fetch modifiers).
 */

import { MAX_UINT32 } from '../../lib/imap/sequence-set.js';
import { CHAR, ImapCursor, isAtomChar } from '../../lib/imap/syntax.js';
import type { FetchCommand, FetchItem, FetchMacro, PartialRange, Section, SectionText } from './types.js';

const SIMPLE_ATTS = new Set([
  'ENVELOPE',
  'FLAGS',
  'INTERNALDATE',
  'RFC822.SIZE',
  'RFC822',
  'RFC822.HEADER',
  'RFC822.TEXT',
  'BODY',
  'BODYSTRUCTURE',
  'UID',
  'MODSEQ',
] as const);
type SimpleAtt = typeof SIMPLE_ATTS extends Set<infer T> ? T : never;

/** RFC 9051 6.4.5: the three macros. */
const MACROS: Record<FetchMacro, FetchItem[]> = {
  FAST: [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }],
  ALL: [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }],
  FULL: [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }, { type: 'BODY' }],
};

const SECTION_TEXTS: ReadonlySet<string> = new Set(['HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'TEXT', 'MIME']);

function partNumber(cur: ImapCursor, token: string): number {
  // section-part = nz-number *("." nz-number)
  if (!/^[1-9][0-9]*$/.test(token) || token.length > 10 || Number(token) > MAX_UINT32) {
    cur.error(`Invalid section part "${token}"`);
  }
  return Number(token);
}

/**
 * section = "[" [section-spec] "]"; section-spec = section-msgtext / (section-part ["." section-text]);
 * section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT";
 * section-text = section-msgtext / "MIME" (MIME only after a part number).
 */
export function parseSection(cur: ImapCursor): Section {
  cur.expectChar(0x5b, '"["');
  const spec = cur.word();
  const part: number[] = [];
  let text: SectionText | null = null;
  if (spec !== '') {
    const tokens = spec.split('.');
    let i = 0;
    while (i < tokens.length && /^[0-9]+$/.test(tokens[i]!)) part.push(partNumber(cur, tokens[i++]!));
    const rest = tokens.slice(i).join('.');
    if (rest !== '') {
      if (!SECTION_TEXTS.has(rest)) cur.error(`Invalid section "${spec}"`);
      text = rest as SectionText;
      if (text === 'MIME' && part.length === 0) cur.error('MIME requires a part number');
    } else if (i < tokens.length || spec.endsWith('.')) {
      cur.error(`Invalid section "${spec}"`);
    }
  }
  let fields: string[] | null = null;
  if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
    // header-list = "(" header-fld-name *(SP header-fld-name) ")"; header-fld-name = astring
    cur.sp('header list');
    cur.expectChar(CHAR.LPAREN, '"(" starting header list');
    fields = [];
    do {
      const name = cur.astringText('header field name');
      if (name === '') cur.error('Empty header field name');
      fields.push(name);
    } while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing header list');
  }
  cur.expectChar(0x5d, '"]" closing section');
  return { part, text, fields };
}

/** section-binary = "[" [section-part] "]" (RFC 9051 section 9). */
function parseBinarySection(cur: ImapCursor): number[] {
  cur.expectChar(0x5b, '"["');
  const spec = cur.word();
  cur.expectChar(0x5d, '"]" closing section');
  if (spec === '') return [];
  return spec.split('.').map((t) => partNumber(cur, t));
}

/** partial = "<" number64 "." nz-number64 ">" (RFC 9051; RFC 3501 uses 32-bit numbers). */
function parsePartial(cur: ImapCursor): PartialRange | null {
  if (!cur.tryChar(0x3c)) return null;
  const offset = cur.number64('partial offset');
  cur.expectChar(0x2e, '"." in partial');
  if (cur.peek() === 0x30) cur.error('Partial length must be non-zero');
  const length = cur.number64('partial length');
  cur.expectChar(0x3e, '">" closing partial');
  return { offset, length };
}

function parseFetchAtt(cur: ImapCursor): FetchItem {
  const name = cur.word();
  if (name === '') cur.error('Expected fetch attribute');
  const hasSection = cur.peek() === 0x5b;
  switch (name) {
    case 'BODY':
    case 'BODY.PEEK': {
      if (!hasSection) {
        if (name === 'BODY.PEEK') cur.error('BODY.PEEK requires a section');
        break;
      }
      const section = parseSection(cur);
      return { type: 'BODY[]', peek: name === 'BODY.PEEK', section, partial: parsePartial(cur) };
    }
    case 'BINARY':
    case 'BINARY.PEEK': {
      if (!hasSection) cur.error(`${name} requires a section`);
      const part = parseBinarySection(cur);
      return { type: 'BINARY[]', peek: name === 'BINARY.PEEK', part, partial: parsePartial(cur) };
    }
    case 'BINARY.SIZE':
      if (!hasSection) cur.error('BINARY.SIZE requires a section');
      return { type: 'BINARY.SIZE[]', part: parseBinarySection(cur) };
  }
  if (hasSection) cur.error(`${name} does not take a section`);
  if (!SIMPLE_ATTS.has(name as SimpleAtt)) cur.error(`Unknown fetch attribute ${name}`);
  const after = cur.peek();
  if (after >= 0 && isAtomChar(after)) cur.error(`Invalid fetch attribute ${name}`);
  return { type: name as SimpleAtt };
}

/**
 * The arguments of FETCH after the command name:
 * SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")
 * [SP "(" fetch-modifier *(SP fetch-modifier) ")"]
 */
export function parseFetchArgs(cur: ImapCursor, tag: string, uid: boolean): FetchCommand {
  cur.sp('sequence set');
  const sequence = cur.sequenceSet();
  cur.sp('fetch attributes');
  let items: FetchItem[];
  let macro: FetchMacro | null = null;
  if (cur.tryChar(CHAR.LPAREN)) {
    items = [];
    do {
      items.push(parseFetchAtt(cur));
    } while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing fetch attributes');
  } else {
    for (const m of ['ALL', 'FAST', 'FULL'] as const) {
      if (cur.tryKeyword(m)) {
        macro = m;
        break;
      }
    }
    items = macro ? MACROS[macro].map((i) => ({ ...i })) : [parseFetchAtt(cur)];
  }

  let changedSince: bigint | null = null;
  let vanished = false;
  if (cur.trySp()) {
    // fetch-modifiers (RFC 4466 2.4): CHANGEDSINCE mod-sequence-valzer / VANISHED (RFC 7162 7)
    cur.expectChar(CHAR.LPAREN, '"(" starting fetch modifiers');
    const seen = new Set<string>();
    do {
      const mod = cur.keyword('fetch modifier');
      if (seen.has(mod)) cur.error(`Duplicate fetch modifier ${mod}`);
      seen.add(mod);
      if (mod === 'CHANGEDSINCE') {
        cur.sp('mod-sequence');
        changedSince = cur.modSeq(false);
      } else if (mod === 'VANISHED') {
        vanished = true;
      } else {
        cur.error(`Unknown fetch modifier ${mod}`);
      }
    } while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing fetch modifiers');
  }
  // RFC 7162 3.2.6: VANISHED only with UID FETCH and together with CHANGEDSINCE, else BAD.
  if (vanished && !uid) cur.error('VANISHED requires UID FETCH');
  if (vanished && changedSince === null) cur.error('VANISHED requires CHANGEDSINCE');
  return { name: 'FETCH', tag, uid, sequence, items, macro, changedSince, vanished };
}

const ATOM_RE = /^[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+$/; // ATOM-CHAR (RFC 9051 section 9)

function formatAstring(s: string): string {
  return ATOM_RE.test(s) ? s : `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;
}

/** The section as written inside `[...]` in a FETCH response (RFC 9051 7.5.2). */
export function formatSection(section: Section): string {
  let s = section.part.join('.');
  if (section.text) s += (s ? '.' : '') + section.text;
  if (section.fields) s += ` (${section.fields.map(formatAstring).join(' ')})`;
  return s;
}

/**
 * The name under which a FETCH response returns an item (RFC 9051 7.5.2): `.PEEK` dropped,
 * a partial shown by its origin only (`BODY[TEXT]<0>`).
 */
export function fetchResponseName(item: FetchItem): string {
  switch (item.type) {
    case 'BODY[]':
      return `BODY[${formatSection(item.section)}]${item.partial ? `<${item.partial.offset}>` : ''}`;
    case 'BINARY[]':
      return `BINARY[${item.part.join('.')}]${item.partial ? `<${item.partial.offset}>` : ''}`;
    case 'BINARY.SIZE[]':
      return `BINARY.SIZE[${item.part.join('.')}]`;
    default:
      return item.type;
  }
}

/** Does fetching this item set \Seen (RFC 9051 6.4.5: BODY[...] and BINARY[...] without .PEEK; RFC822, RFC822.TEXT)? */
export function fetchItemSetsSeen(item: FetchItem): boolean {
  switch (item.type) {
    case 'BODY[]':
    case 'BINARY[]':
      return !item.peek;
    case 'RFC822':
    case 'RFC822.TEXT':
      return true;
    default:
      return false;
  }
}
