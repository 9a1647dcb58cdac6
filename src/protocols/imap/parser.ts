/**
 * IMAP command parser: a pure function from one framed command (reader.ts) to a typed Command
 * (types.ts), or an ImapParseError. Grammar only; whether a command is allowed in the current
 * state, or whether an extension was enabled, is the session's business.
 *
 * Covers RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1) commands plus SASL-IR (RFC 4959),
 * LITERAL+ (RFC 7888, framing in reader.ts), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
 * NAMESPACE (RFC 2342), UNSELECT (RFC 3691), UIDPLUS (RFC 4315), MOVE (RFC 6851),
 * SPECIAL-USE / CREATE-SPECIAL-USE (RFC 6154), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
 * STATUS=SIZE (RFC 8438), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONDSTORE / QRESYNC
 * (RFC 7162), QUOTA (RFC 9208), APPENDLIMIT (RFC 7889), BINARY (RFC 3516), UTF8=ACCEPT
 * (RFC 6855), SORT / THREAD (RFC 5256), ESORT (RFC 5267), COMPRESS (RFC 4978),
 * MULTIAPPEND (RFC 3502).
 *
 * Errors: every failure is an ImapParseError. `tag` is set whenever the tag was readable, so the
 * session answers `tag BAD message` (or `* BAD message` without a tag). SEARCH with an unknown
 * charset yields kind NO with code BADCHARSET (RFC 9051 6.4.4).
 */

import { parseSearchCriteria } from '../../lib/imap/search.js';
import { decodeUtf8, ImapCursor, ImapSyntaxError, type RawCommand } from '../../lib/imap/syntax.js';
import { parseFetchArgs } from './parser-fetch.js';
import {
  ParseContext,
  parseAppendArgs,
  parseCreateArgs,
  parseListArgs,
  parseLsubArgs,
  parseSelectArgs,
  parseStatusArgs,
} from './parser-mailbox.js';
import {
  ImapParseError,
  type Command,
  type ParseOptions,
  type SearchReturnOptions,
  type SortCriterion,
  type SortKey,
  type StoreCommand,
  type ThreadAlgorithm,
} from './types.js';

export * from './types.js';
export { fetchResponseName, fetchItemSetsSeen, formatSection } from './parser-fetch.js';
export { mailboxNameProblem } from './parser-mailbox.js';

type ArgParser = (ctx: ParseContext, uid: boolean) => Command;

const noArgs =
  <N extends 'CAPABILITY' | 'NOOP' | 'LOGOUT' | 'STARTTLS' | 'NAMESPACE' | 'IDLE' | 'CHECK' | 'CLOSE' | 'UNSELECT'>(
    name: N,
  ): ArgParser =>
  (ctx) =>
    ({ name, tag: ctx.tag }) as Command;

/**
 * auth-type = atom; initial-resp = base64 / "=" (RFC 9051 section 9, RFC 4959 section 7).
 * base64 = *(4base64-char) [base64-terminal]
 */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseAuthenticate(ctx: ParseContext): Command {
  const cur = ctx.cur;
  cur.sp('SASL mechanism');
  const mechanism = cur.keyword('SASL mechanism');
  let initialResponse: Buffer | null = null;
  if (cur.trySp()) {
    const text = cur.atom('initial response');
    if (text === '=') initialResponse = Buffer.alloc(0);
    else if (BASE64_RE.test(text)) initialResponse = Buffer.from(text, 'base64');
    else cur.error('Invalid base64 in initial response');
  }
  return { name: 'AUTHENTICATE', tag: ctx.tag, mechanism, initialResponse };
}

/** login = "LOGIN" SP userid SP password; both astring. */
function parseLogin(ctx: ParseContext): Command {
  const cur = ctx.cur;
  cur.sp('user name');
  const username = cur.astringText('user name');
  cur.sp('password');
  const password = cur.astringText('password');
  return { name: 'LOGIN', tag: ctx.tag, username, password };
}

