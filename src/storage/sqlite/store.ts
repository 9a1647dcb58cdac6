/**
 * SQLite backend (better-sqlite3, WAL). Three connections to postern.db and threads around them:
 * - the event loop's (this.db): reads of every session, and the rarer writes (accounts, mailboxes, queue, large
 *   blobs), synchronous = FULL unless committed under deferSync;
 * - the writer thread's (sqlite-writer-thread.ts): the hot message writes (APPEND/SMTP delivery, STORE, EXPUNGE,
 *   COPY/MOVE, \Recent), batched, off the event loop; both take turns through the WriteGate;
 * - the search connection (this.searchDb) with the full-text index database (postern-text.db) attached, which
 *   its own thread writes (text-index-thread.ts).
 *
 * Group commit: message writes commit without an fsync (synchronous = NORMAL: WAL appended, safe against a
 * process crash), and groupCommit.syncCommitted() fdatasyncs the WAL in the libuv pool, which makes every commit
 * so far durable against power loss too; one sync covers every writer's commits. SQLite's NORMAL mode syncs the WAL before each checkpoint and the
 * database after it, so a checkpoint never loses committed frames in between. Several processes (the server
 * and the CLI) may open the same database: WAL plus busy_timeout serialises their writers.
 */
import Database from 'better-sqlite3';
import { mkdirSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { attachTextDb, migrate, textDbFile } from './schema.js';
import { FsBlobStore } from '../blob/fs-blob-store.js';
import { SqliteBlobStore } from './blob-store.js';
import { WriteGate } from './write-gate.js';
import { sharedSync } from './shared-sync.js';
import type { GroupCommit, Store } from '../types.js';
import type { Row } from './rows.js';
import { SqliteDirectory } from './directory.js';
import { SqliteMailboxes } from './mailboxes.js';
import { SqliteMessages } from './messages.js';
import { SqliteQueue } from './queue.js';
import { SqliteBans } from './bans.js';
import { SqliteStsPolicies } from './mta-sts.js';

export class SqliteStore implements Store {
  readonly db: Database.Database;
  /** The second connection, with the full-text index attached as "fts" (SEARCH). */
  readonly searchDb: Database.Database;
  readonly blobs: SqliteBlobStore;
  readonly directory: SqliteDirectory;
  readonly mailboxes: SqliteMailboxes;
  readonly messages: SqliteMessages;
  readonly queue: SqliteQueue;
  readonly bans: SqliteBans;
  readonly stsPolicies: SqliteStsPolicies;
  readonly groupCommit: GroupCommit;
  private readonly gate: WriteGate;

  /** Message bodies up to this size are kept in the database (SqliteBlobStore); larger ones are files. */
  static readonly DEFAULT_INLINE_BLOB_MAX = 128 * 1024;

  constructor(opts: {
    dataDir: string;
    now?: () => number;
    inlineBlobMax?: number;
    fsync?: 'optimized' | 'always';
    /** false: message writes and full-text indexing on the event loop (what happens when the threads fail). */
    threads?: boolean;
  }) {
    mkdirSync(opts.dataDir, { recursive: true });
    const now = opts.now ?? Date.now;
    // The busy timeout applies from the first statement on (journal_mode and the migration check need locks
    // too): the CLI and the server's threads open the database while the server writes.
    this.db = new Database(path.join(opts.dataDir, 'postern.db'), { timeout: 30_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    // Checkpoints (copying the WAL into the database file, with two fsyncs) belong off the event loop: the text
    // index thread runs them when asked (SqliteMessages.checkpointSoon, after group-commit syncs), which under load is
    // several times a second; this connection does it by itself only past 4,000 pages (16 MB of WAL).
    this.db.pragma('wal_autocheckpoint = 4000');
    migrate(this.db);
    // The full-text index is a database of its own (schema.ts attachTextDb), attached only to a second connection
    // that serves SEARCH: a connection with it attached takes its write lock too in every IMMEDIATE transaction.
    this.searchDb = new Database(this.db.name, { timeout: 30_000 });
    attachTextDb(this.searchDb, textDbFile(this.db.name), { create: true });
    this.directory = new SqliteDirectory(this.db, now);
    const db = this.db;
    const wal = `${path.join(opts.dataDir, 'postern.db')}-wal`;
    const datasync = async (): Promise<void> => {
      // fsync works on the inode: any descriptor of the WAL flushes what SQLite's own descriptor wrote. The
      // descriptor stays open (one thread-pool operation per sync instead of three): SQLite resets the WAL in
      // place and deletes it only when the last connection closes, which this store's own connection prevents.
      this.walHandle ??= fsp.open(wal, 'r+');
      let fh: fsp.FileHandle;
      try {
        fh = await this.walHandle;
      } catch (err) {
        this.walHandle = null;
        throw err;
      }
      await fh.datasync();
      this.messages.checkpointSoon();
    };
    const syncCommitted = sharedSync(datasync);
    // Prepared once: db.pragma() prepares its statement on every call (about 1% of the event loop in the IMAP mix).
    const syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
    const syncFull = db.prepare('PRAGMA synchronous = FULL');
    const deferSync = <T>(fn: () => T): T => {
      syncNormal.run();
      try {
        return fn();
      } finally {
        syncFull.run();
      }
    };
    // Event-loop writers and the text index worker take turns (write-gate.ts).
    const gate = (this.gate = new WriteGate());
    this.groupCommit = {
      deferSync,
      deferSyncInTurn: (fn) => gate.write(() => deferSync(fn)),
      syncCommitted,
    };
    this.blobs = new SqliteBlobStore(this.db, new FsBlobStore(path.join(opts.dataDir, 'blobs')), this.groupCommit, opts.inlineBlobMax ?? SqliteStore.DEFAULT_INLINE_BLOB_MAX);
    this.messages = new SqliteMessages(this.db, this.groupCommit, gate, this.searchDb, opts.threads ?? true);
    const turn = <T>(fn: () => T): Promise<T> => gate.write(fn);
    this.mailboxes = new SqliteMailboxes(this.db, this.groupCommit, (mailboxId, uidNext) => this.messages.claimRecent(mailboxId, uidNext), turn);
    this.messages.lazyFlagSync = (opts.fsync ?? 'optimized') === 'optimized';
    this.queue = new SqliteQueue(this.db, now, turn);
    this.bans = new SqliteBans(this.db, turn);
    this.stsPolicies = new SqliteStsPolicies(this.db, turn);
  }

  /**
   * Forgets an orphaned blob's row if it is still unreferenced (true), synchronously, so the caller can delete
   * the file in the same turn of the event loop.
   */
  dropOrphanBlob(id: string): boolean {
    return this.db.transaction(() => {
      if (this.db.prepare('DELETE FROM blobs WHERE id = ? AND refs <= 0').run(id).changes === 0) return false;
      this.db.prepare('DELETE FROM blob_mime WHERE blob_id = ?').run(id);
      // Its full-text row goes with the next pruneDerived() (another database, another thread).
      this.db.prepare('DELETE FROM blob_text WHERE blob_id = ?').run(id);
      return true;
    })();
  }

  /** After a collection pass: the full-text rows of the bodies it deleted (and any a crash left) go too. */
  async pruneDerived(): Promise<number> {
    return this.messages.pruneTextIndex();
  }

  /** Runs fn (synchronous writes on this.db) in its turn with the writer thread (write-gate.ts). */
  writeTurn<T>(fn: () => T): Promise<T> {
    return this.gate.write(fn);
  }

  async orphanBlobs(limit: number): Promise<string[]> {
    return (this.db.prepare('SELECT id FROM blobs WHERE refs <= 0 LIMIT ?').all(limit) as Row[]).map((r) => r.id as string);
  }

  private walHandle: Promise<fsp.FileHandle> | null = null;

  async close(): Promise<void> {
    await this.messages.closeThreads();
    const wal = this.walHandle;
    this.walHandle = null;
    if (wal) await (await wal.catch(() => null))?.close();
    this.blobs.close();
    if (this.searchDb.open) this.searchDb.close();
    if (this.db.open) this.db.close();
  }
}

