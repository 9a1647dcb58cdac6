import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { BlobGc } from '../../src/core/blob-gc.js';

const GRACE = 15 * 60_000;
const quiet = { info: () => undefined, warn: () => undefined };

async function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-gc-'));
  const store = new SqliteStore({ dataDir: dir });
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

it('deletes an unreferenced blob only after it stayed unreferenced for the grace period', async () => {
  const t = await setup();
  try {
    const { blobId, uid } = await t.deliver('Subject: one\r\n\r\nbody one\r\n');
    const keep = await t.deliver('Subject: two\r\n\r\nbody two\r\n');
    await t.store.messages.expunge(t.inbox.id, [uid]);
    let now = Date.now() + GRACE; // past the put-guard of the deliveries above
    const gc = new BlobGc({ store: t.store, files: t.store.blobs, log: quiet }, { graceMs: GRACE, intervalMs: 60_000, now: () => now });
    assert.equal(await gc.runOnce(), 0, 'first sighting only marks it');
    now += GRACE - 1;
    assert.equal(await gc.runOnce(), 0, 'still within the grace period');
    assert.ok(existsSync(t.store.blobs.path(blobId)));
    now += 2;
    assert.equal(await gc.runOnce(), 1);
    assert.ok(!existsSync(t.store.blobs.path(blobId)), 'the expunged message file is gone');
    assert.ok(existsSync(t.store.blobs.path(keep.blobId)), 'a referenced file stays');
    assert.deepEqual(await t.store.orphanBlobs(10), []);
  } finally {
    await t.cleanup();
  }
});

it('never deletes a blob that got referenced again or was put again recently (same content arriving)', async () => {
  const t = await setup();
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
    assert.ok(existsSync(t.store.blobs.path(a.blobId)));
    assert.ok(existsSync(t.store.blobs.path(b.blobId)));
  } finally {
    await t.cleanup();
  }
});
