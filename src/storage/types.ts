/**
 * Storage interfaces: the only storage module core and protocols may import.
 *
 * Backends (storage/sqlite now, storage/postgres later) implement these; a conformance suite runs against each.
 * Invariants every backend keeps:
 *  - UIDs in a mailbox are strictly increasing and never reused; UIDVALIDITY never changes for a mailbox id.
 *  - MODSEQ per mailbox is strictly increasing; every flag change, append and expunge takes a new one (RFC 7162).
 *  - A message row references an immutable blob; the blob is durable (fsynced) before the row commits.
 *  - Account used_bytes equals the sum of its messages' sizes, maintained in the same transaction.
 *  - All methods are async so a networked backend fits; callers must not assume synchronous completion.
 */

export interface Domain {
  name: string;
  created: number;
}

export interface Account {
  id: number;
  address: string;
  domain: string;
  passwordHash: string;
  /** 0 = unlimited. */
  quotaBytes: number;
  usedBytes: number;
  messageCount: number;
  created: number;
  updated: number;
}

export interface Alias {
  /** "user@domain", or "@domain" for a catch-all. */
  source: string;
  /** A local or external address. */
  target: string;
}

export type SpecialUse = '\\Inbox' | '\\Drafts' | '\\Sent' | '\\Junk' | '\\Trash' | '\\Archive' | '\\All' | '\\Flagged';

export interface Mailbox {
  id: number;
  accountId: number;
  /** Full hierarchical name with "/" as separator, UTF-8 (INBOX is always "INBOX"). */
  name: string;
  specialUse: SpecialUse | null;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  subscribed: boolean;
  messageCount: number;
  unseenCount: number;
  totalSize: number;
  /** The first UID not yet claimed as \Recent (RFC 3501 2.3.2) when the row was read; lets SELECT claim without reading it again. */
  firstRecentUid?: number;
}

/** System flags as a bitmask: cheap to store, index and compare for 100,000-message mailboxes. */
export const Flag = {
  Seen: 1,
  Answered: 2,
  Flagged: 4,
  Deleted: 8,
  Draft: 16,
} as const;

export const FLAG_NAMES: [number, string][] = [
  [Flag.Seen, '\\Seen'],
  [Flag.Answered, '\\Answered'],
  [Flag.Flagged, '\\Flagged'],
  [Flag.Deleted, '\\Deleted'],
  [Flag.Draft, '\\Draft'],
];

export interface MessageMeta {
  id: number;
  mailboxId: number;
  uid: number;
  modseq: number;
  flags: number;
  keywords: string[];
  /** Milliseconds since the epoch (IMAP INTERNALDATE). */
  internalDate: number;
  /** Octets of prefix + blob (RFC822.SIZE). */
  size: number;
  blobId: string;
  /** Header lines the server prepended at receipt (Received, later Authentication-Results). */
  prefixLength: number;
}

/** A new message for one mailbox; blob already durable in the blob store. */
export interface NewMessage {
  mailboxId: number;
  blobId: string;
  blobSize: number;
  prefix: Buffer;
  flags: number;
  keywords: string[];
  internalDate: number;
  /** Parsed MIME structure (JSON-serialisable), computed once at ingest. */
  mime: unknown;
  /** Skip the quota check (e.g. bounces to postmaster); default false. */
  ignoreQuota?: boolean;
  /** Search/sort data extracted once at ingest (IMAP SEARCH, SORT, THREAD); absent = not indexed. */
  index?: MessageIndexData;
  /**
   * Commit only a durable "text still to index" marker for the blob instead of inserting its full-text index
   * row in this transaction (the caller indexes later through indexTexts; core/ingest.ts does).
   */
  deferText?: boolean;
  /**
   * The body's bytes, when the blob store keeps bodies of this size itself (BlobStore.inlineLimit): the store
   * writes them in this transaction (content-addressed: a body already stored is not written again), so the
   * transaction's durability covers the body too. Absent: the body was put() before.
   */
  blobData?: Buffer;
}

/** A blob's text for the full-text index (MessageIndexData.headers/body). */
export interface BlobText {
  blobId: string;
  headers: string;
  body: string;
}