/** enable = "ENABLE" 1*(SP capability) (RFC 5161 section 4). */
function parseEnable(ctx: ParseContext): Command {
  const capabilities: string[] = [];
  do {
    ctx.cur.sp('capability');
    capabilities.push(ctx.cur.keyword('capability'));
  } while (!ctx.cur.atEnd());
  return { name: 'ENABLE', tag: ctx.tag, capabilities };
}

/**
 * id = "ID" SP id-params-list; id-params-list = "(" #(string SP nstring) ")" / nil
 * (RFC 2971 section 4). Section 3.3 limits: 30 pairs, 30-octet fields, 1024-octet values.
 */
function parseId(ctx: ParseContext): Command {
  const cur = ctx.cur;
  cur.sp('ID parameters');
  if (cur.atNil()) {
    cur.atom();
    return { name: 'ID', tag: ctx.tag, params: null };
  }
  cur.expectChar(0x28, '"(" or NIL');
  const params: Array<[string, string | null]> = [];
  if (!cur.tryChar(0x29)) {
    do {
      const field = cur.string('ID field');
      if (field.length > 30) cur.error('ID field name too long');
      cur.sp('ID value');
      const value = cur.nstring('ID value');
      if (value && value.length > 1024) cur.error('ID value too long');
      params.push([decodeUtf8(field, 'ID field'), value ? decodeUtf8(value, 'ID value') : null]);
      if (params.length > 30) cur.error('Too many ID parameters');
    } while (cur.trySp());
    cur.expectChar(0x29, '")" closing ID parameters');
  }
  return { name: 'ID', tag: ctx.tag, params };
}

function oneMailbox(name: 'DELETE' | 'SUBSCRIBE' | 'UNSUBSCRIBE' | 'GETQUOTAROOT'): ArgParser {
  return (ctx) => {
    ctx.cur.sp('mailbox name');
    return { name, tag: ctx.tag, mailbox: ctx.mailbox() } as Command;
  };
}

function parseRename(ctx: ParseContext): Command {
  ctx.cur.sp('mailbox name');
  const from = ctx.mailbox();
  ctx.cur.sp('new mailbox name');
  const to = ctx.mailbox('new mailbox name');
  return { name: 'RENAME', tag: ctx.tag, from, to };
}

/** getquota = "GETQUOTA" SP quota-root-name; quota-root-name = astring (RFC 9208 section 7). */
function parseGetQuota(ctx: ParseContext): Command {
  ctx.cur.sp('quota root');
  return { name: 'GETQUOTA', tag: ctx.tag, root: ctx.cur.astringText('quota root') };
}

/**
 * setquota = "SETQUOTA" SP quota-root-name SP setquota-list;
 * setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")";
 * setquota-resource = resource-name SP resource-limit (number64) (RFC 9208 section 7).
 */
function parseSetQuota(ctx: ParseContext): Command {
  const cur = ctx.cur;
  cur.sp('quota root');
  const root = cur.astringText('quota root');
  cur.sp('quota limits');
  cur.expectChar(0x28, '"(" starting quota limits');
  const limits: Array<{ resource: string; limit: number }> = [];
  if (!cur.tryChar(0x29)) {
    do {
      const resource = cur.keyword('resource name');
      if (limits.some((l) => l.resource === resource)) cur.error(`Duplicate resource ${resource}`);
      cur.sp('resource limit');
      limits.push({ resource, limit: cur.number64('resource limit') });
    } while (cur.trySp());
    cur.expectChar(0x29, '")" closing quota limits');
  }
  return { name: 'SETQUOTA', tag: ctx.tag, root, limits };
}

/** compress = "COMPRESS" SP algorithm; algorithm = atom (RFC 4978 section 4). */
function parseCompress(ctx: ParseContext): Command {
  ctx.cur.sp('compression algorithm');
  return { name: 'COMPRESS', tag: ctx.tag, algorithm: ctx.cur.keyword('compression algorithm') };
}

function parseExpunge(ctx: ParseContext, uid: boolean): Command {
  if (!uid) return { name: 'EXPUNGE', tag: ctx.tag, uid: false, uidSet: null };
  // uid-expunge = "UID" SP "EXPUNGE" SP sequence-set (RFC 4315 section 4)
  ctx.cur.sp('UID set');
  return { name: 'EXPUNGE', tag: ctx.tag, uid: true, uidSet: ctx.cur.sequenceSet('UID set') };
}

