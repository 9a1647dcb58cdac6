/**
 * The SQLite writer (storage/sqlite/message-writes.ts, sqlite-writer*.ts, text-index-thread.ts): a batch of writes
 * is one transaction in which a failing write is undone alone, and the store behaves the same with its threads as
 * without them (the path taken when a thread cannot start or dies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { MessageWrites } from '../../src/storage/sqlite/message-writes.js';
import { ingestFor, inTempDir, testMailboxes } from '../harness/store.js';
import { Flag, type NewMessage } from '../../src/storage/types.js';

const raw = (i: number, word: string) => Buffer.from(`From: a@x.test\r\nTo: b@x.test\r\nSubject: note ${i}\r\nMessage-ID: <w${i}@x.test>\r\n\r\nThis one is about ${word}.\r\n`);

async function setup(dir: string, threads: boolean) {
  const store = new SqliteStore({ dataDir: dir, threads });
  const [inbox, archive] = await testMailboxes(store, ['INBOX', 'Archive']);
  return { store, inbox: inbox!, archive: archive! };
}

test('a batch is one transaction in which a failing write is undone alone', async () => {
  await inTempDir('postern-writer-', async (dir) => {
    const { store, inbox } = await setup(dir, false);
    const writes = new MessageWrites(store.db);
    const item = (i: number): NewMessage => {
      const body = raw(i, 'figs');
      return { mailboxId: inbox.id, blobId: store.blobs.idOf!(body), blobSize: body.length, blobData: body, prefix: Buffer.alloc(0), flags: 0, keywords: [], internalDate: Date.now(), mime: null };
    };
    // The second append fails after it has bumped the mailbox's counters (keywords is not a list).
    const broken = { ...item(2), keywords: null as unknown as string[] };
    const replies = writes.batch([
      { op: 'append', items: [item(1)] },
      { op: 'append', items: [broken] },
      { op: 'store', mailboxId: inbox.id, uids: [1], flagOp: 'add', flags: Flag.Flagged, keywords: [] },
    ]);
    assert.deepEqual(
      replies.map((r) => r.ok),
      [true, false, true],
    );
    const mb = (await store.mailboxes.getById(inbox.id))!;
    assert.equal(mb.messageCount, 1, 'the failed append left no trace in the counters');
    assert.equal(mb.uidNext, 2);
    const msgs = await store.messages.list(inbox.id);
    assert.deepEqual(
      msgs.map((m) => [m.uid, m.flags & Flag.Flagged]),
      [[1, Flag.Flagged]],
    );
    await store.close();
  });
});

for (const threads of [true, false]) {
  test(`appends, flags, search, copy and expunge give the same results ${threads ? 'through the writer and text index threads' : 'on the event loop (no threads)'}`, async () => {
    await inTempDir('postern-writer-', async (dir) => {
      const { store, inbox, archive } = await setup(dir, threads);
      const ingest = ingestFor(store);
      const out = await Promise.all([1, 2, 3, 4].map((i) => ingest.ingest({ raw: raw(i, i % 2 ? 'quince' : 'medlar'), targets: [{ mailboxId: inbox.id }] })));
      assert.deepEqual(out.map((o) => (o[0]!.ok ? o[0]!.message.uid : 0)).sort(), [1, 2, 3, 4]);
      const st = await store.messages.storeFlags(inbox.id, [2, 3], 'add', Flag.Seen, ['$Important']);
      assert.deepEqual(
        st.updated.map((u) => u.uid),
        [2, 3],
      );
      await ingest.textIndexed();
      assert.deepEqual(
        (await store.messages.search(inbox.id, { type: 'body', value: 'quince' })).map((h) => h.uid),
        [1, 3],
      );
      const cp = await store.messages.copy(inbox.id, [3, 4], archive.id, { move: true });
      assert.ok(cp.ok);
      assert.deepEqual(cp.pairs, [
        [3, 1],
        [4, 2],
      ]);
      const ex = await store.messages.expunge(inbox.id, [1]);
      assert.deepEqual(ex.uids, [1]);
      assert.deepEqual(await store.messages.uids(inbox.id), [2]);
      const moved = await store.messages.list(archive.id);
      assert.deepEqual(
        moved.map((m) => [m.uid, m.flags & Flag.Seen, m.keywords]),
        [
          [1, Flag.Seen, ['$Important']],
          [2, 0, []],
        ],
      );
      assert.deepEqual(
        (await store.messages.search(archive.id, { type: 'text', value: 'medlar' })).map((h) => h.uid),
        [2],
      );
      const first = await store.mailboxes.claimRecent(archive.id, 3);
      assert.equal(first, 1);
      assert.equal(await store.mailboxes.claimRecent(archive.id, 3), 3, 'claimed once');
      const mb = (await store.mailboxes.getById(inbox.id))!;
      assert.equal(mb.messageCount, 1);
      await store.close();
    });
  });
}

test('a flag change batched with a new message is answered at commit, before that message is on disk', async () => {
  await inTempDir('postern-writer-', async (dir) => {
    const { store, inbox } = await setup(dir, true);
    const item = (i: number): NewMessage => {
      const body = raw(i, 'plums');
      return { mailboxId: inbox.id, blobId: store.blobs.idOf!(body), blobSize: body.length, blobData: body, prefix: Buffer.alloc(0), flags: 0, keywords: [], internalDate: Date.now(), mime: null };
    };
    await store.messages.appendMany([item(1)]);
    const order: string[] = [];
    // The first write goes to the thread alone; the next two queue meanwhile and go as one batch.
    const first = store.messages.storeFlags(inbox.id, [1], 'add', Flag.Answered, []).then(() => order.push('first store'));
    const append = store.messages.appendMany([item(2)]).then((out) => (order.push('append'), out));
    const flag = store.messages.storeFlags(inbox.id, [1], 'add', Flag.Flagged, []).then(() => order.push('store'));
    const [, out] = await Promise.all([first, append, flag]);
    assert.ok(out[0]!.ok);
    // STORE (fsync = "optimized") is answered once committed; the new message once its batch's WAL sync is done.
    assert.deepEqual(order, ['first store', 'store', 'append']);
    const msgs = await store.messages.list(inbox.id);
    assert.deepEqual(
      msgs.map((m) => [m.uid, m.flags & (Flag.Answered | Flag.Flagged)]),
      [
        [1, Flag.Answered | Flag.Flagged],
        [2, 0],
      ],
    );
    await store.close();
  });
});