/** What SEARCH/SORT/THREAD need from a message, extracted at ingest (RFC 9051 6.4.4, RFC 5256). */
export interface MessageIndexData {
  /** Date: header as an instant (ms), null when absent or unparsable. */
  sentDate: number | null;
  /** Date: header's calendar day as written (YYYYMMDD, its own zone), for SENTBEFORE/SENTON/SENTSINCE. */
  sentDay: number | null;
  /** Decoded Subject. */
  subject: string;
  /** RFC 5256 sort keys: first address's mailbox of From / To / Cc, lower-cased. */
  sortFrom: string;
  sortTo: string;
  sortCc: string;
  messageId: string | null;
  /** References, else In-Reply-To, message ids in order (RFC 5256 THREAD=REFERENCES). */
  references: string[];
  /** Every header field as "name: decoded value" lines (SEARCH HEADER/FROM/... and TEXT). */
  headers: string;
  /** Decoded text of the text parts (SEARCH BODY/TEXT). */
  body: string;
}

/** A backend-neutral message query (SEARCH after the session resolved sequence numbers and $). */
export type MessageQuery =
  | { type: 'all' }
  | { type: 'none' }
  | { type: 'and'; keys: MessageQuery[] }
  | { type: 'or'; left: MessageQuery; right: MessageQuery }
  | { type: 'not'; key: MessageQuery }
  /** System flag bit (Flag.*) set or not. */
  | { type: 'flag'; mask: number; set: boolean }
  | { type: 'keyword'; keyword: string; set: boolean }
  /** Substring of the decoded value of a header field (name case-insensitive); '' = field present. */
  | { type: 'header'; field: string; value: string }
  | { type: 'body'; value: string }
  | { type: 'text'; value: string }
  /** internal: ms bounds [from, to) on internal date; sent: YYYYMMDD bounds [from, to) on the Date: day. */
  | { type: 'date'; field: 'internal' | 'sent'; from: number | null; to: number | null }
  | { type: 'size'; op: 'larger' | 'smaller'; size: number }
  | { type: 'uids'; ranges: Array<[number, number]> }
  | { type: 'modseq'; modseq: number };

export interface SearchHit {
  uid: number;
  modseq: number;
}

export interface SortData {
  uid: number;
  internalDate: number;
  size: number;
  sentDate: number | null;
  subject: string;
  sortFrom: string;
  sortTo: string;
  sortCc: string;
  messageId: string | null;
  references: string[];
}

export type FlagOperation = 'add' | 'remove' | 'replace';

export interface FlagUpdate {
  uid: number;
  flags: number;
  keywords: string[];
  modseq: number;
}

export type CopyOutcome =
  | { ok: true; uidValidity: number; pairs: Array<[src: number, dst: number]>; modseq: number; expungeModseq?: number }
  | { ok: false; reason: 'over-quota' | 'no-mailbox' };

export type AppendOutcome =
  | { ok: true; message: MessageMeta; accountId: number; uidValidity: number }
  | { ok: false; reason: 'over-quota' | 'no-mailbox' };

export interface DirectoryRepo {
  listDomains(): Promise<Domain[]>;
  addDomain(name: string): Promise<boolean>;
  deleteDomain(name: string): Promise<boolean>;
  isLocalDomain(name: string): Promise<boolean>;

  getAccount(address: string): Promise<Account | null>;
  getAccountById(id: number): Promise<Account | null>;
  listAccounts(): Promise<Account[]>;
  /** Creates the account and its default mailboxes in one transaction. Returns null if it exists. */
  createAccount(input: { address: string; domain: string; passwordHash: string; quotaBytes: number }, mailboxes: { name: string; specialUse: SpecialUse | null }[]): Promise<Account | null>;
  setPassword(address: string, passwordHash: string): Promise<boolean>;
  setQuota(address: string, quotaBytes: number): Promise<boolean>;
  /** Deletes the account, its mailboxes and messages (blob references released). */
  deleteAccount(address: string): Promise<boolean>;

  listAliases(): Promise<Alias[]>;
  aliasTargets(source: string): Promise<string[]>;
  addAlias(source: string, target: string): Promise<boolean>;
  deleteAlias(source: string, target: string): Promise<boolean>;
}

