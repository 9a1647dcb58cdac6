import type Database from 'better-sqlite3';
import path from 'node:path';
import { Flag, type AppendOutcome, type BlobText, type CopyOutcome, type FlagOperation, type FlagUpdate, type GroupCommit, type MessageMeta, type MessageQuery, type MessageRepo, type NewMessage, type SearchHit, type SortData } from '../types.js';
import { MESSAGE_COLS, messageFromRaw, type Row } from './rows.js';
import { ImapMessageStore } from './messages-imap.js';
import { MessageWrites, appendItem, type WriteOp, type WriteResult } from './message-writes.js';
import { SqliteWriter } from './sqlite-writer.js';
import { DbThread, ThreadUnavailable, type ThreadReply } from './db-thread.js';
import { textDbFile } from './schema.js';
import { WriteGate } from './write-gate.js';

const SYNC_SOON_MS = 1000;

/** A request to the text index thread (text-index-thread.ts). */
type TextRequest = { texts?: Array<{ row: number; headers: string; body: string }>; blobs?: Array<{ row: number; blobId: string }>; checkpoint?: boolean; prune?: number; after?: number };
const MIME_CACHE_ENTRIES = 2000;
const CHECKPOINT_DELAY_MS = 250;
/** Full-text rows looked at per step of pruneTextIndex (one request to the text index thread, one transaction). */
const PRUNE_CHUNK = 2000;
/** STOREs on up to this many messages are first checked for no change on the event loop (storeFlags). */
const STORE_CHECK_MAX = 256;

