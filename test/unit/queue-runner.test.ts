/**
 * QueueRunner against the real SQLite store, with the outbound sender injected (core/queue.ts takes any
 * OutboundSender): what happens to the leases when a sender reports on only some recipients, or throws.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/log.js';
import { QueueRunner, type OutboundSender, type QueueSettings } from '../../src/core/queue.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';

const settings: QueueSettings = {
  hostname: 'mx.postern.test',
  lifetimeMs: 86_400_000,
  delayWarningMs: 0,
  retryBaseMs: 60_000,
  retryMaxMs: 3_600_000,
  pollIntervalMs: 1000,
  maxConnections: 10,
  maxConnectionsPerDomain: 5,
  maxMessagesPerConnection: 100,
  relay: null,
};

/** A fresh store and an enqueue() of one small message from `sender` to `recipients`; cleanup() removes it all. */
async function fixture() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qr-'));
  const store = new SqliteStore({ dataDir: dir });
  const raw = Buffer.from('From: a@example.org\r\nTo: x@remote.test\r\nSubject: s\r\n\r\nbody\r\n');
  const blob = await store.blobs.put(raw);
  const enqueue = (recipients: string[], sender = 'a@example.org') =>
    store.queue.enqueue({
      sender, blobId: blob.id, prefix: Buffer.alloc(0), size: raw.length, accountId: null, envid: null, ret: null, smtputf8: false, body8bit: false,
      recipients: recipients.map((address) => ({ address, orcpt: null, notify: null })),
    });
  const cleanup = async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, enqueue, cleanup };
}

for (const mode of ['partial', 'throws'] as const) {
  it(`every leased recipient gets a result when the sender ${mode === 'partial' ? 'reports on only some' : 'throws'}: retried on schedule, not held by a lease`, async () => {
    const { store, enqueue, cleanup } = await fixture();
    try {
      const e = await enqueue(['x@remote.test', 'y@remote.test']);
      const now = Date.now() + 1000;
      const x = e.recipients.find((r) => r.address === 'x@remote.test')!;
      const outbound: OutboundSender = {
        async deliver(_route, messages) {
          if (mode === 'throws') throw new Error('sender crashed');
          // Reports x as delivered and says nothing about y.
          return [{ recipientId: x.id, queueId: messages[0]!.queueId, kind: 'delivered', statusCode: '2.0.0', diagnostic: '250 ok', fromRemote: true, remoteMta: 'mx [127.0.0.2]', tls: null, remoteDsn: true }];
        },
      };
      const runner = new QueueRunner(
        { repo: store.queue, blobs: store.blobs, outbound, delivery: { deliver: async () => { throw new Error('no DSN expected'); } }, log: createLogger('silent'), now: () => now },
        settings,
      );
      await runner.tick();
      await runner.stop(5000);
      const after = (await store.queue.get(e.id, false))!;
      const y = after.recipients.find((r) => r.address === 'y@remote.test')!;
      assert.equal(y.status, 'queued');
      assert.equal(y.attempts, 1, 'the attempt is recorded');
      assert.match(y.lastError ?? '', /^4\.4\.0 /);
      const due = await store.queue.due(now + settings.retryBaseMs, 10);
      assert.ok(due.some((d) => d.address === 'y@remote.test'), 'due again after retry_base: its lease was released');
      assert.equal(after.recipients.find((r) => r.address === 'x@remote.test')!.status, mode === 'partial' ? 'delivered' : 'queued');
    } finally {
      await cleanup();
    }
  });
}

