/**
 * Outbound delivery end to end: a real Postern process, our test DNS server on 127.0.0.1, and recording
 * remote MTAs (smtp-server) on 127.0.0.2:25 and 127.0.0.3:25. Mail is submitted on 465 with AUTH; the queue
 * delivers it by MX. The retry schedule is shortened through [queue] (retry_base 200ms, lifetime 4s,
 * delay_warning 1500ms) so retries, delay notices and expiry happen within seconds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { FakeMta, waitFor } from '../harness/fake-mta.js';
import { TestServer } from '../harness/server.js';
import { dataDirOf, mailboxMessages, queueEntries } from '../harness/store.js';
import { submit } from '../harness/submit.js';
import { RawClient } from '../harness/raw.js';

const PW = 'correct horse battery';

function inbox(srv: TestServer, address = 'alice@example.org') {
  return mailboxMessages(dataDirOf(srv.dir), address);
}

function dsnsWithSubject(msgs: { raw: string }[], subject: string, tag: string) {
  return msgs.filter((m) => m.raw.includes(`Subject: ${subject}`) && m.raw.includes(tag));
}

describe('outbound delivery by MX', { timeout: 120_000 }, () => {
  let dns: DnsServer;
  let mx1: FakeMta;
  let mx2: FakeMta;
  let srv: TestServer;

  before(async () => {
    dns = await startDnsServer();
    mx1 = await FakeMta.start({ host: '127.0.0.2' });
    mx2 = await FakeMta.start({ host: '127.0.0.3', starttls: false });
    dns.set('mx1.remote.test', [{ type: 'A', data: '127.0.0.2' }]);
    dns.set('mx2.remote.test', [{ type: 'A', data: '127.0.0.3' }]);
    dns.set('down.remote.test', [{ type: 'A', data: '127.0.0.9' }]);
    for (const d of ['tls.test', 'retry.test', 'bounce.test', 'partial.test', 'expire.test', 'restart.test', 'kill.test', 'utf8.test'])
      dns.set(d, [{ type: 'MX', data: { preference: 10, exchange: 'mx1.remote.test' } }]);
    dns.set('fallback.test', [
      { type: 'MX', data: { preference: 10, exchange: 'down.remote.test' } },
      { type: 'MX', data: { preference: 20, exchange: 'mx2.remote.test' } },
    ]);
    dns.set('nullmx.test', [{ type: 'MX', data: { preference: 0, exchange: '.' } }]);
    dns.set('implicit.test', [{ type: 'A', data: '127.0.0.3' }]);
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "200ms"\nretry_max = "400ms"\nlifetime = "4s"\ndelay_warning = "1500ms"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await mx1?.close();
    await mx2?.close();
    await dns?.close();
  });

  it('delivers over STARTTLS and records the TLS version, cipher and verification', async () => {
    await submit(srv.ports.submissions, { to: ['bob@tls.test'], subject: 'tls one' });
    const m = await waitFor(() => mx1.for('bob@tls.test')[0], 10_000, 'delivery to mx1');
    assert.equal(m.secure, true, 'STARTTLS used');
    assert.equal(m.from, 'alice@example.org');
    assert.match(m.raw, /Subject: tls one/);
    assert.equal(m.mailArgs.SIZE !== undefined, true, 'SIZE declared');
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'bob@tls.test'), 5000, 'delivered log');
    const tls = log.tls as { version: string; cipher: string; verified: boolean };
    assert.match(tls.version, /^TLSv1\.[23]$/);
    assert.ok(tls.cipher);
    assert.equal(tls.verified, false, "smtp-server's self-signed certificate does not verify");
    // The finished entry leaves the queue.
    await waitFor(async () => !(await queueEntries(dataDirOf(srv.dir))).some((e) => e.recipients.some((r) => r.address === 'bob@tls.test')), 5000, 'queue entry removed');
  });

  it('falls back to the next MX when the primary refuses connections', async () => {
    await submit(srv.ports.submissions, { to: ['carol@fallback.test'], subject: 'fallback' });
    const m = await waitFor(() => mx2.for('carol@fallback.test')[0], 10_000, 'delivery to mx2');
    assert.equal(m.secure, false, 'mx2 offers no STARTTLS: plaintext');
    assert.equal(mx1.for('carol@fallback.test').length, 0);
  });

  it('delivers to the implicit MX (A record) when a domain has no MX', async () => {
    await submit(srv.ports.submissions, { to: ['dave@implicit.test'], subject: 'implicit' });
    await waitFor(() => mx2.for('dave@implicit.test')[0], 10_000, 'delivery by A record');
  });

  it('retries after a 4xx and then delivers', async () => {
    mx1.rcpt = (a, n) => (a === 'erin@retry.test' && n === 1 ? { code: 451, message: '4.3.0 try again later' } : null);
    await submit(srv.ports.submissions, { to: ['erin@retry.test'], subject: 'retry me' });
    const m = await waitFor(() => mx1.for('erin@retry.test')[0], 10_000, 'delivery after retry');
    assert.match(m.raw, /Subject: retry me/);
    assert.equal(mx1.seen.get('erin@retry.test'), 2);
  });

  it('a 5xx bounces: one DSN, multipart/report, in the sender\'s INBOX', async () => {
    mx1.rcpt = (a) => (a === 'nobody@bounce.test' ? { code: 550, message: '5.1.1 no such user here' } : null);
    await submit(srv.ports.submissions, { to: ['nobody@bounce.test'], subject: 'bounce me', dsn: { envid: 'ENV-42', ret: 'HDRS' } });
    const dsn = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'nobody@bounce.test')[0], 10_000, 'bounce DSN');
    assert.match(dsn.raw, /Content-Type: multipart\/report; report-type=delivery-status;/);
    assert.match(dsn.raw, /Content-Type: message\/delivery-status/);
    assert.match(dsn.raw, /Final-Recipient: rfc822; nobody@bounce.test/);
    assert.match(dsn.raw, /Action: failed/);
    assert.match(dsn.raw, /Status: 5\.1\.1/);
    assert.match(dsn.raw, /Diagnostic-Code: smtp; 550 5\.1\.1 no such user here/);
    assert.match(dsn.raw, /Original-Envelope-Id: ENV-42/);
    assert.match(dsn.raw, /Remote-MTA: dns; mx1\.remote\.test/);
    assert.match(dsn.raw, /Content-Type: text\/rfc822-headers/, 'RET=HDRS: headers only');
    assert.match(dsn.raw, /Subject: bounce me/);
    assert.doesNotMatch(dsn.raw, /Hello there/, 'RET=HDRS: no body');
    assert.match(dsn.raw, /^Return-Path: <>|From: Mail Delivery System <MAILER-DAEMON@mx\.postern\.test>/m);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'nobody@bounce.test').length, 1, 'exactly one bounce');
  });

  it('a local recipient removed between RCPT and the end of DATA is bounced, not lost', async () => {
    await srv.addAccount('carol@example.org', PW);
    const c = await RawClient.connect(srv.ports.submissions, { tls: true });
    try {
      await c.reply();
      await c.command('EHLO client.test');
      assert.match((await c.command(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${PW}`).toString('base64')}`))[0]!, /^235 /);
      assert.match((await c.command('MAIL FROM:<alice@example.org>'))[0]!, /^250 /);
      assert.match((await c.command('RCPT TO:<carol@example.org>'))[0]!, /^250 /);
      assert.equal((await srv.cli(['email', 'del', 'carol@example.org'])).code, 0);
      assert.match((await c.command('DATA'))[0]!, /^354 /);
      const end = await c.command('From: alice@example.org\r\nTo: carol@example.org\r\nSubject: gone meanwhile\r\nMessage-ID: <gone@example.org>\r\n\r\nAre you there?\r\n.');
      assert.match(end[0]!, /^250 /, 'accepted: the recipient was valid at RCPT');
      await c.command('QUIT');
    } finally {
      c.socket.destroy();
    }
    const dsn = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'carol@example.org')[0], 10_000, 'bounce for the removed recipient');
    assert.match(dsn.raw, /Final-Recipient: rfc822; carol@example.org/);
    assert.match(dsn.raw, /Action: failed/);
    assert.match(dsn.raw, /Status: 5\.1\.1/);
    assert.match(dsn.raw, /Subject: gone meanwhile/);
  });

  it('null MX fails at once (RFC 7505) with a bounce', async () => {
    await submit(srv.ports.submissions, { to: ['x@nullmx.test'], subject: 'null mx' });
    const dsn = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'x@nullmx.test')[0], 10_000, 'null MX bounce');
    assert.match(dsn.raw, /Status: 5\.1\.10/);
    assert.match(dsn.raw, /Content-Type: message\/rfc822/, 'default RET: the full message');
  });

  it('partial recipient failure: accepted, refused and deferred recipients each get their own outcome', async () => {
    mx1.rcpt = (a, n) => (a === 'no@partial.test' ? { code: 550, message: '5.1.1 unknown' } : a === 'later@partial.test' && n === 1 ? { code: 452, message: '4.2.2 mailbox full' } : null);
    await submit(srv.ports.submissions, { to: ['ok@partial.test', 'no@partial.test', 'later@partial.test'], subject: 'partial' });
    const first = await waitFor(() => mx1.for('ok@partial.test')[0], 10_000, 'ok delivered');
    assert.deepEqual(first.to, ['ok@partial.test']);
    const dsn = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'no@partial.test')[0], 10_000, 'partial bounce');
    assert.doesNotMatch(dsn.raw, /Final-Recipient: rfc822; ok@partial.test/);
    assert.doesNotMatch(dsn.raw, /Final-Recipient: rfc822; later@partial.test/);
    const later = await waitFor(() => mx1.for('later@partial.test')[0], 10_000, 'deferred recipient delivered on retry');
    assert.deepEqual(later.to, ['later@partial.test']);
    assert.equal(mx1.for('ok@partial.test').length, 1, 'the accepted recipient is not sent again');
  });

  it('a message that keeps failing temporarily gets a delay notice, then expires into a bounce', async () => {
    mx1.rcpt = (a) => (a === 'slow@expire.test' ? { code: 451, message: '4.4.5 overloaded' } : null);
    await submit(srv.ports.submissions, { to: ['slow@expire.test'], subject: 'expire me' });
    const delay = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Delayed Mail (still being retried)', 'slow@expire.test')[0], 10_000, 'delay DSN');
    assert.match(delay.raw, /Action: delayed/);
    assert.match(delay.raw, /Will-Retry-Until: /);
    const bounce = await waitFor(async () => dsnsWithSubject(await inbox(srv), 'Undelivered Mail Returned to Sender', 'slow@expire.test')[0], 15_000, 'expiry bounce');
    assert.match(bounce.raw, /Action: failed/);
    assert.match(bounce.raw, /Status: 4\.4\.7/);
    assert.match(bounce.raw, /expired/);
  });

  it('SMTPUTF8: passed on to a server that has it', async () => {
    await submit(srv.ports.submissions, { to: ['utf@utf8.test'], subject: 'Grüße', headers: 'X-Note: ünïcödé\r\n' }).catch(() => undefined);
    // The submission client sends no SMTPUTF8 for ASCII addresses, so the message is accepted as 8-bit header data.
    await waitFor(() => mx1.for('utf@utf8.test')[0], 10_000, 'utf8 delivery');
  });

});

// Its own server with the default lifetime: under load the CLI round trips can outlast the 4 s lifetime above,
// and an entry that expires into a bounce meanwhile is (rightly) gone before `queue delete`.
describe('queue CLI', { timeout: 60_000 }, () => {
  let dns: DnsServer;
  let mx1: FakeMta;
  let srv: TestServer;

  before(async () => {
    dns = await startDnsServer();
    mx1 = await FakeMta.start({ host: '127.0.0.2' });
    dns.set('mx1.remote.test', [{ type: 'A', data: '127.0.0.2' }]);
    dns.set('restart.test', [{ type: 'MX', data: { preference: 10, exchange: 'mx1.remote.test' } }]);
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "200ms"\nretry_max = "400ms"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await mx1?.close();
    await dns?.close();
  });

  it('queue CLI: hold, show, release, retry --all, delete', async () => {
    mx1.rcpt = (a) => (a === 'held@restart.test' ? { code: 451, message: '4.3.0 not now' } : null);
    await submit(srv.ports.submissions, { to: ['held@restart.test'], subject: 'cli' });
    const entry = await waitFor(async () => (await queueEntries(dataDirOf(srv.dir))).find((e) => e.recipients.some((r) => r.address === 'held@restart.test' && r.attempts > 0)), 10_000, 'first attempt');
    const list = await srv.cli(['queue', 'list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, new RegExp(entry.id));
    const hold = await srv.cli(['queue', 'hold', entry.id]);
    assert.equal(hold.code, 0, hold.stderr);
    const show = await srv.cli(['queue', 'show', entry.id]);
    assert.match(show.stdout, /<held@restart.test>\s+held/);
    assert.match(show.stdout, /451 4\.3\.0 not now/);
    assert.match((await srv.cli(['queue', 'release', entry.id])).stdout, /released/);
    assert.match((await srv.cli(['queue', 'retry', '--all'])).stdout, /scheduled/);
    const del = await srv.cli(['queue', 'delete', entry.id]);
    assert.equal(del.code, 0, del.stderr);
    const bad = await srv.cli(['queue', 'show', 'nope']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'postern: no queue entry nope\n');
    mx1.rcpt = () => null;
  });
});

describe('queue durability', { timeout: 120_000 }, () => {
  it('a restart with a non-empty queue resumes; kill -9 mid-delivery loses nothing and repeats at most the attempt in flight', async () => {
    const dns = await startDnsServer();
    const mx = await FakeMta.start({ host: '127.0.0.2' });
    dns.set('mx1.remote.test', [{ type: 'A', data: '127.0.0.2' }]);
    dns.set('restart.test', [{ type: 'MX', data: { preference: 10, exchange: 'mx1.remote.test' } }]);
    dns.set('kill.test', [{ type: 'MX', data: { preference: 10, exchange: 'mx1.remote.test' } }]);
    const srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "300ms"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
    });
    try {
      await srv.start();
      await srv.addAccount('alice@example.org', PW);
      // 1. Restart: the remote refuses for now; stop Postern with the message queued; start again; delivered.
      let down = true;
      mx.rcpt = (a) => (a === 'r@restart.test' && down ? { code: 421, message: '4.3.2 going down' } : null);
      await submit(srv.ports.submissions, { to: ['r@restart.test'], subject: 'survive restart' });
      await waitFor(async () => (await queueEntries(dataDirOf(srv.dir))).some((e) => e.recipients.some((r) => r.address === 'r@restart.test' && r.attempts > 0)), 10_000, 'deferred');
      await srv.stop();
      down = false;
      await srv.start();
      await waitFor(() => mx.for('r@restart.test')[0], 10_000, 'delivered after restart');

      // 2. kill -9 while the remote holds the DATA reply: after restart every message arrives; duplicates only
      //    for the one attempt in flight.
      mx.dataDelayMs = 1500;
      for (let i = 0; i < 5; i++) await submit(srv.ports.submissions, { to: [`k${i}@kill.test`], subject: `kill ${i}` });
      await waitFor(() => mx.seen.size >= 2, 10_000, 'an attempt in flight');
      await srv.kill('SIGKILL');
      mx.dataDelayMs = 0;
      await new Promise((r) => setTimeout(r, 1600));
      await srv.start();
      for (let i = 0; i < 5; i++) await waitFor(() => mx.for(`k${i}@kill.test`)[0], 15_000, `k${i} delivered`);
      await new Promise((r) => setTimeout(r, 500));
      const dups = [0, 1, 2, 3, 4].map((i) => mx.for(`k${i}@kill.test`).length);
      assert.ok(dups.every((n) => n >= 1 && n <= 2), `each message at least once, at most twice: ${dups}`);
      await waitFor(async () => (await queueEntries(dataDirOf(srv.dir))).length === 0, 10_000, 'queue drained');
    } finally {
      await srv.stop();
      srv.cleanup();
      await mx.close();
      await dns.close();
    }
  });
});
