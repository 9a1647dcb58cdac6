/**
 * Deferred full-text indexing (core/ingest.ts): the message commits with a durable "text owed" marker, the text
 * is indexed after the commit, SEARCH's catch-up (textIndexed) sees every message, and markers left by a crash
 * are completed from the blobs by the next process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Ingest } from '../../src/core/ingest.js';
import { ChangeBus } from '../../src/core/changes.js';

// Bodies above the inline-indexing limit (core/ingest.ts INLINE_TEXT_MAX), so that the text is deferred.
const filler = 'Nothing much to report in this paragraph, just words to fill a longer message.\r\n'.repeat(70);
const msg = (i: number, word: string) =>
  Buffer.from(`From: a@x.test\r\nTo: b@x.test\r\nSubject: note ${i} ${word}\r\nMessage-ID: <m${i}@x.test>\r\n\r\nBody of message ${i} mentions ${word}.\r\n${filler}`);

async function setup(dir: string) {
  const store = new SqliteStore({ dataDir: dir });
  await store.directory.addDomain('x.test');
  const acc = await store.directory.createAccount({ address: 'b@x.test', domain: 'x.test', passwordHash: 'x', quotaBytes: 0 }, [{ name: 'INBOX', specialUse: null }]);
  const inbox = (await store.mailboxes.get(acc!.id, 'INBOX'))!;
  return { store, inbox };
}

test('text is indexed after the commit; textIndexed() makes every message searchable', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-textix-'));
  try {
    const { store, inbox } = await setup(dir);
    const ingest = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus(), groupCommit: store.groupCommit });
    await Promise.all(Array.from({ length: 30 }, (_, i) => ingest.ingest({ raw: msg(i, i % 3 ? 'walnut' : 'pecan'), targets: [{ mailboxId: inbox.id }] })));
    await ingest.textIndexed();
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'body', value: 'pecan' })).length, 10);
    assert.equal((await store.messages.search(inbox.id, { type: 'header', field: 'subject', value: 'walnut' })).length, 20);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('markers left by a crash (committed, never indexed) are completed from the blobs by the next process', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-textix-'));
  try {
    const first = await setup(dir);
    const inbox = first.inbox;
    let store = first.store;
    const ingest = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus(), groupCommit: store.groupCommit });
    await Promise.all(Array.from({ length: 12 }, (_, i) => ingest.ingest({ raw: msg(i, 'hazelnut'), targets: [{ mailboxId: inbox.id }] })));
    await ingest.textIndexed();
    // What a kill -9 between the commit and the indexing leaves: markers set, no text rows.
    store.db.exec('DELETE FROM text_index; UPDATE blob_text SET pending = 1');
    assert.equal(store.messages.pendingTexts(100).length, 12);
    await store.close();
    store = new SqliteStore({ dataDir: dir });
    const again = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus(), groupCommit: store.groupCommit });
    await again.textIndexed();
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'text', value: 'hazelnut' })).length, 12);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a short message is indexed in its own transaction: searchable as soon as it is committed, no marker left', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-textix-'));
  try {
    const { store, inbox } = await setup(dir);
    const ingest = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus(), groupCommit: store.groupCommit });
    const short = Buffer.from('From: a@x.test\r\nTo: b@x.test\r\nSubject: short one\r\n\r\nThe pistachio harvest.\r\n');
    await ingest.ingest({ raw: short, targets: [{ mailboxId: inbox.id }] });
    assert.equal(store.messages.pendingTexts(100).length, 0);
    assert.equal((await store.messages.search(inbox.id, { type: 'body', value: 'pistachio' })).length, 1);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