export interface MailboxRepo {
  list(accountId: number): Promise<Mailbox[]>;
  get(accountId: number, name: string): Promise<Mailbox | null>;
  getById(id: number): Promise<Mailbox | null>;
  bySpecialUse(accountId: number, use: SpecialUse): Promise<Mailbox | null>;
  create(accountId: number, name: string, specialUse: SpecialUse | null): Promise<Mailbox | null>;
  /**
   * Renames a mailbox and its inferiors ("a" moves "a/b" too). Renaming INBOX moves its messages to a new
   * mailbox and leaves INBOX empty (RFC 9051 6.3.6). Returns false when `from` is missing or `to` exists.
   */
  rename(accountId: number, from: string, to: string): Promise<boolean>;
  /** Deletes a mailbox and its messages (quota and blob references released). */
  delete(mailboxId: number): Promise<boolean>;
  setSubscribed(mailboxId: number, subscribed: boolean): Promise<void>;
  /**
   * RFC 3501 \Recent: returns the first UID that is recent for the caller and makes every UID below
   * `uidNext` non-recent for everyone else (one session sees each message as recent).
   */
  claimRecent(mailboxId: number, uidNext: number, known?: Pick<Mailbox, 'uidValidity' | 'firstRecentUid'>): Promise<number>;
}

export interface MessageRepo {
  /**
   * Appends messages (possibly to many mailboxes of many accounts) in ONE transaction and resolves once they are
   * durable. Each item gets its own outcome; a quota failure affects only that item. A store may share one sync
   * among the appends committed while another sync runs (group commit: SqliteMessages).
   */
  appendMany(items: NewMessage[]): Promise<AppendOutcome[]>;
  /**
   * Deferred text indexing: inserts the text of blobs still marked pending, clears their marker (one transaction).
   * Texts of bodies no message references any more (expunged meanwhile) are skipped and keep their marker.
   */
  indexTexts?(texts: BlobText[]): Promise<void>;
  /**
   * Indexes pending blobs whose text the caller does not hold, reading the bodies itself off the event loop;
   * resolves false when it cannot (the caller then reads them and calls indexTexts).
   */
  indexBlobTexts?(blobIds: string[]): Promise<boolean>;
  /** True while indexTexts runs off the event loop (a worker thread): the caller need not time-slice it. */
  textIndexOffThread?(): boolean;
  /** Blob ids still marked pending (committed with deferText, not yet indexed) and still referenced, oldest first. */
  pendingTexts?(limit: number, afterBlobRow?: number): Array<{ row: number; blobId: string }>;
  list(mailboxId: number): Promise<MessageMeta[]>;
  get(mailboxId: number, uid: number): Promise<MessageMeta | null>;
  /** The stored MIME structure of a message. */
  /**
   * The parsed MIME structure. With the message's blobId the store may answer from a cache of recently parsed
   * structures (a blob's structure never changes); callers must treat the result as read-only.
   */
  mime(messageId: number, blobId?: string): Promise<unknown>;
  /** The prepended header block of a message. */
  prefix(messageId: number): Promise<Buffer>;
  /**
   * Removes messages (by UID) from a mailbox in one transaction: quota and counters updated, blob references
   * released, UIDs recorded as expunged at one new MODSEQ. Returns the UIDs actually removed (ascending).
   */
  expunge(mailboxId: number, uids: number[]): Promise<{ uids: number[]; modseq: number }>;
  /**
   * UID of the lowest-UID message without \Seen, or null (SELECT's `OK [UNSEEN n]`, RFC 3501 6.3.1): one index
   * probe, where a SEARCH UNSEEN materialises every unseen message (60 ms for 100,000).
   */
  firstUnseen?(mailboxId: number): Promise<number | null>;
  /** All UIDs of a mailbox, ascending (the selected view). */
  uids(mailboxId: number): Promise<number[]>;
  /**
   * Messages whose UID is in `ranges`, ascending; only those with modseq > changedSince when given. With
   * `flagsOnly` the rows may come from a covering index: blobId is '' and prefixLength 0 (uid, modseq, flags,
   * keywords, internalDate and size are filled).
   */
  fetch(mailboxId: number, ranges: Array<[number, number]>, opts?: { changedSince?: number; flagsOnly?: boolean }): Promise<MessageMeta[]>;
  /**
   * Changes flags of the messages in `uids` in one transaction. Messages whose flags change get one new MODSEQ;
   * with unchangedSince, a message whose modseq is higher is left alone and reported in `failed`
   * (RFC 7162 3.1.3). `unchanged` lists messages that needed no change (their current state is returned).
   */
  storeFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts?: { unchangedSince?: number }): Promise<{ updated: FlagUpdate[]; unchanged: FlagUpdate[]; failed: number[]; modseq: number }>;
  /** Copies (or, with move, moves: copy + expunge in ONE transaction) messages; UIDs assigned in source order. */
  copy(fromMailboxId: number, uids: number[], toMailboxId: number, opts?: { move?: boolean }): Promise<CopyOutcome>;
  /** UIDs in `ranges` expunged after `sinceModseq` (RFC 7162 3.2.5.2 VANISHED). */
  vanished(mailboxId: number, sinceModseq: number, ranges?: Array<[number, number]>): Promise<number[]>;
  /** Messages matching `query`, ascending by UID. */
  search(mailboxId: number, query: MessageQuery): Promise<SearchHit[]>;
  /** SORT/THREAD data for the given UIDs. */
  sortData(mailboxId: number, uids: number[]): Promise<SortData[]>;
}