/** copy / move = "COPY" SP sequence-set SP mailbox (RFC 9051 6.4.7, RFC 6851). */
function copyOrMove(name: 'COPY' | 'MOVE'): ArgParser {
  return (ctx, uid) => {
    ctx.cur.sp('sequence set');
    const sequence = ctx.cur.sequenceSet();
    ctx.cur.sp('mailbox name');
    return { name, tag: ctx.tag, uid, sequence, mailbox: ctx.mailbox() };
  };
}

const STORE_OPS: Record<string, [StoreCommand['operation'], boolean]> = {
  FLAGS: ['replace', false],
  'FLAGS.SILENT': ['replace', true],
  '+FLAGS': ['add', false],
  '+FLAGS.SILENT': ['add', true],
  '-FLAGS': ['remove', false],
  '-FLAGS.SILENT': ['remove', true],
};

/**
 * store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
 * store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"   (RFC 4466 2.5)
 * store-modifier =/ "UNCHANGEDSINCE" SP mod-sequence-valzer           (RFC 7162 section 7)
 * store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
 */
function parseStore(ctx: ParseContext, uid: boolean): Command {
  const cur = ctx.cur;
  cur.sp('sequence set');
  const sequence = cur.sequenceSet();
  cur.sp('store item');
  let unchangedSince: bigint | null = null;
  if (cur.tryChar(0x28)) {
    do {
      const mod = cur.keyword('store modifier');
      if (mod !== 'UNCHANGEDSINCE') cur.error(`Unknown store modifier ${mod}`);
      if (unchangedSince !== null) cur.error('Duplicate UNCHANGEDSINCE');
      cur.sp('mod-sequence');
      unchangedSince = cur.modSeq(false);
    } while (cur.trySp());
    cur.expectChar(0x29, '")" closing store modifiers');
    cur.sp('store item');
  }
  const item = cur.keyword('store item');
  const op = STORE_OPS[item];
  if (!op) cur.error(`Unknown store item ${item}`);
  cur.sp('flags');
  let flags: string[];
  if (cur.peek() === 0x28) {
    flags = cur.flagList();
  } else {
    flags = [cur.flag()];
    while (cur.trySp()) flags.push(cur.flag());
  }
  return { name: 'STORE', tag: ctx.tag, uid, sequence, operation: op[0], silent: op[1], flags, unchangedSince };
}

/**
 * search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
 * search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE" (RFC 4731, RFC 5182, RFC 9051).
 * Called after the SP; returns null when RETURN is absent. `RETURN ()` means ALL (RFC 4731 3.1).
 */
function parseReturnOptions(ctx: ParseContext): SearchReturnOptions | null {
  const cur = ctx.cur;
  if (!cur.tryKeyword('RETURN')) return null;
  cur.sp('return options');
  cur.expectChar(0x28, '"(" starting return options');
  const opts: SearchReturnOptions = { min: false, max: false, all: false, count: false, save: false };
  if (cur.tryChar(0x29)) {
    opts.all = true;
  } else {
    do {
      const o = cur.keyword('return option');
      if (o === 'MIN') opts.min = true;
      else if (o === 'MAX') opts.max = true;
      else if (o === 'ALL') opts.all = true;
      else if (o === 'COUNT') opts.count = true;
      else if (o === 'SAVE') opts.save = true;
      else cur.error(`Unknown return option ${o}`);
    } while (cur.trySp());
    cur.expectChar(0x29, '")" closing return options');
  }
  cur.sp('search criteria');
  return opts;
}

/** charset = atom / quoted (RFC 9051 section 9), upper-cased. */
function parseCharset(ctx: ParseContext): string {
  const cur = ctx.cur;
  const raw = cur.peek() === 0x22 ? decodeUtf8(cur.quoted(), 'charset') : cur.atom('charset');
  return raw.toUpperCase();
}

