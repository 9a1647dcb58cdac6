/**
 * Mailbox-level command arguments: SELECT/EXAMINE (RFC 9051 6.3.2-3, RFC 7162 CONDSTORE and
 * QRESYNC), CREATE (RFC 6154 USE), LIST (RFC 9051 6.3.9, RFC 5258, RFC 5819, RFC 6154),
 * LSUB (RFC 3501 6.3.9), STATUS (RFC 9051 6.3.11, RFC 7162, RFC 8438 SIZE, RFC 7889
 * APPENDLIMIT), APPEND (RFC 9051 6.3.12, RFC 3502 MULTIAPPEND, RFC 3516, RFC 6855 UTF8).
 */

import { resolveSequenceSet } from '../../lib/imap/sequence-set.js';
import { CHAR, decodeUtf8, ImapCursor } from '../../lib/imap/syntax.js';
import { decodeUtf7, Utf7Error } from '../../lib/imap/utf7.js';
import type {
  AppendCommand,
  AppendMessage,
  CreateCommand,
  ListCommand,
  ListReturnOptions,
  ListSelectOptions,
  LsubCommand,
  NumberRanges,
  ParseOptions,
  QresyncParams,
  SelectCommand,
  StatusCommand,
  StatusItem,
} from './types.js';

/** What every argument parser gets: the cursor, the tag and the session's parse options. */
export class ParseContext {
  constructor(
    readonly cur: ImapCursor,
    readonly tag: string,
    readonly options: ParseOptions,
  ) {}

  /** Decode a mailbox-ish name (UTF-8, or modified UTF-7 in rev1 mode). */
  private decodeName(data: Buffer, what: string): string {
    const text = decodeUtf8(data, what);
    if (!this.options.utf7Mailboxes) return text;
    try {
      return decodeUtf7(text);
    } catch (e) {
      if (e instanceof Utf7Error) this.cur.error(`Invalid ${what}: ${e.message}`);
      throw e;
    }
  }

  /** mailbox = "INBOX" / astring; INBOX is case-insensitive (RFC 9051 section 5.1 and 9). */
  mailbox(what = 'mailbox name'): string {
    const name = this.decodeName(this.cur.astring(what), what);
    return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
  }

  /** A LIST/LSUB reference name: a `mailbox` that is not INBOX-folded (it is a prefix). */
  reference(): string {
    return this.decodeName(this.cur.astring('reference name'), 'reference name');
  }

  /** list-mailbox = 1*list-char / string. */
  pattern(): string {
    return this.decodeName(this.cur.listMailbox(), 'mailbox pattern');
  }
}

function numberRanges(ctx: ParseContext, what: string): NumberRanges {
  const set = ctx.cur.sequenceSet(what);
  if (set.saved || set.ranges.some((r) => r.start === '*' || r.end === '*')) {
    ctx.cur.error(`"*" and "$" are not allowed in ${what}`);
  }
  return resolveSequenceSet(set, { star: 0 });
}

/**
 * "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
 * seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 section 7)
 */
function parseQresync(ctx: ParseContext): QresyncParams {
  const cur = ctx.cur;
  cur.expectChar(CHAR.LPAREN, '"(" starting QRESYNC parameters');
  const uidValidity = cur.nzNumber('UIDVALIDITY');
  cur.sp('mod-sequence');
  const modSeq = cur.modSeq(true);
  let knownUids: NumberRanges | null = null;
  let seqMatch: QresyncParams['seqMatch'] = null;
  let more = cur.trySp();
  if (more && cur.peek() !== CHAR.LPAREN) {
    knownUids = numberRanges(ctx, 'known UIDs');
    more = cur.trySp();
  }
  if (more) {
    cur.expectChar(CHAR.LPAREN, '"(" starting sequence match data');
    const seqs = numberRanges(ctx, 'known sequence set');
    cur.sp('known UID set');
    const uids = numberRanges(ctx, 'known UID set');
    cur.expectChar(CHAR.RPAREN, '")" closing sequence match data');
    seqMatch = { seqs, uids };
  }
  cur.expectChar(CHAR.RPAREN, '")" closing QRESYNC parameters');
  return { uidValidity, modSeq, knownUids, seqMatch };
}

/** select / examine = "SELECT" SP mailbox [select-params] (RFC 4466 2.1; RFC 7162). */
export function parseSelectArgs(ctx: ParseContext, name: 'SELECT' | 'EXAMINE'): SelectCommand {
  const cur = ctx.cur;
  cur.sp('mailbox name');
  const mailbox = ctx.mailbox();
  let condstore = false;
  let qresync: QresyncParams | null = null;
  if (cur.trySp()) {
    cur.expectChar(CHAR.LPAREN, '"(" starting select parameters');
    const seen = new Set<string>();
    do {
      const param = cur.keyword('select parameter');
      if (seen.has(param)) cur.error(`Duplicate select parameter ${param}`);
      seen.add(param);
      if (param === 'CONDSTORE') condstore = true;
      else if (param === 'QRESYNC') {
        cur.sp('QRESYNC parameters');
        qresync = parseQresync(ctx);
      } else cur.error(`Unknown select parameter ${param}`);
    } while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing select parameters');
  }
  return { name, tag: ctx.tag, mailbox, condstore, qresync };
}

