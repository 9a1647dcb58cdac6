/**
 * Typed IMAP commands: what parseCommand returns (RFC 9051 section 6, RFC 3501 section 6, and
 * the extensions listed in parser.ts). One variant per command, discriminated by `name`; UID
 * forms keep the command's name and set `uid: true` (RFC 9051 6.4.9).
 *
 * Values are fully parsed: mailbox names are JS strings (INBOX upper-cased, RFC 9051 5.1;
 * modified UTF-7 decoded when ParseOptions.utf7Mailboxes is set), system flags canonical case,
 * keywords as written, options upper-cased, mod-sequences bigint (63-bit, RFC 7162).
 */

import type { NumberRanges, SequenceSet } from '../../lib/imap/sequence-set.js';
import type { SearchKey } from '../../lib/imap/search.js';
import type { ImapDateTime } from '../../lib/imap/syntax.js';

export type { NumberRanges, SequenceSet, SeqRange, SeqNumber } from '../../lib/imap/sequence-set.js';
export type { SearchKey, ModSeqEntry, SystemSearchFlag } from '../../lib/imap/search.js';
export type { ImapDate, ImapDateTime, RawCommand, CommandLiteral } from '../../lib/imap/syntax.js';

interface Base {
  tag: string;
}

// ---- Any state (RFC 9051 6.1) ----
export interface CapabilityCommand extends Base {
  name: 'CAPABILITY';
}
export interface NoopCommand extends Base {
  name: 'NOOP';
}
export interface LogoutCommand extends Base {
  name: 'LOGOUT';
}
/** RFC 2971 ID: null for `ID NIL`; field names keep their case (they compare case-insensitively). */
export interface IdCommand extends Base {
  name: 'ID';
  params: Array<[field: string, value: string | null]> | null;
}

// ---- Not authenticated (RFC 9051 6.2) ----
export interface StartTlsCommand extends Base {
  name: 'STARTTLS';
}
/** RFC 9051 6.2.2 with SASL-IR (RFC 4959): initialResponse is decoded; `=` gives an empty Buffer. */
export interface AuthenticateCommand extends Base {
  name: 'AUTHENTICATE';
  mechanism: string;
  initialResponse: Buffer | null;
}
export interface LoginCommand extends Base {
  name: 'LOGIN';
  username: string;
  password: string;
}

// ---- Authenticated (RFC 9051 6.3) ----
/** RFC 5161. Capability names upper-cased. */
export interface EnableCommand extends Base {
  name: 'ENABLE';
  capabilities: string[];
}

/** RFC 7162 section 3.2.5: QRESYNC select parameter. */
export interface QresyncParams {
  uidValidity: number;
  modSeq: bigint;
  /** known-uids; `*` and `$` are refused. */
  knownUids: NumberRanges | null;
  /** seq-match-data: message numbers and the UIDs the client believes they have, in order. */
  seqMatch: { seqs: NumberRanges; uids: NumberRanges } | null;
}

export interface SelectCommand extends Base {
  name: 'SELECT' | 'EXAMINE';
  mailbox: string;
  /** (CONDSTORE) select parameter, RFC 7162 3.1.8. */
  condstore: boolean;
  qresync: QresyncParams | null;
}

/** RFC 9051 6.3.4 with CREATE-SPECIAL-USE (RFC 6154 section 3): `(USE (\Drafts))`. */
export interface CreateCommand extends Base {
  name: 'CREATE';
  mailbox: string;
  /** Attributes from USE, canonical case for the RFC 6154 ones; [] when absent. */
  specialUse: string[];
}
export interface DeleteCommand extends Base {
  name: 'DELETE';
  mailbox: string;
}
export interface RenameCommand extends Base {
  name: 'RENAME';
  from: string;
  to: string;
}
export interface SubscribeCommand extends Base {
  name: 'SUBSCRIBE' | 'UNSUBSCRIBE';
  mailbox: string;
}

export type StatusItem =
  | 'MESSAGES'
  | 'UIDNEXT'
  | 'UIDVALIDITY'
  | 'UNSEEN'
  | 'DELETED'
  | 'SIZE'
  | 'RECENT'
  | 'HIGHESTMODSEQ'
  | 'APPENDLIMIT';