/** The decoder for a charset; NO [BADCHARSET] if unsupported (RFC 9051 6.4.4). */
function charsetDecoder(ctx: ParseContext, charset: string | null): ((data: Buffer) => string) | undefined {
  if (charset === null || charset === 'UTF-8' || charset === 'US-ASCII' || charset === 'UTF8') return undefined;
  const decoder = ctx.options.charsetDecoder?.(charset);
  if (!decoder) {
    throw new ImapParseError(`Unsupported charset ${charset}`, {
      tag: ctx.tag,
      kind: 'NO',
      code: 'BADCHARSET',
    });
  }
  return decoder;
}

/** search = "SEARCH" [search-return-opts] SP search-program (RFC 9051 section 9). */
function parseSearch(ctx: ParseContext, uid: boolean): Command {
  const cur = ctx.cur;
  cur.sp('search criteria');
  const returnOptions = parseReturnOptions(ctx);
  let charset: string | null = null;
  // search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)
  if (cur.tryKeyword('CHARSET')) {
    cur.sp('charset');
    charset = parseCharset(ctx);
    cur.sp('search criteria');
  }
  const decode = charsetDecoder(ctx, charset);
  const criteria = parseSearchCriteria(cur, { decode, maxDepth: ctx.options.maxSearchDepth });
  return { name: 'SEARCH', tag: ctx.tag, uid, charset, returnOptions, criteria };
}