it('a bounce is sent once even when a housekeeping pass runs while the worker is still sending it', async () => {
  const { store, enqueue, cleanup } = await fixture();
  try {
    const e = await enqueue(['x@remote.test']);
    const now = Date.now() + 1000;
    const outbound: OutboundSender = {
      async deliver(_route, messages) {
        const m = messages[0]!;
        return [{ recipientId: m.recipients[0]!.id, queueId: m.queueId, kind: 'permanent', statusCode: '5.1.1', diagnostic: '550 5.1.1 no such user', fromRemote: true, remoteMta: 'mx [127.0.0.2]', tls: null, remoteDsn: false }];
      },
    };
    const dsns: Buffer[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inDelivery = new Promise<void>((r) => (entered = r));
    const delivery = {
      deliver: async (req: { raw: Buffer }) => {
        dsns.push(req.raw);
        entered();
        await gate; // the DSN is being delivered (ingest, fsync) ...
        return { localAccounts: [], queueId: null, remoteRecipients: [] } as never;
      },
    };
    const runner = new QueueRunner({ repo: store.queue, blobs: store.blobs, outbound, delivery: delivery as never, log: createLogger('silent'), now: () => now }, settings);
    await runner.tick(); // starts the worker: permanent failure -> bounce
    await inDelivery;
    const pass = runner.tick(); // ... while a pass finds the entry with its DSN still pending
    await new Promise((r) => setTimeout(r, 50));
    release();
    await pass;
    await runner.stop(5000);
    assert.equal(dsns.length, 1, 'exactly one bounce');
    assert.match(dsns[0]!.toString(), /Status: 5\.1\.1/);
    assert.equal(await store.queue.get(e.id, false), null, 'the entry is removed after its bounce');
  } finally {
    await cleanup();
  }
});

it('a destination at its connection limit with thousands of recipients waiting does not starve the others', async () => {
  const { store, enqueue, cleanup } = await fixture();
  const release: Array<() => void> = [];
  let blocking = true;
  let runner: QueueRunner | null = null;
  try {
    // Five messages keep busy.test's five connections (maxConnectionsPerDomain) open ...
    for (let i = 0; i < settings.maxConnectionsPerDomain; i++) await enqueue([`first${i}@busy.test`]);
    const now = Date.now() + 1000;
    const delivered: string[] = [];
    const outbound: OutboundSender = {
      async deliver(route, messages) {
        if (blocking && route.kind === 'mx' && route.domain === 'busy.test') await new Promise<void>((r) => release.push(r));
        return messages.flatMap((m) => m.recipients.map((r) => (delivered.push(r.address), { recipientId: r.id, queueId: m.queueId, kind: 'delivered' as const, statusCode: '2.0.0', diagnostic: '250 ok', fromRemote: true, remoteMta: null, tls: null, remoteDsn: true })));
      },
    };
    runner = new QueueRunner(
      { repo: store.queue, blobs: store.blobs, outbound, delivery: { deliver: async () => { throw new Error('no DSN expected'); } }, log: createLogger('silent'), now: () => now },
      settings,
    );
    await runner.tick();
    assert.equal(release.length, settings.maxConnectionsPerDomain, "busy.test's connections are all in use");
    // ... while 2,500 more recipients there, queued earlier, come before one for elsewhere.test.
    await enqueue(Array.from({ length: 2500 }, (_, i) => `r${i}@busy.test`));
    await enqueue(['bob@elsewhere.test']);
    await runner.tick();
    for (let i = 0; i < 500 && !delivered.includes('bob@elsewhere.test'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(delivered, ['bob@elsewhere.test'], 'elsewhere.test is served while busy.test is at its limit');
  } finally {
    blocking = false;
    for (const r of release.splice(0)) r();
    await runner?.stop(5000);
    await cleanup();
  }
});

it("due() leaves out the skipped recipient and sender domains (the part after the last '@', any case, non-ASCII too)", async () => {
  const { store, enqueue, cleanup } = await fixture();
  try {
    await enqueue(['x@Busy.Test', '"odd@name"@busy.test', 'y@other.test']);
    await enqueue(['z@other.test'], 'b@Relayed.Example');
    await enqueue(['w@other.test'], '');
    await enqueue(['ü@BÜCHER.test']);
    const now = Date.now() + 1000;
    const addresses = async (skip?: { recipientDomains: string[]; senderDomains: string[] }) => (await store.queue.due(now, 100, skip)).map((d) => d.address).sort();
    assert.equal((await addresses()).length, 6);
    assert.deepEqual(await addresses({ recipientDomains: ['busy.test', 'bücher.test'], senderDomains: [] }), ['w@other.test', 'y@other.test', 'z@other.test']);
    assert.deepEqual(await addresses({ recipientDomains: [], senderDomains: ['relayed.example', ''] }), ['"odd@name"@busy.test', 'x@Busy.Test', 'y@other.test', 'ü@BÜCHER.test']);
  } finally {
    await cleanup();
  }
});
