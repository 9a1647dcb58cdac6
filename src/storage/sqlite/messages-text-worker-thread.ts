/**
 * Worker thread of the deferred full-text indexer (core/ingest.ts TextIndexer -> SqliteMessages.indexTexts):
 * inserts blob texts into the trigram FTS5 index on its own connection, so the 3-6 ms a 64 KB text costs is
 * spent on another core instead of the event loop that serves every session. One request at a time; each is one
 * short IMMEDIATE transaction that clears the blobs' pending markers and inserts their text (the same SQL as
 * ImapMessageStore.indexTexts). synchronous = NORMAL: the index is derived data, made durable by the next
 * group-commit fsync of the WAL, and its marker is cleared in the same transaction.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface Request {
  id: number;
  texts?: Array<{ blobId: string; headers: string; body: string }>;
  /** Copy the WAL into the database file (PASSIVE: never waits for, nor blocks, the other connections). */
  checkpoint?: boolean;
}

const db = new Database((workerData as { dbFile: string }).dbFile);
db.pragma('busy_timeout = 10000');
db.pragma('synchronous = NORMAL');
// This thread runs the WAL checkpoints while it is active (see SqliteStore: the event loop's connection waits for
// 4,000 pages): their writes and fsyncs then never stall the sessions.
db.pragma('wal_autocheckpoint = 1000');
const done = db.prepare('UPDATE blob_text SET pending = 0 WHERE blob_id = ? AND pending = 1 RETURNING id').pluck();
const insert = db.prepare('INSERT INTO text_index(rowid, headers, body) VALUES (?, ?, ?)');
const run = db.transaction((texts: NonNullable<Request['texts']>) => {
  for (const t of texts) {
    const id = done.get(t.blobId) as number | undefined;
    if (id !== undefined) insert.run(id, t.headers, t.body);
  }
});

parentPort!.on('message', (req: Request | 'close') => {
  if (req === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    if (req.checkpoint) db.pragma('wal_checkpoint(PASSIVE)');
    else run.immediate(req.texts ?? []);
    parentPort!.postMessage({ id: req.id, ok: true });
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message });
  }
});