const SORT_KEYS: ReadonlySet<string> = new Set<SortKey>(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO']);

/**
 * sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria
 * sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"; sort-criterion = ["REVERSE" SP] sort-key
 * search-criteria = charset 1*(SP search-key)                    (RFC 5256 section 5, RFC 5267 3)
 */
function parseSort(ctx: ParseContext, uid: boolean): Command {
  const cur = ctx.cur;
  cur.sp('sort criteria');
  const returnOptions = parseReturnOptions(ctx);
  cur.expectChar(0x28, '"(" starting sort criteria');
  const criteria: SortCriterion[] = [];
  do {
    let key = cur.keyword('sort key');
    let reverse = false;
    if (key === 'REVERSE') {
      reverse = true;
      cur.sp('sort key');
      key = cur.keyword('sort key');
    }
    if (!SORT_KEYS.has(key)) cur.error(`Unknown sort key ${key}`);
    criteria.push({ key: key as SortKey, reverse });
  } while (cur.trySp());
  cur.expectChar(0x29, '")" closing sort criteria');
  cur.sp('charset');
  const charset = parseCharset(ctx);
  cur.sp('search criteria');
  const search = parseSearchCriteria(cur, {
    decode: charsetDecoder(ctx, charset),
    maxDepth: ctx.options.maxSearchDepth,
  });
  return { name: 'SORT', tag: ctx.tag, uid, criteria, charset, returnOptions, search };
}

/** thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256 section 5). */
function parseThread(ctx: ParseContext, uid: boolean): Command {
  const cur = ctx.cur;
  cur.sp('thread algorithm');
  const alg = cur.keyword('thread algorithm');
  if (alg !== 'REFERENCES' && alg !== 'ORDEREDSUBJECT') cur.error(`Unsupported thread algorithm ${alg}`);
  const algorithm = alg as ThreadAlgorithm;
  cur.sp('charset');
  const charset = parseCharset(ctx);
  cur.sp('search criteria');
  const search = parseSearchCriteria(cur, {
    decode: charsetDecoder(ctx, charset),
    maxDepth: ctx.options.maxSearchDepth,
  });
  return { name: 'THREAD', tag: ctx.tag, uid, algorithm, charset, search };
}

/** One table: command name -> argument parser (the session keeps its own state table). */
const PARSERS: ReadonlyMap<string, ArgParser> = new Map<string, ArgParser>([
  ['CAPABILITY', noArgs('CAPABILITY')],
  ['NOOP', noArgs('NOOP')],
  ['LOGOUT', noArgs('LOGOUT')],
  ['STARTTLS', noArgs('STARTTLS')],
  ['NAMESPACE', noArgs('NAMESPACE')],
  ['IDLE', noArgs('IDLE')],
  ['CHECK', noArgs('CHECK')],
  ['CLOSE', noArgs('CLOSE')],
  ['UNSELECT', noArgs('UNSELECT')],
  ['ID', parseId],
  ['AUTHENTICATE', parseAuthenticate],
  ['LOGIN', parseLogin],
  ['ENABLE', parseEnable],
  ['SELECT', (ctx) => parseSelectArgs(ctx, 'SELECT')],
  ['EXAMINE', (ctx) => parseSelectArgs(ctx, 'EXAMINE')],
  ['CREATE', parseCreateArgs],
  ['DELETE', oneMailbox('DELETE')],
  ['RENAME', parseRename],
  ['SUBSCRIBE', oneMailbox('SUBSCRIBE')],
  ['UNSUBSCRIBE', oneMailbox('UNSUBSCRIBE')],
  ['LIST', parseListArgs],
  ['LSUB', parseLsubArgs],
  ['STATUS', parseStatusArgs],
  ['APPEND', parseAppendArgs],
  ['GETQUOTA', parseGetQuota],
  ['GETQUOTAROOT', oneMailbox('GETQUOTAROOT')],
  ['SETQUOTA', parseSetQuota],
  ['COMPRESS', parseCompress],
  ['EXPUNGE', parseExpunge],
  ['SEARCH', parseSearch],
  ['FETCH', (ctx, uid) => parseFetchArgs(ctx.cur, ctx.tag, uid)],
  ['STORE', parseStore],
  ['COPY', copyOrMove('COPY')],
  ['MOVE', copyOrMove('MOVE')],
  ['SORT', parseSort],
  ['THREAD', parseThread],
]);

/** Commands that take the UID prefix (RFC 9051 6.4.9, RFC 4315, RFC 6851, RFC 5256). */
const UID_COMMANDS: ReadonlySet<string> = new Set(['COPY', 'MOVE', 'FETCH', 'SEARCH', 'STORE', 'EXPUNGE', 'SORT', 'THREAD']);

/** All command names this parser knows (for CAPABILITY-independent checks and tests). */
export const KNOWN_COMMANDS: readonly string[] = [...PARSERS.keys()];

/**
 * Parse one framed command. Throws ImapParseError only.
 * command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
 * (RFC 9051 section 9; the CRLF was removed by the reader).
 */
export function parseCommand(raw: RawCommand, options: ParseOptions = {}): Command {
  let cur: ImapCursor;
  try {
    cur = new ImapCursor(raw);
  } catch (e) {
    throw new ImapParseError(e instanceof Error ? e.message : 'Malformed command');
  }
  if (cur.atEnd()) throw new ImapParseError('Empty command line');

  // tag = 1*<any ASTRING-CHAR except "+">; it must be followed by SP to count as a tag.
  let tag: string;
  try {
    tag = cur.tag();
  } catch {
    throw new ImapParseError('Invalid tag');
  }
  if (cur.atEnd()) throw new ImapParseError('Missing command', { tag });
  if (!cur.trySp()) throw new ImapParseError('Invalid tag');

  let name: string | undefined;
  try {
    name = cur.keyword('command name');
    let uid = false;
    if (name === 'UID') {
      cur.sp('UID command');
      const sub = cur.keyword('UID command');
      if (!UID_COMMANDS.has(sub)) {
        name = `UID ${sub}`;
        cur.error(`Unknown UID command ${sub}`);
      }
      name = sub;
      uid = true;
    }
    const parser = PARSERS.get(name);
    if (!parser) cur.error(`Unknown command ${name.length > 32 ? name.slice(0, 32) + '...' : name}`);
    const command = parser(new ParseContext(cur, tag, options), uid);
    cur.expectEnd();
    return command;
  } catch (e) {
    if (e instanceof ImapSyntaxError) throw new ImapParseError(e.message, { tag, command: name });
    if (e instanceof ImapParseError) {
      throw new ImapParseError(e.message, { tag, command: name, kind: e.kind, code: e.code });
    }
    throw e;
  }
}
