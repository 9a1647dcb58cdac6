/**
 * Where message bodies live (storage/sqlite/blob-store.ts): up to [storage] inline_blob_max in the database,
 * written by the ingest transaction itself; larger ones as files. Reads (whole, ranges) see the same bytes
 * either way, identical bodies are stored once, and a reopened store reads what the previous one wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Ingest } from '../../src/core/ingest.js';
import { ChangeBus } from '../../src/core/changes.js';
import { testMailboxes } from '../harness/store.js';

const body = (kb: number, tag: string) => {
  const line = `${tag} lorem ipsum dolor sit amet, consectetur adipiscing elit ${'x'.repeat(20)}\r\n`;
  return Buffer.from(`From: a@x.test\r\nTo: b@x.test\r\nSubject: ${tag}\r\n\r\n${line.repeat(Math.ceil((kb * 1024) / line.length))}`);
};

async function open(dir: string, inlineBlobMax?: number) {
  const store = new SqliteStore({ dataDir: dir, inlineBlobMax });
  const ingest = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus() });
  return { store, ingest };
}

test('small bodies are stored in the database by the ingest transaction, large ones as files; reads are the same', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-blobs-'));
  try {
    const { store, ingest } = await open(dir, 64 * 1024);
    const [inbox] = await testMailboxes(store);
    const small = body(4, 'small');
    const large = body(100, 'large');
    const [a, b, c] = await Promise.all([
      ingest.ingest({ raw: small, targets: [{ mailboxId: inbox.id }] }),
      ingest.ingest({ raw: large, targets: [{ mailboxId: inbox.id }] }),
      ingest.ingest({ raw: small, targets: [{ mailboxId: inbox.id }] }), // same bytes again: one body, two messages
    ]);
    const ids = [a, b, c].map((o) => (o![0]!.ok ? o![0]!.message.blobId : ''));
    assert.equal(ids[0], ids[2]);
    assert.ok(!existsSync(store.blobs.path(ids[0]!)), 'the small body is not a file');
    assert.ok(existsSync(store.blobs.path(ids[1]!)), 'the large body is a file');
    assert.deepEqual(await store.blobs.get(ids[0]!), small);
    assert.deepEqual(await store.blobs.get(ids[1]!), large);
    assert.deepEqual(await store.blobs.read(ids[0]!, 10, 500), small.subarray(10, 500));
    assert.deepEqual(await store.blobs.read(ids[1]!, 1000, 90_000), large.subarray(1000, 90_000));
    assert.deepEqual(await store.blobs.read(ids[0]!, small.length - 5, small.length + 100), small.subarray(small.length - 5), 'a range past the end is cut');
    await store.close();

    const db = new Database(path.join(dir, 'postern.db'), { readonly: true });
    assert.equal((db.prepare('SELECT count(*) FROM blob_data').pluck().get() as number), 1, 'the shared small body is stored once');
    assert.equal((db.prepare('SELECT refs FROM blobs WHERE id = ?').pluck().get(ids[0]) as number), 2);
    db.close();

    // A new process reads what the previous one committed.
    const again = await open(dir, 64 * 1024);
    assert.deepEqual(await again.store.blobs.get(ids[0]!), small);
    assert.ok(await again.store.blobs.exists(ids[0]!));
    assert.ok(!(await again.store.blobs.exists('0'.repeat(64))));
    await again.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inline_blob_max = 0 keeps every body as a file; put() of a small body outside ingest is garbage-collectable', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-blobs-'));
  try {
    const { store, ingest } = await open(dir, 0);
    const [inbox] = await testMailboxes(store);
    const [o] = await ingest.ingest({ raw: body(2, 'file'), targets: [{ mailboxId: inbox.id }] });
    assert.ok(o!.ok && existsSync(store.blobs.path(o!.message.blobId)));
    await store.close();

    const inl = await open(dir, 64 * 1024);
    const put = await inl.store.blobs.put(body(1, 'queued')); // as the outbound queue does before its entry commits
    assert.ok(!existsSync(inl.store.blobs.path(put.id)));
    assert.deepEqual(await inl.store.orphanBlobs(10), [put.id], 'unreferenced until its entry commits: the collector can find it');
    await inl.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('migration 10 moves the MIME structure of existing messages from their rows to one row per blob', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-blobs-'));
  try {
    const { store, ingest } = await open(dir);
    const [inbox] = await testMailboxes(store);
    const [o] = await ingest.ingest({ raw: body(3, 'mimed'), targets: [{ mailboxId: inbox.id }] });
    assert.ok(o!.ok);
    const expected = await store.messages.mime(o!.message.id);
    assert.ok(expected && typeof expected === 'object');
    // What a database written before migration 10 holds: the structure in the message row, no blob_mime row.
    store.db.exec(`UPDATE messages SET mime = (SELECT mime FROM blob_mime); DROP TABLE blob_mime; PRAGMA user_version = 9`);
    await store.close();

    const again = await open(dir);
    assert.deepEqual(await again.store.messages.mime(o!.message.id), expected);
    assert.deepEqual(await again.store.messages.mime(o!.message.id, o!.message.blobId), expected);
    assert.equal(again.store.db.prepare('SELECT count(*) FROM messages WHERE mime IS NOT NULL').pluck().get(), 0, 'rows are small again');
    await again.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