export class SqliteMessages implements MessageRepo {
  private readonly stmts;
  private readonly imap: ImapMessageStore;
  /** The write transactions, on this connection: used when the writer thread is not available. */
  private readonly writes: MessageWrites;
  private readonly writer: SqliteWriter;
  private readonly searchImap: ImapMessageStore;
  private readonly textThread: DbThread<TextRequest, ThreadReply & { deleted?: number; last?: number }>;
  constructor(
    private readonly db: Database.Database,
    /**
     * When given, writes commit without an fsync (on the writer thread, or on the event loop with synchronous =
     * NORMAL) and are answered after a shared WAL sync in the thread pool. Without it, writes stay on this
     * connection and commit with its own synchronous setting.
     */
    private readonly gc?: GroupCommit,
    /** The store's turn-taking between event-loop writers and the writer thread (the thread's side is here). */
    private readonly gate: WriteGate = new WriteGate(),
    /**
     * A second connection to the database with the full-text index's database attached (schema.ts attachTextDb):
     * SEARCH runs there, and full-text inserts when the text index thread is not available. Default: `db` itself
     * (which must then have it attached).
     */
    searchDb: Database.Database = db,
    /** false: no writer or text index thread; every transaction runs on the event loop's connections. */
    threads = true,
  ) {
    this.imap = new ImapMessageStore(db);
    this.searchImap = searchDb === db ? this.imap : new ImapMessageStore(searchDb);
    this.writes = new MessageWrites(db, this.imap);
    this.writer = new SqliteWriter(db.name, gate, threads);
    this.textThread = new DbThread('text-index-thread', { textDbFile: textDbFile(db.name), dbFile: db.name, blobDir: path.join(path.dirname(db.name), 'blobs') }, threads);
    this.stmts = {
      fetchRange: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`).raw(),
      fetchRangeSince: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND modseq > ? ORDER BY uid`).raw(),
      // MESSAGE_COLS' order from the covering index messages_meta alone: no blob id, no prefix (messageFromRaw).
      fetchMeta: db.prepare("SELECT id, mailbox_id, uid, modseq, flags, keywords, internal_date, size, '', 0 FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid").raw(),
      firstUnseen: db.prepare(`SELECT uid FROM messages WHERE mailbox_id = ? AND (flags & ${Flag.Seen}) = 0 ORDER BY uid LIMIT 1`).pluck(),
      list: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid`).raw(),
      get: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid = ?`).raw(),
      mime: db.prepare('SELECT b.mime FROM messages m JOIN blob_mime b ON b.blob_id = m.blob_id WHERE m.id = ?').pluck(),
      mimeOfBlob: db.prepare('SELECT mime FROM blob_mime WHERE blob_id = ?').pluck(),
      prefix: db.prepare('SELECT prefix FROM messages WHERE id = ?'),
      // Texts of bodies that no message references any more (expunged before their turn came) are skipped: see
      // pendingRows.
      pendingTextId: db.prepare('SELECT t.id FROM blob_text t JOIN blobs b ON b.id = t.blob_id WHERE t.blob_id = ? AND t.pending = 1 AND b.refs > 0').pluck(),
    };
  }

  /**
   * Commits the items in one transaction (a savepoint of the writer thread's batch) and resolves once it is on
   * disk: the WAL sync is shared with every write committed meanwhile (group commit).
   */
  async appendMany(items: NewMessage[]): Promise<AppendOutcome[]> {
    const out = await this.write<AppendOutcome[]>({ op: 'append', items: items.map(appendItem) }, 'now');
    // Every text is marked pending by the append; the caller indexes deferred ones (core/ingest.ts). The others
    // are indexed before this resolves, as the interface promises (SEARCH finds them at once).
    const now = items.filter((it, i) => it.index && !it.deferText && out[i]?.ok);
    if (now.length) await this.indexTexts(now.map((it) => ({ blobId: it.blobId, headers: it.index!.headers, body: it.index!.body })));
    return out;
  }
  async expunge(mailboxId: number, uids: number[]): Promise<{ uids: number[]; modseq: number }> {
    return this.write({ op: 'expunge', mailboxId, uids }, this.lazyFlagSync ? 'soon' : 'now');
  }
  /** SqliteMailboxes.claimRecent's write (no fsync awaited: a lost claim only shows a message as \Recent again). */
  async claimRecent(mailboxId: number, uidNext: number): Promise<number> {
    return this.write({ op: 'claimRecent', mailboxId, uidNext }, 'soon');
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

  /**
   * Runs one write: on the writer thread when there is one (batched with the other writes queued meanwhile), else
   * in its turn on this connection. `sync`: 'now' resolves once the WAL is on disk, 'soon' schedules that sync
   * (lazyFlagSync).
   */
  private async write<T extends WriteResult>(op: WriteOp, sync: 'now' | 'soon'): Promise<T> {
    const gc = this.gc;
    if (!gc) return this.gate.write(() => this.writes.apply(op) as T);
    if (this.writer.available) {
      try {
        // 'now': the thread answers after its own WAL sync (no round trip through the event loop for it).
        const r = await this.writer.write<T>(op, sync === 'now');
        if (sync === 'soon') this.syncSoon(gc);
        else this.checkpointSoon();
        return r;
      } catch (err) {
        if (!(err instanceof ThreadUnavailable) || !this.db.open) throw err;
      }
    }
    const r = await gc.deferSyncInTurn(() => this.writes.apply(op) as T);
    if (sync === 'soon') this.syncSoon(gc);
    else await gc.syncCommitted();
    return r;
  }

  /**
   * Inserts texts into the full-text index and clears their blobs' pending markers: on the text index thread (its
   * own database; committed and synced before the markers are cleared through the writer), else in one
   * transaction of the search connection, which has both databases.
   */
  async indexTexts(texts: BlobText[]): Promise<void> {
    if (this.textThread.available && this.writer.available) {
      const rows = this.pendingRows(texts);
      if (!rows.length || (await this.indexOnThread({ texts: rows }, rows))) return;
    }
    await this.gate.write(() => this.searchImap.indexTexts(texts));
  }

  /**
   * Indexes blobs still marked pending whose text the caller does not have (core/ingest.ts's database scan): on
   * the text index thread, which reads and parses the bodies itself. False when that thread is not available
   * (the caller then reads the texts and calls indexTexts).
   */
  async indexBlobTexts(blobIds: string[]): Promise<boolean> {
    if (!this.textThread.available || !this.writer.available) return false;
    const rows = this.pendingRows(blobIds.map((blobId) => ({ blobId })));
    return !rows.length || this.indexOnThread({ blobs: rows }, rows);
  }

  /**
   * The items whose blob is still marked pending, once each, with its text row id (= the index's rowid). A body
   * no message references any more is left out: it was expunged before its text's turn (a draft saved again, mail
   * filed to the trash and emptied; in a busy minute, most of what is deleted at once). Its marker stays; blob
   * GC deletes it with the body, and if the same body is stored again first, its new message indexes it.
   */
  private pendingRows<T extends { blobId: string }>(items: T[]): Array<T & { row: number }> {
    const seen = new Set<string>();
    const out: Array<T & { row: number }> = [];
    for (const it of items) {
      if (seen.has(it.blobId)) continue;
      seen.add(it.blobId);
      const row = this.stmts.pendingTextId.get(it.blobId) as number | undefined;
      if (row !== undefined) out.push({ ...it, row });
    }
    return out;
  }

  /**
   * One request to the text index thread (its commit is synced when it answers), then the blobs' markers cleared
   * through the writer. False, with nothing sent, when the thread is not available.
   */
  private async indexOnThread(req: TextRequest, rows: Array<{ blobId: string }>): Promise<boolean> {
    try {
      await this.textThread.request(req);
    } catch (err) {
      if (err instanceof ThreadUnavailable && this.db.open) return false;
      throw err;
    }
    await this.write({ op: 'textsDone', blobIds: rows.map((r) => r.blobId) }, 'soon');
    return true;
  }
  /**
   * Deletes the full-text rows of bodies that are gone (SqliteStore.dropOrphanBlob deletes a body's text row with
   * it), in chunks: on the text index thread, else on the search connection in its turn. Also removes rows a crash
   * left between the two deletions. Returns how many rows went.
   */
  async pruneTextIndex(): Promise<number> {
    let total = 0;
    let after = 0;
    for (;;) {
      let step: { deleted: number; last: number };
      if (this.textThread.available) {
        try {
          const r = await this.textThread.request({ prune: PRUNE_CHUNK, after });
          step = { deleted: r.deleted ?? 0, last: r.last ?? 0 };
        } catch (err) {
          if (!(err instanceof ThreadUnavailable) || !this.db.open) throw err;
          continue;
        }
      } else step = await this.gate.write(() => this.searchImap.pruneTextIndex(PRUNE_CHUNK, after));
      total += step.deleted;
      if (!step.last) return total;
      after = step.last;
    }
  }

  /**
   * Asks for a WAL checkpoint shortly (called after each group-commit sync), off the event loop: on the text index
   * thread, which runs it beside the writer thread's transactions. The event loop's connection checkpoints by
   * itself only past 4,000 pages, the writer's past 8,000 (SqliteStore, sqlite-writer-thread.ts), as backstops.
   * (The text index database checkpoints on its own thread, at its commits.)
   */
  checkpointSoon(): void {
    if (this.checkpointTimer || !this.db.open) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = null;
      if (!this.db.open) return;
      // Beside the writer thread, on the text index thread's second connection; else on the writer thread.
      if (this.textThread.available) void this.textThread.request({ checkpoint: true }).catch(() => undefined);
      else if (this.writer.available) void this.writer.checkpoint().catch(() => undefined);
    }, CHECKPOINT_DELAY_MS);
    this.checkpointTimer.unref();
  }
  private checkpointTimer: NodeJS.Timeout | null = null;

  textIndexOffThread(): boolean {
    return this.textThread.available;
  }
  /** Stops the writer and text index threads (SqliteStore.close). */
  async closeThreads(): Promise<void> {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    await Promise.all([this.writer.stop(), this.textThread.stop()]);
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
      // From the covering index messages_meta: the whole-mailbox FLAGS case.
      for (const [lo, hi] of ranges) for (const r of this.stmts.fetchMeta.all(mailboxId, lo, hi) as unknown[][]) out.push(messageFromRaw(r));
      return out;
    }
    for (const [lo, hi] of ranges) {
      const rows = (opts.changedSince !== undefined ? this.stmts.fetchRangeSince.all(mailboxId, lo, hi, opts.changedSince) : this.stmts.fetchRange.all(mailboxId, lo, hi)) as unknown[][];
      for (const r of rows) out.push(messageFromRaw(r));
    }
    return out;
  }
  async storeFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts?: { unchangedSince?: number }): Promise<{ updated: FlagUpdate[]; unchanged: FlagUpdate[]; failed: number[]; modseq: number }> {
    // A STORE that changes nothing is answered from a read (see storeNoChange); past a few hundred messages the
    // check is left to the writer thread, which reads the rows anyway, rather than run twice on the event loop.
    if (uids.length <= STORE_CHECK_MAX) {
      const same = this.imap.storeNoChange(mailboxId, uids, op, flags, keywords, opts);
      if (same) return same;
    }
    const w: WriteOp = { op: 'store', mailboxId, uids, flagOp: op, flags, keywords };
    if (opts?.unchangedSince !== undefined) w.unchangedSince = opts.unchangedSince;
    return this.write(w, this.lazyFlagSync ? 'soon' : 'now');
  }
  async copy(fromMailboxId: number, uids: number[], toMailboxId: number, opts: { move?: boolean } = {}): Promise<CopyOutcome> {
    return this.write({ op: 'copy', from: fromMailboxId, uids, to: toMailboxId, move: !!opts.move }, 'now');
  }
  async vanished(mailboxId: number, sinceModseq: number, ranges?: Array<[number, number]>): Promise<number[]> {
    return this.imap.vanished(mailboxId, sinceModseq, ranges);
  }
  async search(mailboxId: number, query: MessageQuery): Promise<SearchHit[]> {
    return this.searchImap.search(mailboxId, query);
  }
  async sortData(mailboxId: number, uids: number[]): Promise<SortData[]> {
    return this.imap.sortData(mailboxId, uids);
  }

  async list(mailboxId: number): Promise<MessageMeta[]> {
    return (this.stmts.list.all(mailboxId) as unknown[][]).map(messageFromRaw);
  }
  async get(mailboxId: number, uid: number): Promise<MessageMeta | null> {
    const r = this.stmts.get.get(mailboxId, uid) as unknown[] | undefined;
    return r ? messageFromRaw(r) : null;
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