const SPECIAL_USE = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important'];
const SPECIAL_USE_BY_UPPER = new Map(SPECIAL_USE.map((a) => [a.toUpperCase(), a]));

/** create = "CREATE" SP mailbox [create-params]; create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")" (RFC 6154 6). */
export function parseCreateArgs(ctx: ParseContext): CreateCommand {
  const cur = ctx.cur;
  cur.sp('mailbox name');
  const mailbox = ctx.mailbox();
  const specialUse: string[] = [];
  if (cur.trySp()) {
    cur.expectChar(CHAR.LPAREN, '"(" starting create parameters');
    let sawUse = false;
    do {
      const param = cur.keyword('create parameter');
      if (param !== 'USE') cur.error(`Unknown create parameter ${param}`);
      if (sawUse) cur.error('Duplicate USE parameter');
      sawUse = true;
      cur.sp('USE attributes');
      cur.expectChar(CHAR.LPAREN, '"(" starting USE attributes');
      if (!cur.tryChar(CHAR.RPAREN)) {
        do {
          // use-attr = "\All" / ... / use-attr-ext; use-attr-ext = "\" atom
          cur.expectChar(CHAR.BACKSLASH, '"\\" starting a special-use attribute');
          const attr = '\\' + cur.atom('special-use attribute');
          specialUse.push(SPECIAL_USE_BY_UPPER.get(attr.toUpperCase()) ?? attr);
        } while (cur.trySp());
        cur.expectChar(CHAR.RPAREN, '")" closing USE attributes');
      }
    } while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing create parameters');
  }
  return { name: 'CREATE', tag: ctx.tag, mailbox, specialUse };
}

const STATUS_ITEMS: ReadonlySet<string> = new Set<StatusItem>([
  'MESSAGES',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'DELETED',
  'SIZE',
  'RECENT',
  'HIGHESTMODSEQ',
  'APPENDLIMIT',
]);

/** "(" status-att *(SP status-att) ")" */
function parseStatusAtts(ctx: ParseContext): StatusItem[] {
  const cur = ctx.cur;
  cur.expectChar(CHAR.LPAREN, '"(" starting status items');
  const items: StatusItem[] = [];
  do {
    const item = cur.keyword('status item');
    if (!STATUS_ITEMS.has(item)) cur.error(`Unknown status item ${item}`);
    if (!items.includes(item as StatusItem)) items.push(item as StatusItem);
  } while (cur.trySp());
  cur.expectChar(CHAR.RPAREN, '")" closing status items');
  return items;
}

/** status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")" */
export function parseStatusArgs(ctx: ParseContext): StatusCommand {
  ctx.cur.sp('mailbox name');
  const mailbox = ctx.mailbox();
  ctx.cur.sp('status items');
  return { name: 'STATUS', tag: ctx.tag, mailbox, items: parseStatusAtts(ctx) };
}

/**
 * list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
 * (RFC 9051 section 9 / RFC 5258 section 6). Unknown options are refused with BAD
 * (RFC 5258 section 3), as is RECURSIVEMATCH without a base option (RFC 5258 3.1).
 */
