/** SQLite schema and migrations (PRAGMA user_version). Each migration runs in one transaction. */
import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  `
  CREATE TABLE domains (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL
  );
  CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL REFERENCES domains(name),
    password_hash TEXT NOT NULL,
    quota_bytes INTEGER NOT NULL DEFAULT 0,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
  );
  CREATE TABLE aliases (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (source, target)
  ) WITHOUT ROWID;
  CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    special_use TEXT,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    subscribed INTEGER NOT NULL DEFAULT 1,
    message_count INTEGER NOT NULL DEFAULT 0,
    unseen_count INTEGER NOT NULL DEFAULT 0,
    total_size INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
  );
  CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    refs INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX blobs_orphans ON blobs(refs) WHERE refs <= 0;
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT,
    internal_date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    blob_id TEXT NOT NULL,
    prefix BLOB NOT NULL,
    mime TEXT,
    UNIQUE (mailbox_id, uid)
  );
  CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
  -- Expunged UIDs with the modseq of their expunge, for QRESYNC VANISHED (RFC 7162 3.2.10).
  CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
  CREATE TABLE queue (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    prefix BLOB NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    account_id INTEGER,
    envid TEXT,
    ret TEXT,
    smtputf8 INTEGER NOT NULL DEFAULT 0,
    body8bit INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE queue_recipients (
    id INTEGER PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    orcpt TEXT,
    notify TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT
  );
  CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
  CREATE INDEX queue_recipients_entry ON queue_recipients(queue_id);
  `,
  // 2: IMAP. \Recent marker (RFC 3501 2.3.2), SEARCH/SORT/THREAD columns filled at ingest, flag indexes,
  // and a trigram FTS5 index of header and body text per blob (substring SEARCH BODY/TEXT, RFC 9051 6.4.4).
  `
  ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE messages ADD COLUMN sent_date INTEGER;
  ALTER TABLE messages ADD COLUMN sent_day INTEGER;
  ALTER TABLE messages ADD COLUMN subject TEXT;
  ALTER TABLE messages ADD COLUMN sort_from TEXT;
  ALTER TABLE messages ADD COLUMN sort_to TEXT;
  ALTER TABLE messages ADD COLUMN sort_cc TEXT;
  ALTER TABLE messages ADD COLUMN message_id TEXT;
  ALTER TABLE messages ADD COLUMN refs TEXT;
  CREATE INDEX messages_flags ON messages(mailbox_id, flags);
  CREATE INDEX messages_date ON messages(mailbox_id, internal_date);
  CREATE TABLE blob_text (
    id INTEGER PRIMARY KEY,
    blob_id TEXT NOT NULL UNIQUE
  );
  CREATE VIRTUAL TABLE text_index USING fts5(headers, body, tokenize = 'trigram case_sensitive 0');
  `,
  // 3: outbound queue. Leases, last result per recipient (RFC 3464 fields), pending DSNs, attempt history,
  // and per-sender-domain relay routes (`postern relay ...`; read on every delivery, so CLI changes apply at once).
  `
  ALTER TABLE queue_recipients ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE queue_recipients ADD COLUMN last_attempt INTEGER;
  ALTER TABLE queue_recipients ADD COLUMN status_code TEXT;
  ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT;
  ALTER TABLE queue_recipients ADD COLUMN tls TEXT;
  ALTER TABLE queue_recipients ADD COLUMN dsn_pending TEXT;
  ALTER TABLE queue_recipients ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX queue_recipients_dsn ON queue_recipients(dsn_pending) WHERE dsn_pending IS NOT NULL;
  CREATE TABLE queue_attempts (
    id INTEGER PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    recipient_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_code TEXT NOT NULL,
    diagnostic TEXT NOT NULL,
    remote_mta TEXT,
    tls TEXT
  );
  CREATE INDEX queue_attempts_entry ON queue_attempts(queue_id);
  CREATE TABLE relay_routes (
    domain TEXT PRIMARY KEY,
    host TEXT,
    username TEXT,
    password TEXT,
    excluded INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  `,
  // 4: brute-force bans (core/bans.ts, `postern ban`): kept across restarts, lapsed rows purged.
  `
  CREATE TABLE bans (
    ip TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    until INTEGER NOT NULL,
    reason TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX bans_until ON bans(until);
  `,
  // 5: greylisting (core/inbound/greylist.ts, RFC 6647): triplets "network|sender|recipient" and client
  // networks allowed after they passed once.
  `
  CREATE TABLE greylist_triplets (
    triplet TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX greylist_triplets_seen ON greylist_triplets(first_seen);
  CREATE TABLE greylist_networks (
    network TEXT PRIMARY KEY,
    until INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 6: deferred full-text indexing (core/ingest.ts TextIndexer): a blob committed with pending = 1 still owes its
  // text_index row; the flag is set in the message's own transaction and cleared in the one that inserts the text,
  // so a crash never loses the obligation.
  `
  ALTER TABLE blob_text ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX blob_text_pending ON blob_text(id) WHERE pending = 1;
  `,
  // 7: a covering index for whole-mailbox metadata reads (UID FETCH 1:* FLAGS, SEARCH by flags/UID/size/date,
  // SELECT's first unseen): the message rows carry the MIME tree and prefix, so reading them for 100,000
  // messages walks ~1 GB of pages; this index is ~40 bytes a message.
  `
  CREATE INDEX messages_meta ON messages(mailbox_id, uid, modseq, flags, internal_date, size, keywords);
  `,
  // 8: the message's full-text row id (blob_text.id = text_index rowid) on the message itself, in an index with
  // the UID: SEARCH BODY/TEXT/header keys match FTS rowids against this index instead of joining blob_text by
  // the 64-character blob id for every message (SEARCH TEXT over 100,000 messages: 263 -> 98 ms). The covering
  // index gains the column, so flag and text keys combine without reading message rows.
  `
  ALTER TABLE messages ADD COLUMN text_id INTEGER;
  UPDATE messages SET text_id = (SELECT id FROM blob_text WHERE blob_text.blob_id = messages.blob_id);
  DROP INDEX messages_meta;
  CREATE INDEX messages_meta ON messages(mailbox_id, uid, modseq, flags, internal_date, size, keywords, text_id);
  `,
  // 9: message bodies up to [storage] inline_blob_max kept in the database (storage/sqlite/blob-store.ts), written in
  // the transaction that references them: one WAL fdatasync per group commit makes a whole batch of messages
  // durable, instead of one O_DSYNC file write (and a directory fsync) per message. Larger bodies stay files.
  `
  CREATE TABLE blob_data (
    id TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL
  );
  `,
  // 10: the parsed MIME structure (JSON, often several KB) moves from each message row to one row per blob (it is
  // derived from the blob's bytes alone). SQLite rewrites a whole record on UPDATE, overflow pages included: every
  // STORE of a flag rewrote the structure too, and EXPUNGE freed its overflow pages. Message rows are now a few
  // hundred bytes. messages.mime stays as a column (SQLite cannot drop it cheaply), always NULL.
  `
  CREATE TABLE blob_mime (
    blob_id TEXT PRIMARY KEY NOT NULL,
    mime TEXT NOT NULL
  );
  INSERT OR IGNORE INTO blob_mime(blob_id, mime) SELECT blob_id, mime FROM messages WHERE mime IS NOT NULL;
  UPDATE messages SET mime = NULL WHERE mime IS NOT NULL;
  `,
  // 11: the full-text index moves to a database file of its own (text-db.ts), written by its own thread: its
  // transactions no longer hold the write lock every message write needs. Every text is re-indexed from the blobs
  // (text-db.ts marks them pending when it creates the new index; the TextIndexer does the rest, in the background,
  // and SEARCH catches up first).
  `
  DROP TABLE IF EXISTS main.text_index;
  `,
  // 12: messages_flags (mailbox_id, flags) served no query: flag searches and SELECT's first unseen read the
  // covering index messages_meta in UID order (EXPLAIN QUERY PLAN), and a bit test cannot seek in it anyway. It
  // cost a page write in every STORE, APPEND and EXPUNGE transaction.
  `
  DROP INDEX IF EXISTS messages_flags;
  `,
  // 13: recipient domains' MTA-STS policies (core/mta-sts.ts, RFC 8461 5.1), kept across restarts. IF NOT EXISTS:
  // the migration tests re-run later migrations from an older user_version on a database that has the table.
  `
  CREATE TABLE IF NOT EXISTS mta_sts_policies (
    domain TEXT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL,
    mode TEXT NOT NULL,
    mx TEXT NOT NULL,
    max_age INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

/**
 * The full-text index's own database file (postern-text.db next to postern.db), attached to a connection as
 * schema "fts": SEARCH joins main.messages with fts.text_index. Derived data: when the file is missing (deleted
 * by an operator, a restore without it, the migration above) the index is created empty and every blob's text
 * marked pending, so it is rebuilt from the message bodies.
 */
export const TEXT_INDEX_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS fts.text_index USING fts5(headers, body, tokenize = 'trigram case_sensitive 0')";

/**
 * One step of removing full-text rows whose text row is gone (SqliteMessages.pruneTextIndex): looks at the next
 * `limit` index rows after rowid `after`, deletes those without a row in `<main>.blob_text`, and returns how many
 * went and the last rowid looked at (the next step's `after`; 0 when the end was reached). A cursor and a
 * primary-key probe per row keep a whole pass linear in the size of the index.
 */
export function pruneRows(db: Database.Database, table: string, main: string, limit: number, after: number): { deleted: number; last: number } {
  const rows = db.prepare(`SELECT rowid FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ?`).pluck().all(after, limit) as number[];
  if (!rows.length) return { deleted: 0, last: 0 };
  const last = rows[rows.length - 1]!;
  const gone = db.prepare(`SELECT value FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM ${main}.blob_text WHERE id = value)`).pluck().all(JSON.stringify(rows)) as number[];
  const del = db.prepare(`DELETE FROM ${table} WHERE rowid = ?`);
  db.transaction(() => {
    for (const id of gone) del.run(id);
  })();
  return { deleted: gone.length, last: rows.length < limit ? 0 : last };
}

export function textDbFile(dbFile: string): string {
  return dbFile.replace(/\.db$/, '') + '-text.db';
}

/** Attaches the text index database as "fts" (creating its table, and re-indexing everything, when missing). */
export function attachTextDb(db: Database.Database, file: string, opts: { create: boolean }): void {
  db.prepare('ATTACH DATABASE ? AS fts').run(file);
  if (!opts.create) return;
  db.pragma('fts.journal_mode = WAL');
  const has = () => !!db.prepare("SELECT 1 FROM fts.sqlite_master WHERE name = 'text_index'").get();
  if (has()) return;
  db.transaction(() => {
    db.exec(TEXT_INDEX_DDL);
    db.exec('UPDATE main.blob_text SET pending = 1 WHERE pending = 0');
  }).immediate();
}

export function migrate(db: Database.Database): void {
  // Another process (the CLI next to the server) may migrate concurrently: re-read inside the write lock.
  for (;;) {
    const done = db.transaction(() => {
      const v = db.pragma('user_version', { simple: true }) as number;
      if (v >= MIGRATIONS.length) return true;
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
      return false;
    }).immediate();
    if (done) return;
  }
}
