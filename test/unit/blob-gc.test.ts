import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { BlobGc } from '../../src/core/blob-gc.js';

const GRACE = 15 * 60_000;
const quiet = { info: () => undefined, warn: () => undefined };

async function setup(inlineBlobMax: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-gc-'));
  const store = new SqliteStore({ dataDir: dir, inlineBlobMax });
  const acc = (await store.directory.createAccount({ address: 'a@example.org', domain: 'example.org', passwordHash: 'x', quotaBytes: 0 }, [{ name: 'INBOX', specialUse: null }]))!;
  const inbox = (await store.mailboxes.get(acc.id, 'INBOX'))!;
  const deliver = async (text: string) => {
    const blob = await store.blobs.put(Buffer.from(text));
    const [o] = await store.messages.appendMany([{ mailboxId: inbox.id, blobId: blob.id, blobSize: blob.size, prefix: Buffer.alloc(0), flags: 0, keywords: [], internalDate: Date.now(), mime: null }]);
    assert.ok(o!.ok);
    return { blobId: blob.id, uid: o!.ok ? o!.message.uid : 0 };
  };
  return { dir, store, inbox, deliver, cleanup: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
}

// Bodies kept in the database (the default for small ones) and bodies kept as files.
for (const [where, inlineBlobMax] of [['in the database', 128 * 1024], ['as files', 0]] as const) {
it(`deletes an unreferenced blob only after it stayed unreferenced for the grace period (bodies ${where})`, async () => {
  const t = await setup(inlineBlobMax);
  try {
    const { blobId, uid } = await t.deliver('Subject: one\r\n\r\nbody one\r\n');
    const keep = await t.deliver('Subject: two\r\n\r\nbody two\r\n');
    await t.store.messages.expunge(t.inbox.id, [uid]);
    let now = Date.now() + GRACE; // past the put-guard of the deliveries above
    const gc = new BlobGc({ store: t.store, files: t.store.blobs, log: quiet }, { graceMs: GRACE, intervalMs: 60_000, now: () => now });
    assert.equal(await gc.runOnce(), 0, 'first sighting only marks it');
    now += GRACE - 1;
    assert.equal(await gc.runOnce(), 0, 'still within the grace period');
    assert.ok(await t.store.blobs.exists(blobId));
    now += 2;
    assert.equal(await gc.runOnce(), 1);
    assert.ok(!(await t.store.blobs.exists(blobId)), 'the expunged message body is gone');
    await assert.rejects(t.store.blobs.get(blobId));
    assert.ok(await t.store.blobs.exists(keep.blobId), 'a referenced body stays');
    assert.match((await t.store.blobs.get(keep.blobId)).toString(), /body two/);
    assert.deepEqual(await t.store.orphanBlobs(10), []);
  } finally {
    await t.cleanup();
  }
});

it(`never deletes a blob that got referenced again or was put again recently (same content arriving; bodies ${where})`, async () => {
  const t = await setup(inlineBlobMax);
  try {
    const a = await t.deliver('Subject: same\r\n\r\nsame body\r\n');
    const b = await t.deliver('Subject: other\r\n\r\nother body\r\n');
    await t.store.messages.expunge(t.inbox.id, [a.uid, b.uid]);
    let now = Date.now() - 2 * GRACE; // the collector first saw both orphans long ago
    const gc = new BlobGc({ store: t.store, files: t.store.blobs, log: quiet }, { graceMs: GRACE, intervalMs: 60_000, now: () => now });
    await gc.runOnce(); // both seen as orphans
    // The same bytes as `a` arrive again and are committed: referenced again.
    const again = await t.deliver('Subject: same\r\n\r\nsame body\r\n');
    assert.equal(again.blobId, a.blobId);
    // `b` is put again but its reference is not committed yet: only the put guard protects it.
    await t.store.blobs.put(Buffer.from('Subject: other\r\n\r\nother body\r\n'));
    now = Date.now() + 1; // the grace period since the first sighting is over
    assert.equal(await gc.runOnce(), 0, 'nothing deleted');
    assert.ok(await t.store.blobs.exists(a.blobId));
    assert.ok(await t.store.blobs.exists(b.blobId));
  } finally {
    await t.cleanup();
  }
});
}
