/**
 * Deferred full-text indexing (core/ingest.ts): the message commits with a durable "text owed" marker, the text
 * is indexed after the commit, SEARCH's catch-up (textIndexed) sees every message, and markers left by a crash
 * are completed from the blobs by the next process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { ingestFor, inTempDir, testMailboxes } from '../harness/store.js';
import { parseMessage } from '../../src/lib/mime/parse.js';
import { messageIndexData } from '../../src/core/message-index.js';
import { BlobGc } from '../../src/core/blob-gc.js';
import { pruneRows } from '../../src/storage/sqlite/schema.js';

// Bodies of a few KB, as most mail.
const filler = 'Nothing much to report in this paragraph, just words to fill a longer message.\r\n'.repeat(70);
const msg = (i: number, word: string) =>
  Buffer.from(`From: a@x.test\r\nTo: b@x.test\r\nSubject: note ${i} ${word}\r\nMessage-ID: <m${i}@x.test>\r\n\r\nBody of message ${i} mentions ${word}.\r\n${filler}`);

async function setup(dir: string, inlineBlobMax?: number) {
  const store = new SqliteStore({ dataDir: dir, inlineBlobMax });
  const [inbox] = await testMailboxes(store);
  return { store, inbox: inbox! };
}

test('text is indexed after the commit; textIndexed() makes every message searchable', async () => {
  await inTempDir('postern-textix-', async (dir) => {
    const { store, inbox } = await setup(dir);
    const ingest = ingestFor(store);
    await Promise.all(Array.from({ length: 30 }, (_, i) => ingest.ingest({ raw: msg(i, i % 3 ? 'walnut' : 'pecan'), targets: [{ mailboxId: inbox.id }] })));
    await ingest.textIndexed();
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'body', value: 'pecan' })).length, 10);
    assert.equal((await store.messages.search(inbox.id, { type: 'header', field: 'subject', value: 'walnut' })).length, 20);
    await store.close();
  });
});

for (const inline of [undefined, 0]) {
  test(`markers left by a crash (committed, never indexed) are completed from the blobs by the next process (bodies ${inline === 0 ? 'in files' : 'in the database'})`, async () => {
  await inTempDir('postern-textix-', async (dir) => {
    const first = await setup(dir, inline);
    const inbox = first.inbox;
    let store = first.store;
    const ingest = ingestFor(store);
    await Promise.all(Array.from({ length: 12 }, (_, i) => ingest.ingest({ raw: msg(i, 'hazelnut'), targets: [{ mailboxId: inbox.id }] })));
    await ingest.textIndexed();
    // What a kill -9 between the commit and the indexing leaves: markers set, no text rows.
    store.searchDb.exec('DELETE FROM fts.text_index; UPDATE blob_text SET pending = 1');
    assert.equal(store.messages.pendingTexts(100).length, 12);
    await store.close();
    store = new SqliteStore({ dataDir: dir, inlineBlobMax: inline });
    const again = ingestFor(store);
    await again.textIndexed();
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'text', value: 'hazelnut' })).length, 12);
    await store.close();
  });
});
}

test('a message appended through the repository with its index data is searchable when appendMany resolves', async () => {
  await inTempDir('postern-textix-', async (dir) => {
    const { store, inbox } = await setup(dir);
    const raw = Buffer.from('From: a@x.test\r\nTo: b@x.test\r\nSubject: short one\r\n\r\nThe pistachio harvest.\r\n');
    const blob = await store.blobs.put(raw);
    const mime = parseMessage(raw);
    const [o] = await store.messages.appendMany([
      { mailboxId: inbox.id, blobId: blob.id, blobSize: blob.size, prefix: Buffer.alloc(0), flags: 0, keywords: [], internalDate: Date.now(), mime, index: messageIndexData(raw, mime) },
    ]);
    assert.ok(o?.ok);
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'body', value: 'pistachio' })).length, 1);
    await store.close();
  });
});

test('the full-text index is a database of its own: deleted (or migrated from inside postern.db), it is rebuilt from the messages', async () => {
  await inTempDir('postern-textix-', async (dir) => {
    const first = await setup(dir);
    const inbox = first.inbox;
    let store = first.store;
    const ingest = ingestFor(store);
    await Promise.all(Array.from({ length: 9 }, (_, i) => ingest.ingest({ raw: msg(i, i < 4 ? 'macadamia' : 'cashew'), targets: [{ mailboxId: inbox.id }] })));
    await ingest.textIndexed();
    assert.equal((await store.messages.search(inbox.id, { type: 'text', value: 'macadamia' })).length, 4);
    await store.close();
    assert.ok(existsSync(path.join(dir, 'postern-text.db')));
    // A database of schema version 10 kept its index inside postern.db; the migration drops it.
    const old = new Database(path.join(dir, 'postern.db'));
    old.exec("CREATE VIRTUAL TABLE main.text_index USING fts5(headers, body, tokenize = 'trigram case_sensitive 0'); PRAGMA user_version = 10");
    old.close();
    for (const f of ['postern-text.db', 'postern-text.db-wal', 'postern-text.db-shm']) rmSync(path.join(dir, f), { force: true });
    store = new SqliteStore({ dataDir: dir });
    assert.equal(store.db.prepare("SELECT count(*) AS n FROM main.sqlite_master WHERE name = 'text_index'").pluck().get(), 0);
    assert.equal(store.messages.pendingTexts(100).length, 9);
    const again = ingestFor(store);
    await again.textIndexed();
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'text', value: 'macadamia' })).length, 4);
    assert.equal((await store.messages.search(inbox.id, { type: 'header', field: 'subject', value: 'cashew' })).length, 5);
    await store.close();
  });
});

for (const threads of [true, false]) {
  test(`blob garbage collection removes the full-text rows of the bodies it deletes, and rows a crash left (${threads ? 'text index thread' : 'no threads'})`, async () => {
    await inTempDir('postern-textix-', async (dir) => {
      const store = new SqliteStore({ dataDir: dir, threads });
      const [inbox] = await testMailboxes(store);
      const ingest = ingestFor(store);
      const out = await Promise.all(Array.from({ length: 6 }, (_, i) => ingest.ingest({ raw: msg(i, i < 4 ? 'chestnut' : 'almond'), targets: [{ mailboxId: inbox!.id }] })));
      await ingest.textIndexed();
      const rows = () => (store.searchDb.prepare('SELECT count(*) FROM fts.text_index').pluck().get() as number);
      assert.equal(rows(), 6);
      // A row whose body is long gone (a crash between the body's deletion and its index row's).
      store.searchDb.prepare('INSERT INTO fts.text_index(rowid, headers, body) VALUES (?, ?, ?)').run(999_999, 'Subject: ghost', 'ghost text');
      assert.equal(rows(), 7);
      const gone = out.slice(0, 4).map((o) => (o[0]!.ok ? o[0]!.message.uid : 0));
      await store.messages.expunge(inbox!.id, gone);
      let now = Date.now() + 20 * 60_000;
      const gc = new BlobGc({ store, files: store.blobs, log: { info: () => undefined, warn: () => undefined } }, { graceMs: 15 * 60_000, intervalMs: 60_000, now: () => now });
      assert.equal(await gc.runOnce(), 0, 'first sighting');
      assert.equal(rows(), 6, "the first pass of a process removes the crash's leftover");
      now += 16 * 60_000;
      assert.equal(await gc.runOnce(), 4);
      assert.equal(rows(), 2, 'the deleted bodies have no full-text rows left');
      assert.equal((await store.messages.search(inbox!.id, { type: 'body', value: 'almond' })).length, 2);
      assert.equal((await store.messages.search(inbox!.id, { type: 'body', value: 'chestnut' })).length, 0);
      // The same text arriving again is indexed again, under a text row of its own.
      await ingest.ingest({ raw: msg(0, 'chestnut'), targets: [{ mailboxId: inbox!.id }] });
      await ingest.textIndexed();
      assert.equal((await store.messages.search(inbox!.id, { type: 'body', value: 'chestnut' })).length, 1);
      await store.close();
    });
  });
}

test('pruning walks the index once with a cursor, a step at a time, deleting only rows without a text row', () => {
  const db = new Database(':memory:');
  try {
    db.exec('CREATE TABLE blob_text(id INTEGER PRIMARY KEY); CREATE TABLE idx(x)');
    for (let i = 1; i <= 10; i++) db.prepare('INSERT INTO idx(rowid, x) VALUES (?, ?)').run(i, `t${i}`);
    for (const id of [2, 5, 6, 9]) db.prepare('INSERT INTO blob_text(id) VALUES (?)').run(id);
    const steps: Array<{ deleted: number; last: number }> = [];
    let after = 0;
    do {
      const s = pruneRows(db, 'idx', 'main', 3, after);
      steps.push(s);
      after = s.last;
    } while (after);
    assert.deepEqual(steps, [
      { deleted: 2, last: 3 },
      { deleted: 1, last: 6 },
      { deleted: 2, last: 9 },
      { deleted: 1, last: 0 },
    ]);
    assert.deepEqual(db.prepare('SELECT rowid FROM idx ORDER BY rowid').pluck().all(), [2, 5, 6, 9]);
  } finally {
    db.close();
  }
});

for (const threads of [true, false]) {
  test(`texts of messages expunged before their turn are not indexed; the same body stored again is (${threads ? 'text index thread' : 'no threads'})`, async () => {
    await inTempDir('postern-textix-', async (dir) => {
      const store = new SqliteStore({ dataDir: dir, threads });
      const [inbox] = await testMailboxes(store);
      const rows = () => store.searchDb.prepare('SELECT count(*) FROM fts.text_index').pluck().get() as number;
      // Committed with their texts deferred (as ingest does), the indexing not done yet.
      const append = async (i: number, word: string) => {
        const raw = msg(i, word);
        const blob = await store.blobs.put(raw);
        const mime = parseMessage(raw);
        const index = messageIndexData(raw, mime);
        const [o] = await store.messages.appendMany([
          { mailboxId: inbox!.id, blobId: blob.id, blobSize: blob.size, prefix: Buffer.alloc(0), flags: 0, keywords: [], internalDate: Date.now(), mime, index, deferText: true },
        ]);
        assert.ok(o?.ok);
        return { uid: o.message.uid, text: { blobId: blob.id, headers: index.headers, body: index.body } };
      };
      const drafts = await Promise.all([0, 1, 2].map((i) => append(i, 'draftword')));
      const kept = await append(3, 'keptword');
      await store.messages.expunge(inbox!.id, drafts.map((d) => d.uid));
      // The indexer's turn: the held texts (memory backlog), then the database scan (texts dropped or left by a crash).
      await store.messages.indexTexts([...drafts.map((d) => d.text), kept.text]);
      assert.equal(rows(), 1, 'only the text of the message still there');
      assert.deepEqual(store.messages.pendingTexts(100), [], 'the scan does not read back bodies nobody references');
      assert.equal((await store.messages.search(inbox!.id, { type: 'body', value: 'keptword' })).length, 1);
      // The body of an expunged draft stored again before blob GC: its new message is indexed.
      const again = await append(0, 'draftword');
      assert.equal(store.messages.pendingTexts(100).length, 1);
      await store.messages.indexTexts([again.text]);
      assert.equal(rows(), 2);
      assert.deepEqual((await store.messages.search(inbox!.id, { type: 'body', value: 'draftword' })).map((h) => h.uid), [again.uid]);
      await store.close();
    });
  });
}
