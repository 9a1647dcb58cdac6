/**
 * The message repository's hot write transactions (new messages, flag changes, expunge, copy/move) as synchronous
 * functions of one SQLite connection, so they run in either of two places with the same SQL:
 *
 * - on the writer thread (sqlite-writer-thread.ts, its own connection): the normal case. The event loop sends the
 *   writes queued while the previous batch ran as ONE request; the thread runs them in ONE transaction, each in
 *   its own savepoint (a failing write is undone alone and reported to its caller), and answers each. The event
 *   loop then spends no time in SQLite's commit (WAL frame writes, the FTS5 segment flush of new messages' text),
 *   which was a third of its time in the IMAP mix, and the other core does it.
 * - on the event loop's own connection (SqliteMessages) when the thread is not available (not built, failed).
 *
 * Invariants (both places): every write runs in one IMMEDIATE transaction (a savepoint inside the batch's); a flag
 * change, copy or move takes ONE new MODSEQ for the whole command; mailbox and account counters change in the same
 * transaction as the rows. Durability is the caller's (SqliteMessages: a WAL fdatasync after the commit).
 */
import type Database from 'better-sqlite3';
import { Flag, type AppendOutcome, type CopyOutcome, type FlagOperation, type FlagUpdate, type NewMessage } from '../types.js';
import { ImapMessageStore } from './messages-imap.js';
import { claimRecentTx } from './mailboxes.js';
import type { Row } from './rows.js';

/** One write, as sent to the writer thread (structured-clone data only). */
export type WriteOp =
  | { op: 'append'; items: AppendItem[] }
  | { op: 'store'; mailboxId: number; uids: number[]; flagOp: FlagOperation; flags: number; keywords: string[]; unchangedSince?: number }
  | { op: 'expunge'; mailboxId: number; uids: number[] }
  | { op: 'copy'; from: number; uids: number[]; to: number; move: boolean }
  | { op: 'claimRecent'; mailboxId: number; uidNext: number }
  | { op: 'textsDone'; blobIds: string[] };

/**
 * A new message as sent to the writer: the MIME structure already as its stored JSON (a string crosses to the
 * thread for a fraction of what cloning the object tree costs, and the thread need not serialise it), the index
 * data without its text (the text goes to the text index thread, not into this transaction).
 */
export type AppendItem = NewMessage & { mimeJson?: string | null };

export function appendItem(m: NewMessage): AppendItem {
  return {
    ...m,
    mime: null,
    mimeJson: m.mime === undefined || m.mime === null ? null : JSON.stringify(m.mime),
    index: m.index && { ...m.index, headers: '', body: '' },
  };
}

export type StoreResult = { updated: FlagUpdate[]; unchanged: FlagUpdate[]; failed: number[]; modseq: number };
export type ExpungeResult = { uids: number[]; modseq: number };
export type WriteResult = AppendOutcome[] | StoreResult | ExpungeResult | CopyOutcome | number;
/** Per write of a batch: its result, or the message of the error that undid it. */
export type WriteReply = { ok: true; value: WriteResult } | { ok: false; error: string };

export class MessageWrites {
  readonly imap: ImapMessageStore;
  private readonly stmts;
  private readonly batchTx;