export type RecipientStatus = 'queued' | 'delivered' | 'failed' | 'held';

export interface QueueRecipient {
  id: number;
  address: string;
  /** RFC 3461 ORCPT as given ("rfc822;user@x"), or null. */
  orcpt: string | null;
  /** RFC 3461 NOTIFY values, e.g. ["FAILURE","DELAY"], or null for the default. */
  notify: string[] | null;
  status: RecipientStatus;
  attempts: number;
  nextAttempt: number;
  lastError: string | null;
  /** Time of the last delivery attempt (ms), or null. */
  lastAttempt: number | null;
  /** RFC 3463 status of the last result ("4.4.1", "5.1.1", "2.0.0"), or null. */
  statusCode: string | null;
  /** The host that gave the last result ("mx.example.net [192.0.2.1]"), or null. */
  remoteMta: string | null;
  /** TLS of the last attempt, or null for plaintext / no connection. */
  tls: QueueTlsInfo | null;
  /** A DSN still to be sent for this recipient (RFC 3464 Action), or null. */
  dsnPending: 'failed' | 'delayed' | 'relayed' | null;
  /** A delay DSN was already generated. */
  delayNotified: boolean;
}

export interface QueueTlsInfo {
  version: string;
  cipher: string;
  /** The peer certificate chained to a trusted CA and matched the host name, or matched DANE TLSA records. */
  verified: boolean;
  /** Authenticated by DANE (RFC 7672) TLSA records. */
  dane?: boolean;
}

/** One recipient's outcome of a delivery attempt. */
export interface QueueResult {
  recipientId: number;
  status: 'delivered' | 'failed' | 'queued';
  /** When status is 'queued': the next attempt time (ms). */
  nextAttempt?: number;
  statusCode: string;
  /** The remote reply or our own diagnostic. */
  diagnostic: string;
  remoteMta: string | null;
  tls: QueueTlsInfo | null;
  dsnPending: 'failed' | 'delayed' | 'relayed' | null;
}

/** A recipient due for delivery, with what routing needs. */
export interface DueRecipient {
  queueId: string;
  recipientId: number;
  address: string;
  sender: string;
  created: number;
}

/** Per-sender-domain relay routing (`postern relay ...`). */
export interface RelayRoute {
  domain: string;
  /** "host:port", or null when only credentials or an exclusion are set. */
  host: string | null;
  username: string | null;
  password: string | null;
  /** Mail from this domain is delivered directly even when [delivery] relay is set. */
  excluded: boolean;
}

