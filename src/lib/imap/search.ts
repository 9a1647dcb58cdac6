/**
 * SEARCH key grammar (RFC 9051 section 6.4.4 and section 9 `search-key`; RFC 3501 6.4.4 for
 * NEW OLD RECENT; RFC 7162 section 3.1.5 MODSEQ; RFC 5182 `$`) into an AST.
 *
 * Grammar only: evaluation belongs to the server. Strings are decoded with the caller's charset
 * decoder (SEARCH CHARSET, RFC 9051 6.4.4), so the AST holds JS strings.
 * Nesting (NOT, OR, parentheses) is bounded by `maxDepth` so a hostile client cannot exhaust the
 * stack; deep left-nested OR chains from real clients are why the default is generous.
 */

import { ImapCursor, canonicalFlag, decodeUtf8, type ImapDate } from './syntax.js';
import type { SequenceSet } from './sequence-set.js';

export type SystemSearchFlag = '\\Answered' | '\\Deleted' | '\\Draft' | '\\Flagged' | '\\Seen';

/** RFC 7162 section 3.1.5: `MODSEQ "/flags/\Seen" priv 123`. */
export interface ModSeqEntry {
  /** The flag named in `/flags/<flag>`, system flags in canonical case. */
  flag: string;
  entryType: 'priv' | 'shared' | 'all';
}

export type SearchKey =
  | { type: 'all' }
  | { type: 'and'; keys: SearchKey[] }
  | { type: 'or'; left: SearchKey; right: SearchKey }
  | { type: 'not'; key: SearchKey }
  /** ANSWERED DELETED DRAFT FLAGGED SEEN (set: true) and their UN- forms (set: false). */
  | { type: 'flag'; flag: SystemSearchFlag; set: boolean }
  /** KEYWORD / UNKEYWORD */
  | { type: 'keyword'; keyword: string; set: boolean }
  /** RFC 3501 only (no \Recent in IMAP4rev2): NEW = RECENT UNSEEN, OLD = NOT RECENT. */
  | { type: 'new' }
  | { type: 'old' }
  | { type: 'recent' }
  /**
   * BCC CC FROM TO SUBJECT (field in canonical case: "Bcc", "Cc", "From", "To", "Subject") and
   * HEADER field-name string (field as the client wrote it). Field names match
   * case-insensitively; an empty value matches every message having the field.
   */
  | { type: 'header'; field: string; value: string }
  | { type: 'body'; value: string }
  | { type: 'text'; value: string }
  /** BEFORE ON SINCE (internal date) and SENTBEFORE SENTON SENTSINCE (Date: header). */
  | { type: 'date'; field: 'internal' | 'sent'; op: 'before' | 'on' | 'since'; date: ImapDate }
  | { type: 'size'; op: 'larger' | 'smaller'; size: number }
  /** A bare sequence set: message sequence numbers (may contain `$`). */
  | { type: 'seq'; set: SequenceSet }
  /** UID sequence-set (may contain `$`). */
  | { type: 'uid'; set: SequenceSet }
  | { type: 'modseq'; modseq: bigint; entry: ModSeqEntry | null };

export interface SearchParseOptions {
  /** Decode a string argument in the command's charset. Default: strict UTF-8. */
  decode?: (data: Buffer) => string;
  /** Maximum nesting of NOT / OR / parentheses. Default DEFAULT_MAX_SEARCH_DEPTH. */
  maxDepth?: number;
}

export const DEFAULT_MAX_SEARCH_DEPTH = 256;

