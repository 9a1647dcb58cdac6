/**
 * The full-text index thread (client: SqliteMessages.indexTexts through db-thread.ts). Its own connection to the
 * text index database (postern-text.db, schema.ts attachTextDb) inserts blob texts into the trigram FTS5 index,
 * one transaction per request. The index has a database file of its own so that these transactions (a 32-text
 * chunk is ~10 ms of trigram indexing) never hold the lock every message write needs; they run beside the writer
 * thread, on whatever core is free.
 *
 * synchronous = FULL: the commit is on disk when this thread answers, and only then does the event loop clear the
 * blobs' pending markers in the main database, so a crash or power cut can at worst index a text twice
 * (INSERT OR REPLACE by rowid), never lose one.
 *
 * It also runs the main database's WAL checkpoints (PASSIVE, on a second connection opened on first use): a
 * checkpoint copies pages into postern.db and fsyncs twice, several milliseconds under load, and runs beside the
 * writer thread's transactions (SQLite lets one checkpointer and one writer work at once) instead of between them.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { parseMessage } from '../../lib/mime/parse.js';
import { messageIndexData } from '../../core/message-index.js';
import { pruneRows } from './schema.js';

/**
 * Background work at a lower CPU priority (nice 10 for this thread only; Linux gives each thread its own): when
 * the cores are busy, the sessions' event loop and the writer thread come first, and indexing takes what is left
 * (it catches up when the load drops; SEARCH catches up first anyway). An unprivileged process may always lower a
 * priority. Elsewhere than Linux the thread keeps the process's priority.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, Math.max(os.getPriority(tid), NICE));
  } catch {
    // no /proc, or not permitted: keep the priority
  }
}
const NICE = 10;
lowerPriority();

interface Request {
  id: number;
  texts?: Array<{ row: number; headers: string; body: string }>;
  /**
   * Texts to extract here from the stored bodies (markers a crash left, texts the event loop's bounded backlog
   * dropped): reading and parsing thousands of bodies after a burst would otherwise cost the event loop seconds.
   */
  blobs?: Array<{ row: number; blobId: string }>;
  /** A PASSIVE checkpoint of the main database's WAL. */
  checkpoint?: boolean;
  /**
   * Delete the index rows whose text row (main.blob_text) is gone, among the first `prune` rows past rowid
   * `after`; answers how many it deleted and the last rowid it looked at (schema.ts pruneRows).
   */
  prune?: number;
  after?: number;
}

const data = workerData as { textDbFile: string; dbFile: string; blobDir: string };
const db = new Database(data.textDbFile);
let main: Database.Database | null = null;
function mainDb(): Database.Database {
  if (!main) {
    main = new Database(data.dbFile);
    main.pragma('busy_timeout = 10000');
  }
  return main;
}

/** A stored body: in the main database (up to [storage] inline_blob_max) or its file (FsBlobStore's layout). */
function blobBytes(id: string): Buffer {
  const inline = mainDb().prepare('SELECT data FROM blob_data WHERE id = ?').pluck().get(id) as Buffer | undefined;
  return inline ?? readFileSync(path.join(data.blobDir, id.slice(0, 2), id));
}

function textOf(blobId: string): { headers: string; body: string } {
  try {
    const raw = blobBytes(blobId);
    const ix = messageIndexData(raw, parseMessage(raw));
    return { headers: ix.headers, body: ix.body };
  } catch {
    return { headers: '', body: '' }; // a body we cannot read: indexed empty rather than retried forever
  }
}
db.pragma('busy_timeout = 10000');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
const insert = db.prepare('INSERT OR REPLACE INTO text_index(rowid, headers, body) VALUES (?, ?, ?)');
const run = db.transaction((texts: NonNullable<Request['texts']>) => {
  for (const t of texts) insert.run(t.row, t.headers, t.body);
});

/**
 * Index rows of bodies that no longer exist (blob garbage collection deletes the blob's text row, core/blob-gc.ts),
 * a chunk at a time. The main database is attached only for this statement: attached, it would be locked by this
 * connection's IMMEDIATE insert transactions too. Safe against concurrent new messages: an index row is inserted
 * only on this thread, for a text row committed before it was asked for, so every index row this statement sees
 * has its text row in the snapshot of the main database it reads, unless that text row was deleted.
 */
function prune(limit: number, after: number): { deleted: number; last: number } {
  db.prepare('ATTACH DATABASE ? AS m').run(data.dbFile);
  try {
    return pruneRows(db, 'text_index', 'm', limit, after);
  } finally {
    db.exec('DETACH DATABASE m');
  }
}

parentPort!.on('message', (req: Request | 'close') => {
  if (req === 'close') {
    main?.close();
    db.close();
    parentPort!.close();
    return;
  }
  try {
    if (req.prune) {
      parentPort!.postMessage({ id: req.id, ok: true, ...prune(req.prune, req.after ?? 0) });
      return;
    }
    if (req.checkpoint) mainDb().pragma('wal_checkpoint(PASSIVE)');
    else if (req.blobs) run.immediate(req.blobs.map((b) => ({ row: b.row, ...textOf(b.blobId) })));
    else run.immediate(req.texts ?? []);
    parentPort!.postMessage({ id: req.id, ok: true });
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message });
  }
});
