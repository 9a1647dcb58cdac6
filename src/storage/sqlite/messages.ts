import type Database from 'better-sqlite3';
import { Flag, type AppendOutcome, type BlobText, type CopyOutcome, type FlagOperation, type FlagUpdate, type GroupCommit, type MessageMeta, type MessageQuery, type MessageRepo, type NewMessage, type SearchHit, type SortData } from '../types.js';
import { MESSAGE_COLS, messageFrom, type Row } from './rows.js';
import { ImapMessageStore } from './messages-imap.js';
import { TextIndexWorker } from './messages-text-worker.js';
import { WriteGate } from './write-gate.js';

const SYNC_SOON_MS = 1000;
const MIME_CACHE_ENTRIES = 2000;
const CHECKPOINT_DELAY_MS = 250;

export class SqliteMessages implements MessageRepo {
  private readonly stmts;
  private readonly imap: ImapMessageStore;
  private readonly textWorker: TextIndexWorker;
  constructor(
    private readonly db: Database.Database,
    /** When given, IMAP writes (flags, expunge, copy/move) commit without an fsync on the event loop and are answered after a shared WAL sync in the thread pool. */
    private readonly gc?: GroupCommit,
    /** The store's turn-taking between event-loop writers and the index worker (the worker's side is here). */
    private readonly gate: WriteGate = new WriteGate(),
  ) {
    this.imap = new ImapMessageStore(db);
    this.textWorker = new TextIndexWorker(db.name);
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
      fetchRange: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`),
      fetchRangeSince: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND modseq > ? ORDER BY uid`),
      fetchMeta: db.prepare('SELECT id, uid, modseq, flags, keywords, internal_date, size FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid').raw(),
      firstUnseen: db.prepare(`SELECT uid FROM messages WHERE mailbox_id = ? AND (flags & ${Flag.Seen}) = 0 ORDER BY uid LIMIT 1`).pluck(),
      list: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid`),
      get: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid = ?`),
      mime: db.prepare('SELECT b.mime FROM messages m JOIN blob_mime b ON b.blob_id = m.blob_id WHERE m.id = ?').pluck(),
      mimeOfBlob: db.prepare('SELECT mime FROM blob_mime WHERE blob_id = ?').pluck(),
      putMime: db.prepare('INSERT OR IGNORE INTO blob_mime(blob_id, mime) VALUES (?, ?)'),
      prefix: db.prepare('SELECT prefix FROM messages WHERE id = ?'),
      one: db.prepare('SELECT id, size, flags, blob_id FROM messages WHERE mailbox_id = ? AND uid = ?'),
      del: db.prepare('DELETE FROM messages WHERE id = ?'),
      unref: db.prepare('UPDATE blobs SET refs = refs - 1 WHERE id = ?'),
      tomb: db.prepare('INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)'),
      mbAfterExpunge: db.prepare(
        'UPDATE mailboxes SET highestmodseq = ?, message_count = message_count - ?, unseen_count = unseen_count - ?, total_size = total_size - ? WHERE id = ?',
      ),
      accAfterExpunge: db.prepare('UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - ? WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)'),
      modseqOf: db.prepare('SELECT highestmodseq FROM mailboxes WHERE id = ?'),
    };
  }

  async appendMany(items: NewMessage[]): Promise<AppendOutcome[]> {
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
          if (item.mime !== undefined && item.mime !== null && item.blobId !== lastMimeBlob) {
            s.putMime.run(item.blobId, JSON.stringify(item.mime));
            lastMimeBlob = item.blobId;
          }
          const kw = item.keywords.length ? JSON.stringify(item.keywords) : null;
          if (item.deferText) this.imap.markTextPending(item.blobId);
          else this.imap.indexText(item.blobId, item.index);
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
  async expunge(mailboxId: number, uids: number[]): Promise<{ uids: number[]; modseq: number }> {
    return this.durably(() => this.expungeSync(mailboxId, uids), this.lazyFlagSync);
  }

  /**
   * [storage] fsync = "optimized" (Dovecot's mail_fsync = optimized, its default): flag changes and expunges are
   * answered once committed to the WAL (a crash of the process loses nothing; a power cut may undo the last
   * second of them: a flag reappears, an expunged message comes back, no message is lost) and reach the disk with
   * the next sync, at the latest SYNC_SOON_MS later. New messages (APPEND, SMTP), COPY and MOVE always wait for
   * the sync. "always": every write waits.
   */
  lazyFlagSync = true;
  private syncTimer: NodeJS.Timeout | null = null;
  private syncSoon(gc: GroupCommit): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (this.db.open) void gc.syncCommitted().catch(() => undefined);
    }, SYNC_SOON_MS);
    this.syncTimer.unref();
  }

  /** Runs a synchronous write transaction; durable when the promise resolves (lazy: see lazyFlagSync). */
  private async durably<T>(fn: () => T, lazy = false): Promise<T> {
    const gc = this.gc;
    if (!gc) return this.gate.write(fn);
    const r = await gc.deferSyncInTurn(fn);
    if (lazy) this.syncSoon(gc);
    else await gc.syncCommitted();
    return r;
  }

  private expungeSync(mailboxId: number, uids: number[]): { uids: number[]; modseq: number } {
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

  /** On the worker thread when it runs, else here (one short transaction either way). */
  async indexTexts(texts: BlobText[]): Promise<void> {
    if (this.textWorker.available) {
      try {
        return await this.gate.worker(() => this.textWorker.index(texts));
      } catch {
        if (!this.db.open) throw new Error('store closed');
        // the worker failed (it is marked unavailable): index here
      }
    }
    this.imap.indexTexts(texts);
  }
  /**
   * Asks the worker thread for a WAL checkpoint shortly (called after each group-commit sync). The event loop's
   * connection checkpoints by itself only past 4,000 pages (SqliteStore), so under load the copying and its two
   * fsyncs happen on the worker. Without a worker, that connection's own auto-checkpoint does the job.
   */
  checkpointSoon(): void {
    if (this.checkpointTimer || !this.textWorker.available || !this.db.open) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = null;
      if (this.db.open && this.textWorker.available) void this.textWorker.checkpoint().catch(() => undefined);
    }, CHECKPOINT_DELAY_MS);
    this.checkpointTimer.unref();
  }
  private checkpointTimer: NodeJS.Timeout | null = null;

  textIndexOffThread(): boolean {
    return this.textWorker.available;
  }
  /** Stops the indexing thread (SqliteStore.close). */
  async closeTextWorker(): Promise<void> {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    await this.textWorker.stop();
  }
  pendingTexts(limit: number, afterRow?: number): Array<{ row: number; blobId: string }> {
    return this.imap.pendingTexts(limit, afterRow);
  }

  async firstUnseen(mailboxId: number): Promise<number | null> {
    return (this.stmts.firstUnseen.get(mailboxId) as number | undefined) ?? null;
  }
  async uids(mailboxId: number): Promise<number[]> {
    return this.imap.uids(mailboxId);
  }
  async fetch(mailboxId: number, ranges: Array<[number, number]>, opts: { changedSince?: number; flagsOnly?: boolean } = {}): Promise<MessageMeta[]> {
    const out: MessageMeta[] = [];
    if (opts.flagsOnly && opts.changedSince === undefined) {
      // From the covering index messages_meta, as arrays (no row objects): the whole-mailbox FLAGS case.
      for (const [lo, hi] of ranges) {
        for (const r of this.stmts.fetchMeta.all(mailboxId, lo, hi) as unknown[][]) {
          out.push({
            id: r[0] as number,
            mailboxId,
            uid: r[1] as number,
            modseq: r[2] as number,
            flags: r[3] as number,
            keywords: r[4] ? (JSON.parse(r[4] as string) as string[]) : [],
            internalDate: r[5] as number,
            size: r[6] as number,
            blobId: '',
            prefixLength: 0,
          });
        }
      }
      return out;
    }
    for (const [lo, hi] of ranges) {
      const rows = (opts.changedSince !== undefined ? this.stmts.fetchRangeSince.all(mailboxId, lo, hi, opts.changedSince) : this.stmts.fetchRange.all(mailboxId, lo, hi)) as Row[];
      for (const r of rows) out.push(messageFrom(r));
    }
    return out;
  }
  async storeFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts?: { unchangedSince?: number }): Promise<{ updated: FlagUpdate[]; unchanged: FlagUpdate[]; failed: number[]; modseq: number }> {
    return this.durably(() => this.imap.storeFlags(mailboxId, uids, op, flags, keywords, opts), this.lazyFlagSync);
  }
  async copy(fromMailboxId: number, uids: number[], toMailboxId: number, opts: { move?: boolean } = {}): Promise<CopyOutcome> {
    return this.durably(() => this.imap.copy(fromMailboxId, uids, toMailboxId, opts.move ? (mb, u) => this.expungeSync(mb, u) : null));
  }
  async vanished(mailboxId: number, sinceModseq: number, ranges?: Array<[number, number]>): Promise<number[]> {
    return this.imap.vanished(mailboxId, sinceModseq, ranges);
  }
  async search(mailboxId: number, query: MessageQuery): Promise<SearchHit[]> {
    return this.imap.search(mailboxId, query);
  }
  async sortData(mailboxId: number, uids: number[]): Promise<SortData[]> {
    return this.imap.sortData(mailboxId, uids);
  }

  async list(mailboxId: number): Promise<MessageMeta[]> {
    return (this.stmts.list.all(mailboxId) as Row[]).map(messageFrom);
  }
  async get(mailboxId: number, uid: number): Promise<MessageMeta | null> {
    const r = this.stmts.get.get(mailboxId, uid) as Row | undefined;
    return r ? messageFrom(r) : null;
  }
  /**
   * Parsed MIME structures of recently fetched messages, by blob id (content-addressed, so never stale), least
   * recently used first. FETCH ENVELOPE/BODYSTRUCTURE/BODY[section] of a message read a few times in a row (a
   * client listing a mailbox, then opening messages) reads and parses the stored JSON once: both were ~14% of the
   * event loop in the IMAP mix.
   */
  private readonly mimeCache = new Map<string, unknown>();
  async mime(messageId: number, blobId?: string): Promise<unknown> {
    if (blobId) {
      const hit = this.mimeCache.get(blobId);
      if (hit !== undefined) {
        this.mimeCache.delete(blobId);
        this.mimeCache.set(blobId, hit);
        return hit;
      }
    }
    const json = (blobId ? this.stmts.mimeOfBlob.get(blobId) : this.stmts.mime.get(messageId)) as string | undefined;
    const parsed = json ? (JSON.parse(json) as unknown) : null;
    if (blobId && parsed !== null) {
      this.mimeCache.set(blobId, parsed);
      if (this.mimeCache.size > MIME_CACHE_ENTRIES) this.mimeCache.delete(this.mimeCache.keys().next().value as string);
    }
    return parsed;
  }
  async prefix(messageId: number): Promise<Buffer> {
    const r = this.stmts.prefix.get(messageId) as Row | undefined;
    return (r?.prefix as Buffer | undefined) ?? Buffer.alloc(0);
  }
}

