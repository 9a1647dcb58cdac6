/**
 * Inbound protection on port 25, end to end: the real server process with [protection] on, our test DNS server
 * for SPF/DKIM/DMARC/ARC/DNSBL/PTR data, raw SMTP clients. Covers: non-SMTP (HTTP) commands, pregreet,
 * pipelining before the EHLO reply, HELO sanity, a DNSBL-listed client, greylisting (451, then accepted after
 * a short delay), DMARC reject (550 5.7.1) and quarantine (Junk), an ARC-sealed list message from a trusted
 * sealer, and the Authentication-Results header as stored (forged ones removed).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { mailboxMessages, dataDirOf } from '../harness/store.js';
import { rsaKey, keyRecord, message, sign, seal, type TestKey } from '../harness/mailauth.js';

const GREYLIST_DELAY_MS = 2500;

interface Sent {
  replies: string[];
  /** The reply that ended the transaction (first non-2xx/3xx, or the DATA result). */
  last: string;
}

async function banner(c: RawClient): Promise<string> {
  return (await c.reply())[0]!;
}

/** One transaction over a fresh connection; stops at the first refusal. */
async function send(port: number, from: string, to: string, raw: string, helo = 'client.pass.test'): Promise<Sent> {
  const c = await RawClient.connect(port);
  const replies: string[] = [];
  try {
    replies.push(await banner(c));
    for (const cmd of [`EHLO ${helo}`, `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA']) {
      const r = await c.command(cmd);
      const line = r[r.length - 1]!;
      replies.push(line);
      if (!/^[23]/.test(line)) return { replies, last: line };
    }
    const body = raw.replace(/\r\n\./g, '\r\n..');
    c.write(body.endsWith('\r\n') ? `${body}.\r\n` : `${body}\r\n.\r\n`);
    const end = (await c.reply())[0]!;
    replies.push(end);
    c.write('QUIT\r\n');
    return { replies, last: end };
  } finally {
    c.close();
  }
}

describe('inbound protection (port 25)', () => {
  let srv: TestServer;
  let dns: DnsServer;
  let rsa: TestKey;
  let list: TestKey;
  const data = () => dataDirOf(srv.dir);

  before(async () => {
    rsa = rsaKey();
    list = rsaKey();
    dns = await startDnsServer({
      records: {
        'pass.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
        'fail.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
        'reject.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
        '_dmarc.reject.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
        'sel._domainkey.reject.test': keyRecord(rsa),
        '_dmarc.quar.test': [{ type: 'TXT', data: 'v=DMARC1; p=quarantine' }],
        'client.pass.test': [{ type: 'A', data: '127.0.0.1' }],
        '1.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'client.pass.test' }],
        'lists.trusted.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
        'arc._domainkey.lists.trusted.test': keyRecord(list),
      },
    });
    srv = await TestServer.create({
      extraToml: `[dns]
servers = ["${dns.address}"]
[protection]
enabled = true
screen_exempt = []
greylisting = true
greylist_delay = "${GREYLIST_DELAY_MS}ms"
pregreet_wait = "800ms"
dnsbl = ["zen.test*2", "bl.test"]
dnsbl_threshold = 2
dnsbl_cache_time = "0ms"
arc_trusted_sealers = ["trusted.test"]
`,
    });
    await srv.start();
    await srv.addAccount('bob@example.org');
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
    await dns.close();
  });

  it('refuses a client that talks before the banner (pregreet), and makes unknown clients wait', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    c.write('EHLO early.test\r\n');
    const r = await c.reply();
    assert.match(r[0]!, /^421 .*talk too soon/i);
    await c.untilClosed(3000);
    assert.equal(c.closed, true);
    assert.ok(await srv.logEntry('client talked before the banner (pregreet)'));

    // An unknown client waits pregreet_wait for the banner; once it waited, it is known and waits no more.
    let t = Date.now();
    const a = await RawClient.connect(srv.ports.smtp);
    assert.match(await banner(a), /^220 /);
    assert.ok(Date.now() - t >= 700, `waited ${Date.now() - t} ms`);
    a.close();
    t = Date.now();
    const b = await RawClient.connect(srv.ports.smtp);
    assert.match(await banner(b), /^220 /);
    assert.ok(Date.now() - t < 500, `known client waited ${Date.now() - t} ms`);
    b.close();
  });

  it('closes on HTTP verbs (a web page speaking to port 25)', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await banner(c);
    c.write('GET / HTTP/1.1\r\nHost: mx.postern.test\r\n\r\n');
    const r = await c.reply();
    assert.match(r[0]!, /^421 .*HTTP requests not allowed/);
    await c.untilClosed(3000);
    assert.equal(c.closed, true);
  });

  it('HELO sanity: our own name and a foreign address literal are refused', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await banner(c);
    assert.match((await c.command('EHLO mx.postern.test'))[0]!, /^550 5\.7\.1 /);
    assert.match((await c.command('HELO [192.0.2.1]'))[0]!, /^550 5\.7\.1 /);
    assert.match((await c.command('HELO [127.0.0.1]'))[0]!, /^250 /);
    c.close();
  });

  it('refuses commands pipelined before the EHLO reply (RFC 2920 3.1)', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await banner(c);
    c.write('EHLO bot.test\r\nMAIL FROM:<a@pass.test>\r\nRCPT TO:<bob@example.org>\r\n');
    const ehlo = await c.reply();
    assert.match(ehlo[ehlo.length - 1]!, /^250 /);
    assert.match((await c.reply())[0]!, /^554 5\.5\.1 /);
    await c.untilClosed(3000);
    assert.equal(c.closed, true);
    // Normal PIPELINING after the EHLO reply is fine (and the client was forgotten: it waits again).
    const d = await RawClient.connect(srv.ports.smtp);
    await banner(d);
    await d.command('EHLO client.pass.test');
    d.write('MAIL FROM:<a@pass.test>\r\nRSET\r\n');
    assert.match((await d.reply())[0]!, /^250 /);
    assert.match((await d.reply())[0]!, /^250 /);
    d.close();
  });

  it('refuses a client listed in DNSBLs with a score over the threshold (RFC 5782)', async () => {
    dns.set('1.0.0.127.zen.test', [{ type: 'A', data: '127.0.0.2' }]);
    try {
      const c = await RawClient.connect(srv.ports.smtp);
      const r = await c.reply();
      assert.match(r[0]!, /^554 5\.7\.1 .*\[127\.0\.0\.1\] blocked using zen\.test/);
      c.close();
    } finally {
      dns.remove('1.0.0.127.zen.test');
    }
    // Listed on one weight-1 list only: under the threshold.
    dns.set('1.0.0.127.bl.test', [{ type: 'A', data: '127.0.0.2' }]);
    try {
      const c = await RawClient.connect(srv.ports.smtp);
      assert.match(await banner(c), /^220 /);
      c.close();
    } finally {
      dns.remove('1.0.0.127.bl.test');
    }
  });

  it('greylists a new triplet with 451 4.7.1, accepts the retry after the delay, with Authentication-Results', async () => {
    const raw = message({ from: 'alice@pass.test', to: 'bob@example.org', subject: 'greylisted first' });
    const first = await send(srv.ports.smtp, 'alice@pass.test', 'bob@example.org', raw);
    assert.match(first.last, /^451 4\.7\.1 /, JSON.stringify(first.replies));
    await new Promise((r) => setTimeout(r, GREYLIST_DELAY_MS + 300));
    const retry = await send(srv.ports.smtp, 'alice@pass.test', 'bob@example.org', raw);
    assert.match(retry.last, /^250 /, JSON.stringify(retry.replies));
    const msgs = await mailboxMessages(data(), 'bob@example.org');
    const m = msgs.find((x) => x.raw.includes('greylisted first'));
    assert.ok(m);
    const ar = m.raw.match(/^Authentication-Results: [\s\S]*?\r\n(?![ \t])/m)?.[0] ?? '';
    assert.match(ar, /^Authentication-Results: mx\.postern\.test;/);
    assert.match(ar, /spf=pass/);
    assert.match(ar, /iprev=pass/);
    assert.ok(m.raw.indexOf('Received:') < m.raw.indexOf('Authentication-Results:'), 'after Received');
    // The network passed: other senders are no longer greylisted.
    const other = await send(srv.ports.smtp, 'carol@pass.test', 'bob@example.org', message({ from: 'carol@pass.test', to: 'bob@example.org', subject: 'auto-allowed' }));
    assert.match(other.last, /^250 /, JSON.stringify(other.replies));
  });

  it('DMARC p=reject with a broken DKIM signature: 550 5.7.1 at the end of DATA', async () => {
    const raw = (await sign(message({ from: 'ceo@reject.test', to: 'bob@example.org', subject: 'wire money' }), 'reject.test', 'sel', rsa)).replace('Hello there.', 'Hello THERE.');
    const r = await send(srv.ports.smtp, 'ceo@reject.test', 'bob@example.org', raw);
    assert.match(r.last, /^550 5\.7\.1 .*DMARC/, JSON.stringify(r.replies));
    // A good signature passes DMARC and is delivered.
    const ok = await sign(message({ from: 'ceo@reject.test', to: 'bob@example.org', subject: 'signed ok' }), 'reject.test', 'sel', rsa);
    assert.match((await send(srv.ports.smtp, 'ceo@reject.test', 'bob@example.org', ok)).last, /^250 /);
    const m = (await mailboxMessages(data(), 'bob@example.org')).find((x) => x.raw.includes('signed ok'));
    assert.match(m!.raw, /dkim=pass header\.i=@reject\.test/);
    assert.match(m!.raw, /dmarc=pass/);
  });

  it('DMARC p=quarantine delivers to Junk', async () => {
    const r = await send(srv.ports.smtp, 'news@pass.test', 'bob@example.org', message({ from: 'news@quar.test', to: 'bob@example.org', subject: 'quarantined' }));
    assert.match(r.last, /^250 /, JSON.stringify(r.replies));
    const junk = await mailboxMessages(data(), 'bob@example.org', 'Junk');
    assert.ok(junk.some((x) => x.raw.includes('quarantined')));
    assert.ok(!(await mailboxMessages(data(), 'bob@example.org')).some((x) => x.raw.includes('quarantined')));
  });

  it('delivers ARC-sealed list mail from a trusted sealer although DKIM broke; removes forged Authentication-Results', async () => {
    const original = await sign(message({ from: 'ceo@reject.test', to: 'members@lists.trusted.test', subject: 'list post' }), 'reject.test', 'sel', rsa);
    const modified = original.replace(/\r\n$/, '\r\n-- \r\nList footer.\r\n').replace('Subject: list post', 'Subject: [list] list post');
    const sealed = await seal(
      modified.replace('MIME-Version: 1.0', 'Authentication-Results: mx.postern.test; dmarc=pass header.from=forged.test\r\nMIME-Version: 1.0'),
      'lists.trusted.test',
      'arc',
      list,
      'lists.trusted.test; dkim=pass header.d=reject.test header.s=sel; dmarc=pass header.from=reject.test',
    );
    const r = await send(srv.ports.smtp, 'bounces@lists.trusted.test', 'bob@example.org', sealed);
    assert.match(r.last, /^250 /, JSON.stringify(r.replies));
    const m = (await mailboxMessages(data(), 'bob@example.org')).find((x) => x.raw.includes('[list] list post'));
    assert.ok(m);
    assert.match(m.raw, /arc=pass/);
    assert.match(m.raw, /dmarc=fail \(not enforced: trusted ARC sealer lists\.trusted\.test\)/);
    assert.doesNotMatch(m.raw, /forged\.test/);
    assert.equal((m.raw.match(/^Authentication-Results:/gm) ?? []).length, 1);
  });

  it('SPF fail with nothing else vouching: 550 5.7.23', async () => {
    const r = await send(srv.ports.smtp, 'x@fail.test', 'bob@example.org', message({ from: 'x@fail.test', to: 'bob@example.org', subject: 'spf fail' }));
    assert.match(r.last, /^550 5\.7\.23 /, JSON.stringify(r.replies));
  });
});

describe('rate limits on port 25', () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.create({
      extraToml: '[protection]\nenabled = true\nscreen_exempt = []\ndnsbl = []\ngreylisting = false\npregreet_wait = "0s"\nrate_limit_messages_per_minute = 3\nrate_limit_recipients_per_minute = 5\n',
    });
    await srv.start();
    await srv.addAccount('alice@example.org', 'correct horse battery');
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('answers the client IP over its per-minute limits with 4xx, and the session survives', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await banner(c);
    await c.command('EHLO client.pass.test');
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const mail = (await c.command(`MAIL FROM:<r${i}@remote.test>`))[0]!;
      codes.push(mail.slice(0, 9));
      if (!mail.startsWith('250')) break;
      assert.match((await c.command('RCPT TO:<alice@example.org>'))[0]!, /^250 /);
      assert.match((await c.command('DATA'))[0]!, /^354 /);
      c.write(`Subject: rate ${i}\r\n\r\nhi\r\n.\r\n`);
      assert.match((await c.reply())[0]!, /^250 /);
    }
    assert.deepEqual(codes, ['250 2.1.0', '250 2.1.0', '250 2.1.0', '450 4.7.1']);
    assert.match((await c.command('NOOP'))[0]!, /^250 /, 'the session survives the 4xx');
    c.close();
    const stored = [...(await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org')), ...(await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org', 'Junk'))];
    assert.equal(stored.filter((m) => /Subject: rate \d/.test(m.raw)).length, 3, 'the three accepted messages were delivered');
  });
});
