/**
 * Schema migrations that change indexes: the index is gone after the migration, and the queries it could have
 * served still answer the same (here from the covering index messages_meta).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Flag } from '../../src/storage/types.js';
import { ingestFor, inTempDir, testMailboxes } from '../harness/store.js';

const indexes = (store: SqliteStore) => store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'").pluck().all() as string[];

test('migration 12 drops messages_flags; flag searches and the first unseen message are unchanged', async () => {
  await inTempDir('postern-schema-', async (dir) => {
    let store = new SqliteStore({ dataDir: dir });
    const [inbox] = await testMailboxes(store);
    const ingest = ingestFor(store);
    for (let i = 0; i < 8; i++) await ingest.ingest({ raw: Buffer.from(`From: a@x.test\r\nSubject: n${i}\r\n\r\nbody ${i}\r\n`), targets: [{ mailboxId: inbox!.id, flags: i < 3 ? Flag.Seen : 0 }] });
    assert.ok(!indexes(store).includes('messages_flags'));
    // A database of schema version 11 still has the index.
    store.db.exec('CREATE INDEX messages_flags ON messages(mailbox_id, flags); PRAGMA user_version = 11');
    await store.close();
    store = new SqliteStore({ dataDir: dir });
    assert.ok(!indexes(store).includes('messages_flags'));
    assert.ok(indexes(store).includes('messages_meta'));
    assert.equal(await store.messages.firstUnseen(inbox!.id), 4);
    assert.deepEqual((await store.messages.search(inbox!.id, { type: 'flag', mask: Flag.Seen, set: false })).map((h) => h.uid), [4, 5, 6, 7, 8]);
    assert.deepEqual((await store.messages.search(inbox!.id, { type: 'flag', mask: Flag.Seen, set: true })).map((h) => h.uid), [1, 2, 3]);
    await store.close();
  });
});