/** LIST selection options (RFC 5258 section 3.1, RFC 6154 section 5.1 SPECIAL-USE). */
export interface ListSelectOptions {
  subscribed: boolean;
  remote: boolean;
  recursiveMatch: boolean;
  specialUse: boolean;
}
/** LIST return options (RFC 5258 3.2, RFC 5819 LIST-STATUS, RFC 6154 5.2). */
export interface ListReturnOptions {
  subscribed: boolean;
  children: boolean;
  specialUse: boolean;
  /** RETURN (STATUS (...)): the items, or null when not requested. */
  status: StatusItem[] | null;
}
/** RFC 9051 6.3.9 / RFC 5258. */
export interface ListCommand extends Base {
  name: 'LIST';
  reference: string;
  /** One pattern, or several with the `(p1 p2)` form (RFC 5258 section 3). */
  patterns: string[];
  selectOptions: ListSelectOptions;
  returnOptions: ListReturnOptions;
  /**
   * True for the extended syntax (selection options, a pattern list or return options given,
   * RFC 5258 section 3): replies then follow extended-LIST rules (e.g. CHILDINFO).
   */
  extended: boolean;
}
/** RFC 3501 6.3.9 (deprecated by RFC 9051 but still used). */
export interface LsubCommand extends Base {
  name: 'LSUB';
  reference: string;
  pattern: string;
}
export interface NamespaceCommand extends Base {
  name: 'NAMESPACE';
}
export interface StatusCommand extends Base {
  name: 'STATUS';
  mailbox: string;
  items: StatusItem[];
}

/** One message of APPEND (RFC 9051 6.3.12; MULTIAPPEND RFC 3502; BINARY RFC 3516; UTF8 RFC 6855). */
export interface AppendMessage {
  /** Flags to set; [] when none were given. */
  flags: string[];
  internalDate: ImapDateTime | null;
  data: Buffer;
  /** Sent as literal8 `~{n}` (RFC 3516 section 4.4: may hold binary content). */
  binary: boolean;
  /** Sent as `UTF8 (literal8)` (RFC 6855 section 4): a message with UTF-8 headers. */
  utf8: boolean;
}
export interface AppendCommand extends Base {
  name: 'APPEND';
  mailbox: string;
  messages: AppendMessage[];
}
export interface IdleCommand extends Base {
  name: 'IDLE';
}
/** RFC 9208. Resource names upper-cased. */
export interface GetQuotaCommand extends Base {
  name: 'GETQUOTA';
  root: string;
}
export interface GetQuotaRootCommand extends Base {
  name: 'GETQUOTAROOT';
  mailbox: string;
}
export interface SetQuotaCommand extends Base {
  name: 'SETQUOTA';
  root: string;
  limits: Array<{ resource: string; limit: number }>;
}
/** RFC 4978. Algorithm upper-cased (only DEFLATE is defined). */
export interface CompressCommand extends Base {
  name: 'COMPRESS';
  algorithm: string;
}

// ---- Selected (RFC 9051 6.4) ----
export interface CheckCommand extends Base {
  name: 'CHECK';
}
export interface CloseCommand extends Base {
  name: 'CLOSE';
}
export interface UnselectCommand extends Base {
  name: 'UNSELECT';
}
/** EXPUNGE, or UID EXPUNGE sequence-set (RFC 4315 section 2.1, RFC 9051 6.4.9). */
export interface ExpungeCommand extends Base {
  name: 'EXPUNGE';
  uid: boolean;
  /** Present exactly when uid is true. */
  uidSet: SequenceSet | null;
}

/** RETURN options of ESEARCH / ESORT (RFC 4731 3.1, RFC 5182 SAVE, RFC 5267). */
export interface SearchReturnOptions {
  min: boolean;
  max: boolean;
  all: boolean;
  count: boolean;
  save: boolean;
}
export interface SearchCommand extends Base {
  name: 'SEARCH';
  uid: boolean;
  /** Upper-cased CHARSET argument, or null. Strings in `criteria` are already decoded. */
  charset: string | null;
  /**
   * null when no RETURN was given (IMAP4rev1 SEARCH response; IMAP4rev2 answers ESEARCH with
   * ALL, RFC 9051 6.4.4). `RETURN ()` is reported as `{all: true}` (RFC 4731 3.1).
   */
  returnOptions: SearchReturnOptions | null;
  criteria: SearchKey;
}

export type FetchMacro = 'ALL' | 'FAST' | 'FULL';

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

/** A body section (RFC 9051 6.4.5 `section-spec`); `BODY[]` is `{part: [], text: null}`. */
export interface Section {
  /** Part numbers, e.g. [1, 2] for `1.2`; [] for the whole message. */
  part: number[];
  text: SectionText | null;
  /** Field names of HEADER.FIELDS(.NOT), as written by the client; null otherwise. */
  fields: string[] | null;
}

/** `<offset.length>` (RFC 9051 6.4.5); the response names only `<offset>`. */
export interface PartialRange {
  offset: number;
  length: number;
}

export type FetchItem =
  | { type: 'ENVELOPE' }
  | { type: 'FLAGS' }
  | { type: 'INTERNALDATE' }
  | { type: 'RFC822.SIZE' }
  /** RFC 3501 only: RFC822 = BODY[] (sets \Seen), RFC822.HEADER = BODY.PEEK[HEADER], RFC822.TEXT = BODY[TEXT]. */
  | { type: 'RFC822' }
  | { type: 'RFC822.HEADER' }
  | { type: 'RFC822.TEXT' }
  /** BODY without a section: BODYSTRUCTURE without extension data. */
  | { type: 'BODY' }
  | { type: 'BODYSTRUCTURE' }
  | { type: 'UID' }
  /** RFC 7162 3.1.4.1 */
  | { type: 'MODSEQ' }
  /** BODY[section]<partial> and BODY.PEEK[...] */
  | { type: 'BODY[]'; peek: boolean; section: Section; partial: PartialRange | null }
  /** BINARY[part]<partial> and BINARY.PEEK[...] (RFC 3516, RFC 9051 6.4.5) */
  | { type: 'BINARY[]'; peek: boolean; part: number[]; partial: PartialRange | null }
  /** BINARY.SIZE[part] */
  | { type: 'BINARY.SIZE[]'; part: number[] };

