/**
 * The SQLite writer thread (client: sqlite-writer.ts). Its own connection to the main database runs, one request
 * at a time:
 * - batches of message writes (message-writes.ts: new messages, flag changes, expunges, copies, \Recent claims,
 *   cleared full-text markers), each batch one IMMEDIATE transaction with a savepoint per write;
 * - PASSIVE WAL checkpoints when the text index thread (which normally runs them) is not available.
 * synchronous = NORMAL: commits append to the WAL without an fsync; the event loop's group commit fdatasyncs the
 * WAL (one descriptor of the same inode) before it answers anything that must be durable. The full-text index is
 * another database and another thread (text-index-thread.ts): this connection does not attach it, so its write
 * transactions never wait for the index's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { MessageWrites, type WriteOp } from './message-writes.js';

interface Request {
  id: number;
  /** Copy the WAL into the database file (PASSIVE: never waits for, nor blocks, the other connections). */
  checkpoint?: boolean;
  ops?: WriteOp[];
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

parentPort!.on('message', (req: Request | 'close') => {
  if (req === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    if (req.ops) {
      writes ??= new MessageWrites(db);
      parentPort!.postMessage({ id: req.id, ok: true, replies: writes.batch(revive(req.ops)) });
    } else {
      if (req.checkpoint) db.pragma('wal_checkpoint(PASSIVE)');
      parentPort!.postMessage({ id: req.id, ok: true });
    }
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message });
  }
});