export interface QueueEntry {
  id: string;
  sender: string;
  blobId: string;
  size: number;
  created: number;
  /** Submitting account, if authenticated. */
  accountId: number | null;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  smtputf8: boolean;
  body8bit: boolean;
  recipients: QueueRecipient[];
  /** Recent attempts, oldest first (for `postern queue show`). */
  attempts?: QueueAttempt[];
}

export interface QueueAttempt {
  at: number;
  recipientId: number;
  status: string;
  statusCode: string;
  diagnostic: string;
  remoteMta: string | null;
  tls: QueueTlsInfo | null;
}

export interface NewQueueEntry {
  sender: string;
  blobId: string;
  prefix: Buffer;
  size: number;
  accountId: number | null;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  smtputf8: boolean;
  body8bit: boolean;
  recipients: { address: string; orcpt: string | null; notify: string[] | null }[];
}

export interface QueueRepo {
  /** Durable on return (committed with fsync); the blob must already be durable. */
  enqueue(entry: NewQueueEntry): Promise<QueueEntry>;
  list(): Promise<QueueEntry[]>;
  /** With `withAttempts` (default true) the attempt history is included. */
  get(id: string, withAttempts?: boolean): Promise<QueueEntry | null>;
  prefix(id: string): Promise<Buffer>;
  delete(id: string): Promise<boolean>;

  // --- the queue runner (core/queue.ts). Leases keep two runners (or two passes) from sending one recipient
  // twice at once; a lease is ephemeral: the runner clears all leases at start (one runner per data dir).
  /**
   * Queued recipients with next_attempt <= now and no live lease, oldest entries first; `skip` leaves out
   * recipients in these (lower-case) domains and messages from these sender domains (destinations already at
   * their connection limit, so that their backlog does not fill the page and starve the others).
   */
  due(now: number, limit: number, skip?: { recipientDomains: string[]; senderDomains: string[] }): Promise<DueRecipient[]>;
  /** Leases recipients until `until`; returns the ids actually leased (skips ones leased meanwhile). */
  lease(recipientIds: number[], now: number, until: number): Promise<number[]>;
  clearLeases(): Promise<void>;
  /** Records an attempt's outcome per recipient (and its history), releasing the leases, in one transaction. */
  recordResults(queueId: string, results: QueueResult[], at: number): Promise<void>;
  /** The earliest next_attempt of a queued recipient, or null when nothing is queued. */
  nextDue(): Promise<number | null>;
  /** Queued recipients of entries created before `createdBefore`, not yet delay-notified. */
  delayed(createdBefore: number, limit: number): Promise<DueRecipient[]>;
  /** Marks recipients delay-notified; `dsn` says whether a delay DSN is to be sent for them. */
  markDelayNotified(recipientIds: number[], dsn: boolean): Promise<void>;
  /** Ids of entries with recipients whose DSN is pending. */
  withPendingDsn(limit: number): Promise<string[]>;
  /** Clears the pending DSN of these recipients (the DSN is durable). */
  dsnDone(recipientIds: number[]): Promise<void>;
  /** Deletes the entry if every recipient is delivered or failed and no DSN is pending. */
  deleteIfComplete(id: string): Promise<boolean>;
  /** Hold / release: queued <-> held. Returns the number of recipients changed. */
  hold(id: string): Promise<number>;
  release(id: string, now: number): Promise<number>;
  /** Makes queued recipients (of one entry, or all) due now. Returns how many. */
  retryNow(id: string | null, now: number): Promise<number>;

  // Relay routes per sender domain.
  relayRoutes(): Promise<RelayRoute[]>;
  relayRoute(domain: string): Promise<RelayRoute | null>;
  setRelayRoute(domain: string, change: Partial<Omit<RelayRoute, 'domain'>>): Promise<RelayRoute>;
}