const FLAG_KEYS: Record<string, [SystemSearchFlag, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const HEADER_KEYS: Record<string, string> = {
  BCC: 'Bcc',
  CC: 'Cc',
  FROM: 'From',
  TO: 'To',
  SUBJECT: 'Subject',
};

const DATE_KEYS: Record<string, [field: 'internal' | 'sent', op: 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'],
  ON: ['internal', 'on'],
  SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'],
  SENTON: ['sent', 'on'],
  SENTSINCE: ['sent', 'since'],
};

const defaultDecode = (data: Buffer): string => decodeUtf8(data, 'search string');

class SearchParser {
  private readonly decode: (data: Buffer) => string;
  private readonly maxDepth: number;

  constructor(
    private readonly cur: ImapCursor,
    options: SearchParseOptions,
  ) {
    this.decode = options.decode ?? defaultDecode;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_SEARCH_DEPTH;
  }

  private str(what: string): string {
    return this.decode(this.cur.astring(what));
  }

  /** search-key *(SP search-key), stopping at ")" (inside a list) or the end of the command. */
  keys(depth: number): SearchKey[] {
    const keys = [this.key(depth)];
    while (this.cur.trySp()) keys.push(this.key(depth));
    return keys;
  }

  key(depth: number): SearchKey {
    const cur = this.cur;
    if (depth > this.maxDepth) cur.error('Search criteria nested too deeply');
    if (cur.atSequenceSet()) return { type: 'seq', set: cur.sequenceSet() };
    if (cur.tryChar(0x28)) {
      // "(" search-key *(SP search-key) ")"
      const keys = this.keys(depth + 1);
      cur.expectChar(0x29, '")" closing search key list');
      return keys.length === 1 ? keys[0]! : { type: 'and', keys };
    }
    const name = cur.keyword('search key');
    const flagKey = FLAG_KEYS[name];
    if (flagKey) return { type: 'flag', flag: flagKey[0], set: flagKey[1] };
    const headerField = HEADER_KEYS[name];
    if (headerField) {
      cur.sp(name + ' value');
      return { type: 'header', field: headerField, value: this.str(name + ' value') };
    }
    const dateKey = DATE_KEYS[name];
    if (dateKey) {
      cur.sp('date');
      return { type: 'date', field: dateKey[0], op: dateKey[1], date: cur.date() };
    }
    switch (name) {
      case 'ALL':
        return { type: 'all' };
      case 'NEW':
        return { type: 'new' };
      case 'OLD':
        return { type: 'old' };
      case 'RECENT':
        return { type: 'recent' };
      case 'BODY':
      case 'TEXT': {
        cur.sp(name + ' value');
        const value = this.str(name + ' value');
        return name === 'BODY' ? { type: 'body', value } : { type: 'text', value };
      }
      case 'HEADER': {
        cur.sp('header field name');
        const field = this.str('header field name');
        cur.sp('header value');
        return { type: 'header', field, value: this.str('header value') };
      }
      case 'KEYWORD':
      case 'UNKEYWORD': {
        cur.sp('keyword');
        // flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom: never a "\" flag.
        return { type: 'keyword', keyword: cur.atom('keyword'), set: name === 'KEYWORD' };
      }
      case 'LARGER':
      case 'SMALLER': {
        cur.sp('size');
        // RFC 9051: number64; RFC 3501: number.
        const size = cur.number64('size');
        return { type: 'size', op: name === 'LARGER' ? 'larger' : 'smaller', size };
      }
      case 'UID':
        cur.sp('UID set');
        return { type: 'uid', set: cur.sequenceSet('UID set') };
      case 'NOT':
        cur.sp('NOT operand');
        return { type: 'not', key: this.key(depth + 1) };
      case 'OR': {
        cur.sp('OR operand');
        const left = this.key(depth + 1);
        cur.sp('second OR operand');
        const right = this.key(depth + 1);
        return { type: 'or', left, right };
      }
      case 'MODSEQ':
        return this.modseq();
      default:
        return cur.error(`Unknown search key ${name}`);
    }
  }

  /**
   * search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer;
   * search-modseq-ext = SP entry-name SP entry-type-req;
   * entry-name = DQUOTE "/flags/" attr-flag DQUOTE; entry-type-req = "priv" / "shared" / "all"
   * (RFC 7162 section 7).
   */
  private modseq(): SearchKey {
    const cur = this.cur;
    cur.sp('mod-sequence');
    let entry: ModSeqEntry | null = null;
    if (cur.peek() === 0x22) {
      const name = cur.quoted().toString('latin1');
      if (!/^\/flags\//i.test(name)) cur.error('MODSEQ entry name must start with "/flags/"');
      const flag = name.slice(7);
      if (!/^\\?[^\x00-\x20\x7f-\xff(){%*"\\\]]+$/.test(flag)) cur.error('Invalid flag in MODSEQ entry name');
      cur.sp('entry type');
      const t = cur.keyword('entry type');
      if (t !== 'PRIV' && t !== 'SHARED' && t !== 'ALL') cur.error('MODSEQ entry type must be priv, shared or all');
      entry = { flag: canonicalFlag(flag), entryType: t.toLowerCase() as ModSeqEntry['entryType'] };
      cur.sp('mod-sequence');
    }
    return { type: 'modseq', modseq: cur.modSeq(false), entry };
  }
}

/**
 * Parse `search-key *(SP search-key)` from the cursor (the rest of a SEARCH, SORT or THREAD
 * command). A single key is returned as itself, several as `{type: 'and'}`. The caller checks
 * that the command ends afterwards.
 */
export function parseSearchCriteria(cur: ImapCursor, options: SearchParseOptions = {}): SearchKey {
  const keys = new SearchParser(cur, options).keys(0);
  return keys.length === 1 ? keys[0]! : { type: 'and', keys };
}

/** True if the criteria refer to the saved result `$` (RFC 5182 section 2.2). */
export function searchUsesSavedResult(key: SearchKey): boolean {
  switch (key.type) {
    case 'seq':
    case 'uid':
      return key.set.saved;
    case 'and':
      return key.keys.some(searchUsesSavedResult);
    case 'or':
      return searchUsesSavedResult(key.left) || searchUsesSavedResult(key.right);
    case 'not':
      return searchUsesSavedResult(key.key);
    default:
      return false;
  }
}

/** True if the criteria contain MODSEQ (RFC 7162 3.1.5: the response then carries MODSEQ). */
export function searchUsesModSeq(key: SearchKey): boolean {
  switch (key.type) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(searchUsesModSeq);
    case 'or':
      return searchUsesModSeq(key.left) || searchUsesModSeq(key.right);
    case 'not':
      return searchUsesModSeq(key.key);
    default:
      return false;
  }
}
