/**
 * "A message that got 250 is never lost": kill -9 the server in the middle of a stream of 200 submissions
 * from 10 parallel clients; after a restart every acknowledged message is in the mailbox.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { mailboxMessages, dataDirOf } from '../harness/store.js';

const PW = 'correct horse battery';
const AUTH = Buffer.from(`\0alice@example.org\0${PW}`).toString('base64');

async function client(port: number, n: number, tag: string, acked: Set<string>, stop: () => boolean): Promise<void> {
  let c: RawClient;
  try {
    c = await RawClient.connect(port, { tls: true });
    await c.reply();
    await c.command('EHLO load.example');
    const a = await c.command(`AUTH PLAIN ${AUTH}`);
    if (!a[0]!.startsWith('235')) throw new Error(a.join());
    for (let i = 0; i < n && !stop(); i++) {
      const id = `${tag}-${i}`;
      if (!(await c.command('MAIL FROM:<alice@example.org>'))[0]!.startsWith('250')) return;
      if (!(await c.command('RCPT TO:<bob@example.org>'))[0]!.startsWith('250')) return;
      if (!(await c.command('DATA'))[0]!.startsWith('354')) return;
      c.write(`From: alice@example.org\r\nTo: bob@example.org\r\nSubject: durable ${id}\r\n\r\n${'body line\r\n'.repeat(40)}.\r\n`);
      const r = await c.reply();
      if (r[0]!.startsWith('250')) acked.add(id);
    }
    c.close();
  } catch {
    /* the server was killed under us: expected */
  }
}

it('kill -9 during 200 submissions from 10 clients loses no acknowledged message', { timeout: 120_000 }, async () => {
  const srv = await TestServer.create();
  try {
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
    await srv.addAccount('bob@example.org', PW);
    const acked = new Set<string>();
    let killed = false;
    const killer = (async () => {
      while (acked.size < 60) await new Promise((r) => setTimeout(r, 5));
      await srv.kill('SIGKILL');
      killed = true;
    })();
    await Promise.all(Array.from({ length: 10 }, (_, k) => client(srv.ports.submissions, 20, `c${k}`, acked, () => killed)));
    await Promise.race([killer, new Promise((r) => setTimeout(r, 1000))]);
    if (!killed) await srv.kill('SIGKILL');
    assert.ok(acked.size >= 60, `at least 60 messages acknowledged before the kill (${acked.size})`);

    await srv.start();
    const stored = new Set(
      (await mailboxMessages(dataDirOf(srv.dir), 'bob@example.org')).map((m) => /Subject: durable (\S+)/.exec(m.raw)?.[1]).filter((x): x is string => !!x),
    );
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `acknowledged but lost: ${lost.join(', ')}`);
    const counts = new Map<string, number>();
    for (const m of await mailboxMessages(dataDirOf(srv.dir), 'bob@example.org')) {
      const id = /Subject: durable (\S+)/.exec(m.raw)?.[1];
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.ok([...counts.values()].every((n) => n === 1), 'no message stored twice');
    // The restarted server keeps working.
    const more = new Set<string>();
    await client(srv.ports.submissions, 3, 'after', more, () => false);
    assert.equal(more.size, 3);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});
