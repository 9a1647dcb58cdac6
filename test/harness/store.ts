/** Reads what a user's mailbox holds, through the same storage code the server uses. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ingest } from '../../src/core/ingest.js';
import { ChangeBus } from '../../src/core/changes.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import type { Mailbox, QueueRecipient } from '../../src/storage/types.js';
import { waitFor } from './fake-mta.js';

/** The domain x.test and its account b@x.test with these mailboxes, in the order given (INBOX by default). */
export async function testMailboxes(store: SqliteStore, names: string[] = ['INBOX']): Promise<Mailbox[]> {
  await store.directory.addDomain('x.test');
  const acc = (await store.directory.createAccount({ address: 'b@x.test', domain: 'x.test', passwordHash: 'x', quotaBytes: 0 }, names.map((name) => ({ name, specialUse: null }))))!;
  return Promise.all(names.map(async (n) => (await store.mailboxes.get(acc.id, n))!));
}

export interface StoredMessage {
  uid: number;
  size: number;
  raw: string;
}

export async function mailboxMessages(dataDir: string, address: string, mailbox = 'INBOX'): Promise<StoredMessage[]> {
  const store = new SqliteStore({ dataDir });
  try {
    const acc = await store.directory.getAccount(address);
    if (!acc) throw new Error(`no account ${address}`);
    const mb = await store.mailboxes.get(acc.id, mailbox);
    if (!mb) throw new Error(`no mailbox ${mailbox}`);
    const out: StoredMessage[] = [];
    for (const m of await store.messages.list(mb.id)) {
      const prefix = await store.messages.prefix(m.id);
      const body = await store.blobs.get(m.blobId);
      out.push({ uid: m.uid, size: m.size, raw: Buffer.concat([prefix, body]).toString('utf8') });
    }
    return out;
  } finally {
    await store.close();
  }
}

export async function queueEntries(dataDir: string) {
  const store = new SqliteStore({ dataDir });
  try {
    return await store.queue.list();
  } finally {
    await store.close();
  }
}

export const dataDirOf = (dir: string) => path.join(dir, 'data');

/** The queue record of `address` once it has had `attempts` delivery attempts (waits up to 15 s). */
export function queuedAfterAttempts(dataDir: string, address: string, attempts: number): Promise<QueueRecipient> {
  return waitFor(async () => {
    const r = (await queueEntries(dataDir)).flatMap((e) => e.recipients).find((x) => x.address === address);
    return r && r.attempts >= attempts ? r : undefined;
  }, 15_000, `${attempts} attempts for ${address}`);
}

/** Runs fn with a fresh temporary directory (named after `prefix`), removed afterwards whatever happens. */
export async function inTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The ingest path over a store, as the server builds it (changes go to a bus nobody listens to). */
export function ingestFor(store: SqliteStore): Ingest {
  return new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus() });
}
