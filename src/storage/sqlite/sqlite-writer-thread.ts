/**
 * The SQLite writer thread (client: sqlite-writer.ts). Its own connection to the main database runs, one request
 * at a time:
 * - batches of message writes (message-writes.ts: new messages, flag changes, expunges, copies, \Recent claims,
 *   cleared full-text markers), each batch one IMMEDIATE transaction with a savepoint per write;
 * - PASSIVE WAL checkpoints when the text index thread (which normally runs them) is not available.
 * synchronous = NORMAL: commits append to the WAL without an fsync; a batch with a write that must be durable
 * before its answer (new messages, COPY/MOVE, and everything with [storage] fsync = "always") is answered after
 * an fdatasync of the WAL that this thread runs after the commit (see datasync). The full-text index is
 * another database and another thread (text-index-thread.ts): this connection does not attach it, so its write
 * transactions never wait for the index's.
 */
import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { MessageWrites, type WriteOp } from './message-writes.js';

interface Request {
  id: number;
  /** Copy the WAL into the database file (PASSIVE: never waits for, nor blocks, the other connections). */
  checkpoint?: boolean;
  ops?: WriteOp[];
  /** Answer only once the batch is on disk (a WAL fdatasync that started after its commit). */
  sync?: boolean;
}

const db = new Database((workerData as { dbFile: string }).dbFile);
db.pragma('busy_timeout = 10000');
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
// Checkpoints run on the text index thread, beside this one (SqliteMessages.checkpointSoon after group-commit
// syncs); this connection checkpoints by itself only when those fall far behind (32 MB of WAL).
db.pragma('wal_autocheckpoint = 8000');
let writes: MessageWrites | null = null;

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** Structured clone turns Buffers into plain Uint8Arrays; SQLite binds either, the results carry lengths only. */
function revive(ops: WriteOp[]): WriteOp[] {
  for (const op of ops) {
    if (op.op !== 'append') continue;
    for (const it of op.items) {
      it.prefix = asBuffer(it.prefix);
      if (it.blobData) it.blobData = asBuffer(it.blobData);
    }
  }
  return ops;
}

/**
 * Group commit on this thread: a batch that must be durable is answered after an fdatasync of the WAL, run here,
 * right after the commit (the batch's other writes are answered before it). The writes that queue meanwhile form
 * the next batch, one commit and one sync for all of them. The sync used to run in the thread pool while this
 * thread went on with the next batch; on a 2-vCPU VM each hand-over wakes a sleeping thread (50-100 us each way),
 * and the IMAP mix ran ~5% faster with the sync here (docs/performance.md, fifth round).
 * (One descriptor of the WAL, kept open: SQLite resets the file in place and deletes it only when the last
 * connection closes, and the event loop's connection stays open while this thread runs.)
 */
const walFile = `${(workerData as { dbFile: string }).dbFile}-wal`;
let walFd: number | null = null;
function datasync(): void {
  walFd ??= openSync(walFile, 'r+');
  fdatasyncSync(walFd);
}

parentPort!.on('message', (req: Request | 'close') => {
  if (req === 'close') {
    db.close();
    if (walFd !== null) closeSync(walFd);
    parentPort!.close();
    return;
  }
  try {
    if (req.ops) {
      writes ??= new MessageWrites(db);
      const replies = writes.batch(revive(req.ops));
      if (!req.sync) parentPort!.postMessage({ id: req.id, ok: true, replies });
      else {
        // Committed: the event loop may send the next batch (and its own writers may go) while this one syncs, and
        // answers the batch's writes that need no sync (a STORE batched with an APPEND does not wait for its disk).
        parentPort!.postMessage({ id: req.id, ok: true, progress: true, replies });
        try {
          datasync();
          parentPort!.postMessage({ id: req.id, ok: true });
        } catch (err) {
          parentPort!.postMessage({ id: req.id, ok: false, error: `committed but not synced to disk: ${(err as Error).message}` });
        }
      }
    } else {
      if (req.checkpoint) db.pragma('wal_checkpoint(PASSIVE)');
      parentPort!.postMessage({ id: req.id, ok: true });
    }
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message });
  }
});