export interface BlobStore {
  /** Writes, fsyncs and publishes a blob atomically; returns its content address. Idempotent. */
  put(data: Buffer): Promise<{ id: string; size: number }>;
  get(id: string): Promise<Buffer>;
  /** A byte range [start, end) of a blob. */
  read(id: string, start: number, end: number): Promise<Buffer>;
  path(id: string): string;
  exists(id: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  /**
   * Bodies of at most this many bytes are stored by the message repository's own transaction
   * (NewMessage.blobData) instead of put(); absent or 0: every body is put() first.
   */
  readonly inlineLimit?: number;
  /** The content address put() would give these bytes. */
  idOf?(data: Buffer): string;
}

/** A client address refused at connection time (brute-force protection, `postern ban`). */
export interface Ban {
  /** Canonical IP address text. */
  ip: string;
  /** Milliseconds since the epoch. */
  created: number;
  /** The ban lapses at this instant (ms). */
  until: number;
  /** Why: "auth failures (10 in 10m)", "manual". */
  reason: string;
}

export interface BanRepo {
  /** Adds or replaces (extends or shortens) the ban of `ban.ip`. */
  put(ban: Ban): Promise<void>;
  delete(ip: string): Promise<boolean>;
  /** Bans still in force at `now`, by IP. */
  active(now: number): Promise<Ban[]>;
  /** Removes bans that lapsed before `now`; returns how many. */
  purge(now: number): Promise<number>;
}

/** Greylisting state (RFC 6647; core/inbound/greylist.ts): triplets and auto-allowed client networks. */
export interface GreylistRepo {
  /** When the triplet was first seen; a new triplet is recorded with `now` (isNew true). */
  touch(triplet: string, now: number): Promise<{ firstSeen: number; isNew: boolean }>;
  /** Until when (ms) the client network skips greylisting; 0 when it does not. */
  allowedUntil(network: string): Promise<number>;
  allowNetwork(network: string, until: number): Promise<void>;
  /** Forgets triplets first seen before `tripletsBefore` and networks whose allowance ended before `now`. */
  purge(tripletsBefore: number, now: number): Promise<number>;
}

/** A recipient domain's MTA-STS policy (RFC 8461), as fetched (core/mta-sts.ts). */
export interface StsPolicy {
  domain: string;
  /** The TXT record's id when the policy was fetched. */
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  /** MX patterns: host names, or "*.example.com" (one leftmost label). Lower case. */
  mx: string[];
  /** Seconds (at most 31557600). */
  maxAge: number;
  fetchedAt: number;
}

/** Fetched MTA-STS policies kept across restarts (RFC 8461 5.1: a restart must not forget them). */
export interface StsPolicyRepo {
  get(domain: string): Promise<StsPolicy | null>;
  put(policy: StsPolicy): Promise<void>;
  delete(domain: string): Promise<void>;
}

export interface Store {
  directory: DirectoryRepo;
  mailboxes: MailboxRepo;
  messages: MessageRepo;
  queue: QueueRepo;
  bans: BanRepo;
  /** Where the backend keeps MTA-STS policies (else they live in memory only). */
  stsPolicies?: StsPolicyRepo;
  blobs: BlobStore;
  /** Blob ids no message or queue entry references any more (for garbage collection). */
  orphanBlobs(limit: number): Promise<string[]>;
  /** Group commit support, where the backend has it (core/ingest uses it for many messages per fsync). */
  groupCommit?: GroupCommit;
  close(): Promise<void>;
}

/**
 * Group commit: commits run without their own fsync, then one sync makes every commit so far durable. A caller
 * acknowledges nothing committed under deferSync() before syncCommitted() resolved.
 */
export interface GroupCommit {
  /** Runs fn, whose transactions must run synchronously inside the call, with the commit fsync deferred. */
  deferSync<T>(fn: () => T): T;
  /**
   * deferSync(fn) once no other connection of the store (the writer thread) holds or waits for the write lock,
   * so that fn's transaction never sleeps in SQLite's busy handler on the event loop.
   */
  deferSyncInTurn<T>(fn: () => T): Promise<T>;
  /** Makes everything committed so far durable (one fsync, off the event loop). */
  syncCommitted(): Promise<void>;
}

/** IMAP data kept apart from MessageRepo (SQLite: storage/sqlite/imap-extra.ts). */
export interface ImapExtraRepo {
  /**
   * Keywords set on at least one message of the mailbox, deduplicated case-insensitively (first spelling
   * kept), in a stable order: what SELECT's FLAGS and PERMANENTFLAGS list (RFC 9051 6.3.2, 7.3.5).
   */
  keywordsInUse(mailboxId: number): Promise<string[]>;
}