export interface FetchCommand extends Base {
  name: 'FETCH';
  uid: boolean;
  sequence: SequenceSet;
  /** In the order given; macros expanded (RFC 9051 6.4.5). */
  items: FetchItem[];
  macro: FetchMacro | null;
  /** CHANGEDSINCE fetch modifier (RFC 7162 3.1.4.1). */
  changedSince: bigint | null;
  /** VANISHED fetch modifier (RFC 7162 3.2.6); only with UID FETCH and CHANGEDSINCE. */
  vanished: boolean;
}

export interface StoreCommand extends Base {
  name: 'STORE';
  uid: boolean;
  sequence: SequenceSet;
  /** FLAGS = replace, +FLAGS = add, -FLAGS = remove (RFC 9051 6.4.6). */
  operation: 'replace' | 'add' | 'remove';
  silent: boolean;
  flags: string[];
  /** UNCHANGEDSINCE store modifier (RFC 7162 3.1.3). */
  unchangedSince: bigint | null;
}
export interface CopyCommand extends Base {
  name: 'COPY' | 'MOVE';
  uid: boolean;
  sequence: SequenceSet;
  mailbox: string;
}

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO';
export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}
/** RFC 5256 SORT, RFC 5267 ESORT (RETURN). */
export interface SortCommand extends Base {
  name: 'SORT';
  uid: boolean;
  criteria: SortCriterion[];
  charset: string;
  returnOptions: SearchReturnOptions | null;
  search: SearchKey;
}
export type ThreadAlgorithm = 'REFERENCES' | 'ORDEREDSUBJECT';
/** RFC 5256 THREAD. */
export interface ThreadCommand extends Base {
  name: 'THREAD';
  uid: boolean;
  algorithm: ThreadAlgorithm;
  charset: string;
  search: SearchKey;
}

export type Command =
  | CapabilityCommand
  | NoopCommand
  | LogoutCommand
  | IdCommand
  | StartTlsCommand
  | AuthenticateCommand
  | LoginCommand
  | EnableCommand
  | SelectCommand
  | CreateCommand
  | DeleteCommand
  | RenameCommand
  | SubscribeCommand
  | ListCommand
  | LsubCommand
  | NamespaceCommand
  | StatusCommand
  | AppendCommand
  | IdleCommand
  | GetQuotaCommand
  | GetQuotaRootCommand
  | SetQuotaCommand
  | CompressCommand
  | CheckCommand
  | CloseCommand
  | UnselectCommand
  | ExpungeCommand
  | SearchCommand
  | FetchCommand
  | StoreCommand
  | CopyCommand
  | SortCommand
  | ThreadCommand;

export type CommandName = Command['name'];

export interface ParseOptions {
  /**
   * Mailbox names and LIST patterns are modified UTF-7 (an IMAP4rev1 client that has not
   * enabled UTF8=ACCEPT or IMAP4rev2, RFC 9051 appendix E / RFC 6855 section 3): decode them,
   * refusing invalid mUTF-7 with BAD.
   */
  utf7Mailboxes?: boolean;
  /**
   * Decoder for a SEARCH/SORT/THREAD charset other than UTF-8 and US-ASCII (which are built
   * in). Return null if unsupported: the command then fails with NO [BADCHARSET]
   * (RFC 9051 6.4.4).
   */
  charsetDecoder?: (charset: string) => ((data: Buffer) => string) | null;
  /** Maximum NOT / OR / parenthesis nesting in search criteria. */
  maxSearchDepth?: number;
}

/**
 * A command the server cannot accept for reasons of syntax (kind BAD) or, in a few cases the
 * RFCs define, a NO with a response code decided at parse time (BADCHARSET).
 * `tag` is undefined when the tag itself could not be read: answer `* BAD`.
 */
export class ImapParseError extends Error {
  readonly tag: string | undefined;
  /** Upper-cased command name when it was recognised (for logs). */
  readonly command: string | undefined;
  readonly kind: 'BAD' | 'NO';
  /** Response code without brackets, e.g. 'BADCHARSET' or 'TOOBIG'. */
  readonly code: string | undefined;

  constructor(
    message: string,
    options: { tag?: string; command?: string; kind?: 'BAD' | 'NO'; code?: string } = {},
  ) {
    super(message);
    this.name = 'ImapParseError';
    this.tag = options.tag;
    this.command = options.command;
    this.kind = options.kind ?? 'BAD';
    this.code = options.code;
  }
}