  constructor(
    private readonly db: Database.Database,
    imap?: ImapMessageStore,
  ) {
    this.imap = imap ?? new ImapMessageStore(db);
    this.stmts = {
      mailbox: db.prepare('SELECT b.*, a.quota_bytes, a.used_bytes FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE b.id = ?'),
      bumpMailbox: db.prepare(
        'UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, message_count = message_count + 1, unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?',
      ),
      bumpAccount: db.prepare('UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE id = ?'),
      blobRef: db.prepare('INSERT INTO blobs(id, size, refs) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET refs = refs + 1'),
      blobData: db.prepare('INSERT OR IGNORE INTO blob_data(id, data) VALUES (?, ?)'),
      insert: db.prepare(
        'INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id, prefix, mime, sent_date, sent_day, subject, sort_from, sort_to, sort_cc, message_id, refs, text_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      putMime: db.prepare('INSERT OR IGNORE INTO blob_mime(blob_id, mime) VALUES (?, ?)'),
      one: db.prepare('SELECT id, size, flags, blob_id FROM messages WHERE mailbox_id = ? AND uid = ?'),
      del: db.prepare('DELETE FROM messages WHERE id = ?'),
      unref: db.prepare('UPDATE blobs SET refs = refs - 1 WHERE id = ?'),
      tomb: db.prepare('INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)'),
      mbAfterExpunge: db.prepare(
        'UPDATE mailboxes SET highestmodseq = ?, message_count = message_count - ?, unseen_count = unseen_count - ?, total_size = total_size - ? WHERE id = ?',
      ),
      accAfterExpunge: db.prepare('UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - ? WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)'),
      modseqOf: db.prepare('SELECT highestmodseq FROM mailboxes WHERE id = ?'),
      textDone: db.prepare('UPDATE blob_text SET pending = 0 WHERE blob_id = ? AND pending = 1'),
    };
    this.batchTx = db.transaction((ops: WriteOp[]): WriteReply[] =>
      ops.map((op): WriteReply => {
        try {
          return { ok: true, value: this.apply(op) };
        } catch (err) {
          // The write's savepoint is rolled back; the others of the batch stand.
          return { ok: false, error: (err as Error).message };
        }
      }),
    );
  }

  /** Runs one write in its own transaction (a savepoint when called inside another). */
  apply(op: WriteOp): WriteResult {
    switch (op.op) {
      case 'append':
        return this.appendMany(op.items);
      case 'store':
        return this.imap.storeFlags(op.mailboxId, op.uids, op.flagOp, op.flags, op.keywords, op.unchangedSince === undefined ? {} : { unchangedSince: op.unchangedSince });
      case 'expunge':
        return this.expunge(op.mailboxId, op.uids);
      case 'copy':
        return this.imap.copy(op.from, op.uids, op.to, op.move ? (mb, u) => this.expunge(mb, u) : null);
      case 'claimRecent':
        return claimRecentTx(this.db, op.mailboxId, op.uidNext);
      case 'textsDone':
        return this.textsDone(op.blobIds);
    }
  }

  /** The writer thread's request: every write of the batch in one IMMEDIATE transaction, one commit. */
  batch(ops: WriteOp[]): WriteReply[] {
    return this.batchTx.immediate(ops);
  }

  appendMany(items: AppendItem[]): AppendOutcome[] {
    const s = this.stmts;
    let lastMimeBlob = '';
    return this.db
      .transaction(() =>
        items.map((item): AppendOutcome => {
          const mb = s.mailbox.get(item.mailboxId) as Row | undefined;
          if (!mb) return { ok: false, reason: 'no-mailbox' };
          const size = item.prefix.length + item.blobSize;
          const quota = mb.quota_bytes as number;
          if (!item.ignoreQuota && quota > 0 && (mb.used_bytes as number) + size > quota) return { ok: false, reason: 'over-quota' };
          const uid = mb.uidnext as number;
          const modseq = (mb.highestmodseq as number) + 1;
          s.bumpMailbox.run(item.flags & Flag.Seen ? 0 : 1, size, item.mailboxId);
          s.bumpAccount.run(size, mb.account_id);
          s.blobRef.run(item.blobId, item.blobSize);
          if (item.blobData) s.blobData.run(item.blobId, item.blobData);
          // One structure per blob (several recipients share it); the first message of a blob writes it.
          const mimeJson = item.mimeJson ?? (item.mime === undefined || item.mime === null ? null : JSON.stringify(item.mime));
          if (mimeJson !== null && item.blobId !== lastMimeBlob) {
            s.putMime.run(item.blobId, mimeJson);
            lastMimeBlob = item.blobId;
          }
          const kw = item.keywords.length ? JSON.stringify(item.keywords) : null;
          // The text goes into the full-text index (its own database) later: SqliteMessages.appendMany.
          if (item.index) this.imap.markTextPending(item.blobId);
          const id = Number(
            s.insert.run(item.mailboxId, uid, modseq, item.flags, kw, item.internalDate, size, item.blobId, item.prefix, null, ...ImapMessageStore.indexColumns(item.index), this.imap.textIdOf(item.blobId)).lastInsertRowid,
          );
          return {
            ok: true,
            accountId: mb.account_id as number,
            uidValidity: mb.uidvalidity as number,
            message: { id, mailboxId: item.mailboxId, uid, modseq, flags: item.flags, keywords: item.keywords, internalDate: item.internalDate, size, blobId: item.blobId, prefixLength: item.prefix.length },
          };
        }),
      )
      .immediate();
  }

  /** Clears the pending markers of blobs whose text the text index thread committed; how many were cleared. */
  textsDone(blobIds: string[]): number {
    const s = this.stmts;
    return this.db.transaction(() => blobIds.reduce((n, id) => n + s.textDone.run(id).changes, 0)).immediate();
  }

  expunge(mailboxId: number, uids: number[]): ExpungeResult {
    const s = this.stmts;
    return this.db
      .transaction(() => {
        const mb = s.modseqOf.get(mailboxId) as Row | undefined;
        if (!mb) return { uids: [], modseq: 0 };
        const modseq = (mb.highestmodseq as number) + 1;
        const removed: number[] = [];
        let bytes = 0;
        let unseen = 0;
        for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
          const m = s.one.get(mailboxId, uid) as Row | undefined;
          if (!m) continue;
          s.del.run(m.id);
          s.unref.run(m.blob_id);
          s.tomb.run(mailboxId, uid, modseq);
          bytes += m.size as number;
          if (!((m.flags as number) & Flag.Seen)) unseen++;
          removed.push(uid);
        }
        if (!removed.length) return { uids: [], modseq: mb.highestmodseq as number };
        s.mbAfterExpunge.run(modseq, removed.length, unseen, bytes, mailboxId);
        s.accAfterExpunge.run(bytes, removed.length, mailboxId);
        return { uids: removed, modseq };
      })
      .immediate();
  }
}
