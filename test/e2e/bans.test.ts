/**
 * Brute-force bans end to end (Fail2Ban's job, built in): authentication failures over SMTP AUTH and IMAP from
 * one address ban it from every listener; `postern ban list|add|del` work against the running server without
 * a restart; bans survive a restart. Also: with no Rspamd configured, the built-in scorer sends GTUBE to Junk.
 * The clients are all 127.0.0.1, so this test sets `ban_exempt = []`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { ImapClient } from '../harness/imap-client.js';
import net from 'node:net';
import tls from 'node:tls';
import { mailboxMessages, dataDirOf } from '../harness/store.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { GTUBE } from '../harness/peers.js';

const PW = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when the server closes a new connection at once, without a greeting. */
async function refused(port: number, opts: { tls?: boolean } = {}): Promise<boolean> {
  let c: RawClient;
  try {
    c = await RawClient.connect(port, opts);
  } catch {
    return true; // reset during the TLS handshake
  }
  const seen = await c.untilClosed(1500);
  const closed = c.closed;
  c.close();
  return closed && seen === '';
}

async function waitFor(pred: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(100);
  }
}

/** One failed POP3 login (STLS, USER, PASS with a wrong password); returns the PASS answer. */
async function pop3Failure(port: number): Promise<string> {
  let sock: net.Socket = net.connect({ host: '127.0.0.1', port });
  let buf = '';
  const line = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const i = buf.indexOf('\r\n');
        if (i < 0) return false;
        const l = buf.slice(0, i);
        buf = buf.slice(i + 2);
        sock.off('data', onData);
        resolve(l);
        return true;
      };
      const onData = (d: Buffer) => {
        buf += d.toString('latin1');
        check();
      };
      if (!check()) sock.on('data', onData);
      sock.once('error', reject);
    });
  const cmd = async (c: string) => {
    sock.write(`${c}\r\n`);
    return line();
  };
  assert.match(await line(), /^\+OK/);
  assert.match(await cmd('STLS'), /^\+OK/);
  sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const t = tls.connect({ socket: sock, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(t));
    t.once('error', reject);
  });
  buf = '';
  assert.match(await cmd('USER alice@example.org'), /^\+OK/);
  const pass = await cmd('PASS wrong3');
  sock.destroy();
  return pass;
}

async function smtpAuthFailures(port: number, n: number): Promise<void> {
  const c = await RawClient.connect(port, { tls: true });
  assert.match((await c.reply())[0]!, /^220 /);
  await c.command('EHLO client.example');
  for (let i = 0; i < n; i++) {
    const r = await c.command(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0wrong-${i}`).toString('base64')}`);
    assert.match(r[0]!, /^535 5\.7\.8 /);
  }
  c.close();
}

describe('brute-force bans', { timeout: 60_000 }, () => {
  let srv: TestServer;
  let dns: DnsServer;

  before(async () => {
    dns = await startDnsServer();
    srv = await TestServer.create({
      listeners: ['smtp', 'submissions', 'imap', 'pop3'],
      extraToml: `[dns]
servers = ["${dns.address}"]
[protection]
ban_after_failures = 3
ban_window = "10m"
ban_time = "1h"
ban_exempt = []
greylisting = false
dnsbl = []
pregreet_wait = "0s"
pipelining_check = false
[spam]
threshold = 5
`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
    await dns.close();
  });

  it('without Rspamd, the built-in scorer delivers GTUBE to Junk with X-Spam-Flag', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO mail.example.com');
    assert.match((await c.command('MAIL FROM:<someone@example.com>'))[0]!, /^250 /);
    assert.match((await c.command('RCPT TO:<alice@example.org>'))[0]!, /^250 /);
    await c.command('DATA');
    c.write(`From: someone@example.com\r\nTo: alice@example.org\r\nSubject: gtube\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <g@example.com>\r\n\r\n${GTUBE}\r\n.\r\n`);
    assert.match((await c.reply())[0]!, /^250 /);
    c.close();
    const junk = await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org', 'Junk');
    assert.equal(junk.length, 1);
    assert.match(junk[0]!.raw, /\r\nX-Spam-Flag: YES\r\n/);
    assert.match(junk[0]!.raw, /X-Spam-Status: Yes, score=[\d.]+ required=5\.00 engine=postern tests=GTUBE/);
    assert.equal((await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org')).length, 0);
  });

  it('SMTP AUTH failures ban the address from every listener; the ban is listed', async () => {
    assert.equal(await refused(srv.ports.imap), false, 'not banned yet');
    await smtpAuthFailures(srv.ports.submissions, 3);
    for (const [name, port, tls] of [['smtp', srv.ports.smtp, false], ['submissions', srv.ports.submissions, true], ['imap', srv.ports.imap, false], ['pop3', srv.ports.pop3, false]] as const) {
      assert.equal(await refused(port, { tls }), true, `${name} refuses the banned address`);
    }
    assert.ok(await srv.logEntry('address banned', (l) => l.remote === '127.0.0.1'));
    const list = await srv.cli(['ban', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^127\.0\.0\.1\tuntil \S+\t3 authentication failures within 600s$/m);
  });

  it('bans survive a restart', async () => {
    await srv.stop();
    await srv.start();
    assert.equal(await refused(srv.ports.smtp), true);
  });

  it('`ban del` lifts the ban on the running server; `ban add` imposes one', async () => {
    const del = await srv.cli(['ban', 'del', '127.0.0.1']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout.trim(), 'unbanned 127.0.0.1');
    await waitFor(async () => !(await refused(srv.ports.smtp)), 'smtp admits 127.0.0.1 again');
    assert.equal((await srv.cli(['ban', 'list'])).stdout.trim(), 'no bans');

    const add = await srv.cli(['ban', 'add', '127.0.0.1', '--time', '30m']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^banned 127\.0\.0\.1 until /);
    await waitFor(() => refused(srv.ports.imap), 'imap refuses after ban add');
    assert.match((await srv.cli(['ban', 'list'])).stdout, /^127\.0\.0\.1\t.*manual/m);
    assert.equal((await srv.cli(['ban', 'del', '127.0.0.1'])).code, 0);
    await waitFor(async () => !(await refused(srv.ports.imap)), 'imap admits again');
  });

  it('CLI errors are one line', async () => {
    const bad = await srv.cli(['ban', 'add', 'not-an-ip']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'postern: not an IP address: "not-an-ip"\n');
    const time = await srv.cli(['ban', 'add', '192.0.2.1', '--time', 'soon']);
    assert.equal(time.stderr, 'postern: invalid --time "soon" (expected e.g. 30m, 1h, 7d)\n');
    const none = await srv.cli(['ban', 'del', '192.0.2.1']);
    assert.equal(none.stderr, 'postern: 192.0.2.1 is not banned\n');
  });

  it('IMAP and POP3 login failures count toward the same ban', async () => {
    const imap = await ImapClient.connect(srv.ports.imap);
    await imap.startTls();
    const r1 = await imap.cmd('LOGIN alice@example.org wrong1');
    assert.match(r1.status ?? JSON.stringify(r1), /NO/);
    const r2 = await imap.cmd('LOGIN alice@example.org wrong2');
    assert.match(r2.status ?? JSON.stringify(r2), /NO/);
    imap.close();
    // The third failure comes over POP3 (STLS first: USER/PASS need TLS, RFC 2595 4).
    assert.match(await pop3Failure(srv.ports.pop3), /^-ERR/);
    await waitFor(() => refused(srv.ports.smtp), 'banned after IMAP+POP3 failures');
    assert.equal((await srv.cli(['ban', 'del', '127.0.0.1'])).code, 0);
  });
});
