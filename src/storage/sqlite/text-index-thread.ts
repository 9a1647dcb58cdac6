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
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface Request {
  id: number;
  texts: Array<{ row: number; headers: string; body: string }>;
}

const db = new Database((workerData as { textDbFile: string }).textDbFile);
db.pragma('busy_timeout = 10000');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
const insert = db.prepare('INSERT OR REPLACE INTO text_index(rowid, headers, body) VALUES (?, ?, ?)');
const run = db.transaction((texts: Request['texts']) => {
  for (const t of texts) insert.run(t.row, t.headers, t.body);
});

parentPort!.on('message', (req: Request | 'close') => {
  if (req === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    run.immediate(req.texts);
    parentPort!.postMessage({ id: req.id, ok: true });
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message });
  }
});
