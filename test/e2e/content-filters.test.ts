/**
 * Spam and virus filtering on port 25 against the real peers (Debian's rspamd, redis-server and clamd, started
 * here on loopback, offline): Rspamd's actions drive our replies, an IMAP move into Junk trains Rspamd through
 * its controller, clamd's INSTREAM finds EICAR, and a dead clamd means 451 (fail closed).
 * Rspamd's first start ever compiles hyperscan databases (~12 s, cached in the OS temp dir for later runs).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { ImapClient } from '../harness/imap-client.js';
import { mailboxMessages, dataDirOf } from '../harness/store.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { startRedis, startRspamd, startClamd, EICAR, GTUBE, type Peer, type RspamdPeer, type ClamdPeer } from '../harness/peers.js';

const PW = 'correct horse battery';

/** One SMTP transaction on port 25; returns the reply to the end of DATA. */
async function send(port: number, message: string, opts: { from?: string; to?: string } = {}): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    assert.match((await c.reply())[0]!, /^220 /);
    assert.match((await c.command('EHLO mail.example.com')).at(-1)!, /^250 /);
    assert.match((await c.command(`MAIL FROM:<${opts.from ?? 'sender@example.com'}>`))[0]!, /^250 /);
    assert.match((await c.command(`RCPT TO:<${opts.to ?? 'alice@example.org'}>`))[0]!, /^250 /);
    assert.match((await c.command('DATA'))[0]!, /^354 /);
    c.write(message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.\r\n');
    const r = (await c.reply(30_000)).join('\n');
    await c.command('QUIT').catch(() => undefined);
    return r;
  } finally {
    c.close();
  }
}

function message(subject: string, body: string, extra = ''): string {
  return [
    'From: Sender <sender@example.com>',
    'To: Alice <alice@example.org>',
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    'MIME-Version: 1.0',
    extra,
    body,
  ]
    .filter((l) => l !== '')
    .join('\r\n');
}

const plain = (subject: string, text: string) => message(subject, `Content-Type: text/plain; charset=utf-8\r\n\r\n${text}`);

async function rspamdStat(r: RspamdPeer): Promise<{ learned: number }> {
  const res = await fetch(`${r.controllerUrl}/stat`);
  return (await res.json()) as { learned: number };
}

describe('content filters with real Rspamd and clamd', { timeout: 150_000 }, () => {
  let srv: TestServer;
  let dns: DnsServer;
  let redis: Peer;
  let rspamd: RspamdPeer;
  let clamd: ClamdPeer;

  before(async () => {
    // Our test zone: the client 127.0.0.1 is mail.example.com (forward-confirmed), example.com authorises it.
    dns = await startDnsServer({
      records: {
        'mail.example.com': [{ type: 'A', data: '127.0.0.1' }],
        '1.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'mail.example.com' }],
        'example.com': [
          { type: 'MX', data: { preference: 10, exchange: 'mail.example.com' } },
          { type: 'A', data: '127.0.0.1' },
          { type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' },
        ],
        'example.org': [{ type: 'MX', data: { preference: 10, exchange: 'mx.postern.test' } }],
      },
    });
    redis = await startRedis();
    const started = Date.now();
    [rspamd, clamd] = await Promise.all([startRspamd({ dnsAddress: dns.address, redisPort: redis.port }), startClamd()]);
    console.log(`# rspamd and clamd ready in ${Date.now() - started} ms`);
    srv = await TestServer.create({
      listeners: ['smtp', 'imap'],
      extraToml: `[dns]
servers = ["${dns.address}"]
[protection]
greylisting = false
dnsbl = []
pregreet_wait = "0s"
pipelining_check = false
[spam]
rspamd = "${rspamd.url}"
rspamd_controller = "${rspamd.controllerUrl}"
timeout = "10s"
[virus]
clamd = "${clamd.address}"
timeout = "5s"
`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await Promise.all([rspamd?.stop(), clamd?.stop()]);
    await redis?.stop();
    await dns?.close();
  });

  it('GTUBE: Rspamd says reject, Postern answers 550 5.7.1 at the end of DATA', async () => {
    const r = await send(srv.ports.smtp, plain('test', `This is the GTUBE test.\r\n\r\n${GTUBE}\r\n`));
    assert.match(r, /^550 5\.7\.1 /, r);
    const refused = (await srv.logEntry('message refused by inbound checks')) as unknown as { verdict: { spam: { engine: string; action: string } } };
    assert.equal(refused.verdict.spam.engine, 'rspamd');
    assert.equal(refused.verdict.spam.action, 'reject');
  });

  it('a normal message is accepted into INBOX with our X-Spam-Status (forged X-Spam fields removed)', async () => {
    const r = await send(
      srv.ports.smtp,
      message('Lunch on Thursday', 'X-Spam-Status: No, score=-100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Alice,\r\n\r\nare we still on for lunch on Thursday at noon? The usual place.\r\n\r\nCheers,\r\nSender\r\n'),
    );
    assert.match(r, /^250 /, r);
    const msgs = await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org');
    const m = msgs.at(-1)!;
    assert.match(m.raw, /\r\nX-Spam-Status: No, score=[-\d.]+ required=[\d.]+ engine=rspamd/);
    assert.doesNotMatch(m.raw, /score=-100/);
    assert.match(m.raw, /Authentication-Results: mx\.postern\.test;/);
    const accepted = (await srv.logEntry('message accepted')) as unknown as { verdict: { spam: { action: string }; virus: string } };
    assert.equal(accepted.verdict.spam.action, 'no action');
    assert.equal(accepted.verdict.virus, 'clean');
  });

  it('an IMAP MOVE into Junk trains Rspamd (learnspam), and out of Junk (learnham)', async () => {
    const before = (await rspamdStat(rspamd)).learned;
    const imap = await ImapClient.connect(srv.ports.imap);
    await imap.startTls();
    await imap.login('alice@example.org', PW);
    await imap.ok('SELECT INBOX');
    await imap.ok('UID MOVE 1:* Junk');
    let learned = before;
    for (let i = 0; i < 50 && learned <= before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      learned = (await rspamdStat(rspamd)).learned;
    }
    assert.equal(learned, before + 1, 'one message learned as spam');
    assert.ok(await srv.logEntry('rspamd learned', (l) => l.lesson === 'spam'));
    await imap.ok('SELECT Junk');
    await imap.ok('UID MOVE 1:* INBOX');
    for (let i = 0; i < 50 && !srv.logsMatching('rspamd learned').some((l) => l.lesson === 'ham'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(srv.logsMatching('rspamd learned').some((l) => l.lesson === 'ham'), 'moved out of Junk: learned as ham');
    await imap.ok('LOGOUT').catch(() => undefined);
    imap.close();
  });

  it('EICAR attachment: clamd finds it, Postern answers 554 5.7.1 and logs the signature', async () => {
    const b64 = Buffer.from(EICAR).toString('base64');
    const mime = message(
      'the file you asked for',
      `Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream; name="eicar.com"\r\nContent-Disposition: attachment; filename="eicar.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b1--\r\n`,
    );
    const r = await send(srv.ports.smtp, mime);
    assert.match(r, /^554 5\.7\.1 /, r);
    const found = (await srv.logEntry('virus found; message refused')) as unknown as { signature: string };
    assert.match(found.signature, /Eicar-Test-Signature/);
  });

  it('clamd down: 451 4.7.1 (fail closed)', async () => {
    await clamd.stop();
    const r = await send(srv.ports.smtp, plain('after clamd stopped', 'Hello again, nothing special here.\r\n'));
    assert.match(r, /^451 4\.7\.1 /, r);
  });
});
