/**
 * The SQLite store's blob store: message bodies up to `inlineLimit` bytes live in the database (table blob_data),
 * larger ones are files (FsBlobStore). Both are content-addressed by the SHA-256 of the bytes, so a blob's id does
 * not say where it is; reads try the table first (one indexed lookup, no thread-pool round trip) and fall back to
 * the file.
 *
 * Why bodies in the database (as Stalwart keeps blobs in its data store by default): a file blob is made durable
 * by its own synchronous write (O_DSYNC) plus a directory fsync, about 0.5 ms of disk latency per message that no
 * other message shares; an inline body is written in the ingest transaction that references it
 * (NewMessage.blobData, storage/sqlite/messages.ts), and the group commit's single WAL fdatasync makes the whole
 * batch durable. SQLite's own measurements put the crossover between "faster in the database" and "faster as a
 * file" near 100 KB for reads; writes favour the database further because of the per-file sync.
 * Reads of a byte range take `substr()` of the value, which loads the whole value: fine up to the inline limit
 * (kept well below the size where that would matter, see [storage] inline_blob_max).
 *
 * Garbage collection (core/blob-gc.ts) is unchanged: a blob whose `blobs.refs` fell to 0 is deleted after the
 * grace period, here from the table and the file system both (deleteSync), synchronously in one turn.
 */
import type Database from 'better-sqlite3';
import type { BlobStore, GroupCommit } from '../types.js';
import { contentId, type FsBlobStore } from '../blob/fs-blob-store.js';

export class SqliteBlobStore implements BlobStore {
  private readonly stmts;

  constructor(
    private readonly db: Database.Database,
    readonly files: FsBlobStore,
    private readonly gc: GroupCommit,
    /** Bodies of at most this many bytes are kept in the database; 0 = every body is a file. */
    readonly inlineLimit: number,
  ) {
    this.stmts = {
      get: db.prepare('SELECT data FROM blob_data WHERE id = ?').pluck(),
      range: db.prepare('SELECT substr(data, ?, ?) FROM blob_data WHERE id = ?').pluck(),
      has: db.prepare('SELECT 1 FROM blob_data WHERE id = ?').pluck(),
      put: db.prepare('INSERT OR IGNORE INTO blob_data(id, data) VALUES (?, ?)'),
      row: db.prepare('INSERT OR IGNORE INTO blobs(id, size, refs) VALUES (?, ?, 0)'),
      del: db.prepare('DELETE FROM blob_data WHERE id = ?'),
    };
  }

  idOf(data: Buffer): string {
    return contentId(data);
  }

  /**
   * Stores a blob that a reference will point to later (the outbound queue's entry). An inline one is committed
   * with a `blobs` row of refs 0 (so that garbage collection finds it if the reference never comes), made durable
   * by the shared WAL sync; a larger one is a file.
   */
  async put(data: Buffer): Promise<{ id: string; size: number }> {
    if (data.length > this.inlineLimit) return this.files.put(data);
    const id = this.idOf(data);
    this.files.notePut(id); // one record of recent puts for both places (see FsBlobStore.putRecently)
    const s = this.stmts;
    await this.gc.deferSyncInTurn(() =>
      this.db
        .transaction(() => {
          s.put.run(id, data);
          s.row.run(id, data.length);
        })
        .immediate(),
    );
    await this.gc.syncCommitted();
    return { id, size: data.length };
  }

  async get(id: string): Promise<Buffer> {
    const d = this.stmts.get.get(id) as Buffer | undefined;
    return d ?? this.files.get(id);
  }

  async read(id: string, start: number, end: number): Promise<Buffer> {
    const len = Math.max(0, end - start);
    const d = this.stmts.range.get(start + 1, len, id) as Buffer | undefined;
    return d ?? this.files.read(id, start, end);
  }

  path(id: string): string {
    return this.files.path(id);
  }

  async exists(id: string): Promise<boolean> {
    return this.stmts.has.get(id) !== undefined || this.files.exists(id);
  }

  async delete(id: string): Promise<void> {
    this.stmts.del.run(id);
    await this.files.delete(id);
  }

  putRecently(id: string, withinMs: number, now = Date.now()): boolean {
    return this.files.putRecently(id, withinMs, now);
  }

  prunePuts(olderThanMs: number, now = Date.now()): void {
    this.files.prunePuts(olderThanMs, now);
  }

  /** Synchronous removal from both places (garbage collection's check-and-delete runs in one turn). */
  deleteSync(id: string): void {
    this.stmts.del.run(id);
    this.files.deleteSync(id);
  }

  cleanTemp(): Promise<number> {
    return this.files.cleanTemp();
  }

  close(): void {
    this.files.close();
  }
}