export function parseListArgs(ctx: ParseContext): ListCommand {
  const cur = ctx.cur;
  const selectOptions: ListSelectOptions = { subscribed: false, remote: false, recursiveMatch: false, specialUse: false };
  const returnOptions: ListReturnOptions = { subscribed: false, children: false, specialUse: false, status: null };
  let extended = false;
  cur.sp('reference name');
  if (cur.tryChar(CHAR.LPAREN)) {
    extended = true;
    if (!cur.tryChar(CHAR.RPAREN)) {
      do {
        const opt = cur.keyword('selection option');
        if (opt === 'SUBSCRIBED') selectOptions.subscribed = true;
        else if (opt === 'REMOTE') selectOptions.remote = true;
        else if (opt === 'RECURSIVEMATCH') selectOptions.recursiveMatch = true;
        else if (opt === 'SPECIAL-USE') selectOptions.specialUse = true;
        else cur.error(`Unknown LIST selection option ${opt}`);
      } while (cur.trySp());
      cur.expectChar(CHAR.RPAREN, '")" closing selection options');
    }
    if (selectOptions.recursiveMatch && !selectOptions.subscribed && !selectOptions.specialUse) {
      cur.error('RECURSIVEMATCH requires another selection option');
    }
    cur.sp('reference name');
  }
  const reference = ctx.reference();
  cur.sp('mailbox pattern');
  const patterns: string[] = [];
  if (cur.tryChar(CHAR.LPAREN)) {
    extended = true;
    do patterns.push(ctx.pattern());
    while (cur.trySp());
    cur.expectChar(CHAR.RPAREN, '")" closing pattern list');
  } else {
    patterns.push(ctx.pattern());
  }
  if (cur.trySp()) {
    extended = true;
    if (!cur.tryKeyword('RETURN')) cur.error('Expected RETURN');
    cur.sp('return options');
    cur.expectChar(CHAR.LPAREN, '"(" starting return options');
    if (!cur.tryChar(CHAR.RPAREN)) {
      do {
        const opt = cur.keyword('return option');
        if (opt === 'SUBSCRIBED') returnOptions.subscribed = true;
        else if (opt === 'CHILDREN') returnOptions.children = true;
        else if (opt === 'SPECIAL-USE') returnOptions.specialUse = true;
        else if (opt === 'STATUS') {
          // RFC 5819: "STATUS" SP "(" status-att *(SP status-att) ")"
          if (returnOptions.status) cur.error('Duplicate STATUS return option');
          cur.sp('status items');
          returnOptions.status = parseStatusAtts(ctx);
        } else cur.error(`Unknown LIST return option ${opt}`);
      } while (cur.trySp());
      cur.expectChar(CHAR.RPAREN, '")" closing return options');
    }
  }
  return { name: 'LIST', tag: ctx.tag, reference, patterns, selectOptions, returnOptions, extended };
}

/** lsub = "LSUB" SP mailbox SP list-mailbox (RFC 3501 section 9) */
export function parseLsubArgs(ctx: ParseContext): LsubCommand {
  ctx.cur.sp('reference name');
  const reference = ctx.reference();
  ctx.cur.sp('mailbox pattern');
  return { name: 'LSUB', tag: ctx.tag, reference, pattern: ctx.pattern() };
}

/**
 * append = "APPEND" SP mailbox 1*append-message                    (RFC 3502 MULTIAPPEND)
 * append-message = append-opts SP append-data
 * append-opts = [SP flag-list] [SP date-time] *(SP append-ext)      (RFC 4466: none known here)
 * append-data = literal / literal8 / "UTF8" SP "(" literal8 ")"     (RFC 3516, RFC 6855 4)
 * The message must be a literal (RFC 9051 6.3.12), never a quoted string.
 */
export function parseAppendArgs(ctx: ParseContext): AppendCommand {
  const cur = ctx.cur;
  cur.sp('mailbox name');
  const mailbox = ctx.mailbox();
  const messages: AppendMessage[] = [];
  do {
    cur.sp('message literal');
    let flags: string[] = [];
    let internalDate: AppendMessage['internalDate'] = null;
    if (cur.peek() === CHAR.LPAREN) {
      flags = cur.flagList();
      cur.sp('message literal');
    }
    if (cur.peek() === CHAR.DQUOTE) {
      const mark = cur.mark();
      try {
        internalDate = cur.dateTime();
      } catch (e) {
        // A quoted string ending the command is a message sent without a literal.
        cur.reset(mark);
        cur.quoted();
        if (cur.atEnd()) cur.error('Message must be sent as a literal');
        throw e;
      }
      cur.sp('message literal');
    }
    let utf8 = false;
    if (cur.tryKeyword('UTF8')) {
      utf8 = true;
      cur.sp('"(" before UTF8 literal');
      cur.expectChar(CHAR.LPAREN, '"(" before UTF8 literal');
    }
    if (!cur.atLiteral()) {
      if (utf8) cur.error('Expected literal8 after UTF8 (');
      cur.error('Expected message literal');
    }
    const lit = cur.literal(true);
    if (utf8) cur.expectChar(CHAR.RPAREN, '")" after UTF8 literal');
    messages.push({ flags, internalDate, data: lit.data, binary: lit.binary, utf8 });
  } while (!cur.atEnd());
  return { name: 'APPEND', tag: ctx.tag, mailbox, messages };
}

/**
 * Why a mailbox name may not be created (CREATE, RENAME target), or null. The grammar accepts
 * any string, but RFC 9051 section 5.1 requires Net-Unicode names (RFC 5198 section 2) without
 * control characters (U+0000-U+001F, U+007F-U+009F) or the line/paragraph separators
 * U+2028/U+2029. Whether to answer NO or BAD is the session's choice.
 */
export function mailboxNameProblem(name: string): string | null {
  if (name === '') return 'Empty mailbox name';
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return 'Control character in mailbox name';
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(name)) {
    return 'Invalid character in mailbox name';
  }
  return null;
}
