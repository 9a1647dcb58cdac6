/**
 * SMTP receiving end to end: real clients (Python smtplib, swaks, a raw socket) against the real server
 * process on 25 (transfer), 465 (implicit TLS submission) and 587 (STARTTLS submission).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestServer } from '../harness/server.js';
import { smtpSession } from '../harness/py.js';
import { RawClient } from '../harness/raw.js';
import { mailboxMessages, queueEntries, dataDirOf } from '../harness/store.js';

const exec = (cmd: string, args: string[]) => promisify(execFile)(cmd, args, { timeout: 30_000 });
const PW = 'correct horse battery';

describe('SMTP receiving', () => {
  let srv: TestServer;
  const data = () => dataDirOf(srv.dir);

  before(async () => {
    srv = await TestServer.create({ smtpToml: '[smtp]\nmax_message_size = "64K"\n' });
    await srv.start();
    for (const a of ['alice@example.org', 'bob@example.org', 'carol@example.net', 'small@example.org']) await srv.addAccount(a, PW);
    for (const [src, dst] of [
      ['info@example.org', 'alice@example.org'],
      ['@catchall.test', 'bob@example.org'],
      ['team@example.org', 'alice@example.org'],
      ['team@example.org', 'bob@example.org'],
      ['fwd@example.org', 'someone@remote.test'],
    ]) {
      const r = await srv.cli(['alias', 'add', src!, dst!]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await srv.cli(['quota', 'set', 'small@example.org', '2K'])).code, 0);
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('port 25 advertises the ESMTP extensions, STARTTLS and never AUTH', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    const banner = await c.reply();
    assert.match(banner[0]!, /^220 mx\.postern\.test /);
    const ehlo = (await c.command('EHLO client.example')).join('\n');
    for (const ext of ['PIPELINING', 'SIZE 65536', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'DSN']) assert.match(ehlo, new RegExp(`250[- ]${ext}`), ext);
    assert.doesNotMatch(ehlo, /AUTH/);
    assert.match((await c.command('STARTTLS'))[0]!, /^220 /);
    await c.startTls();
    const ehlo2 = (await c.command('EHLO client.example')).join('\n');
    assert.doesNotMatch(ehlo2, /AUTH|STARTTLS/);
    assert.match((await c.command('AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHh4eHh4eHh4')).join(''), /^5\d\d /);
    c.close();
  });

  it('delivers to a local account on port 25 in plaintext (smtplib), with a Received header', async () => {
    const r = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'sender@remote.test', to: ['alice@example.org'], subject: 'plain 25' });
    assert.deepEqual(r.steps.map((s) => s.ok), [true], JSON.stringify(r));
    const msgs = await mailboxMessages(data(), 'alice@example.org');
    const m = msgs.find((x) => x.raw.includes('Subject: plain 25'));
    assert.ok(m, 'message stored in INBOX');
    assert.match(m.raw, /^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.postern\.test \(Postern\) with ESMTP\r\n\tid \S+\r\n\tfor <alice@example\.org>;\r\n\t\w{3}, \d+ \w{3} \d{4} /);
    assert.equal(m.size, Buffer.byteLength(m.raw));
  });

  it('delivers on port 25 after STARTTLS; Received names ESMTPS, TLS version and cipher', async () => {
    const r = await smtpSession({ port: srv.ports.smtp, mode: 'starttls', from: 'sender@remote.test', to: ['bob@example.org'], subject: 'tls 25' });
    assert.ok(r.steps.every((s) => s.ok), JSON.stringify(r));
    const m = (await mailboxMessages(data(), 'bob@example.org')).find((x) => x.raw.includes('Subject: tls 25'));
    assert.ok(m);
    assert.match(m.raw, /with ESMTPS\r\n\t\(using TLSv1\.3 with cipher TLS_\w+\)/);
  });

  it('swaks delivers on port 25 with the null sender', async () => {
    const { stdout } = await exec('swaks', ['--server', `127.0.0.1:${srv.ports.smtp}`, '--from', '<>', '--to', 'alice@example.org', '--header', 'Subject: swaks null sender', '--helo', 'swaks.example']);
    assert.match(stdout, /<- +250 2\.0\.0 Ok: queued as \S+/);
    const m = (await mailboxMessages(data(), 'alice@example.org')).find((x) => x.raw.includes('Subject: swaks null sender'));
    assert.ok(m);
  });

  it('submits on 465 (implicit TLS) with AUTH; local recipients stored, remote ones queued', async () => {
    const r = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'alice@example.org', password: PW, from: 'alice@example.org', to: ['bob@example.org', 'friend@remote.test'], subject: 'submit 465' });
    assert.ok(r.steps.every((s) => s.ok), JSON.stringify(r));
    assert.match(r.ehlo, /AUTH PLAIN LOGIN/);
    const m = (await mailboxMessages(data(), 'bob@example.org')).find((x) => x.raw.includes('Subject: submit 465'));
    assert.ok(m);
    assert.match(m.raw, /with ESMTPSA\r\n\t\(using TLSv1\.3/);
    assert.doesNotMatch(m.raw, /\tfor </, 'no "for" clause with several recipients');
    const q = await queueEntries(data());
    const e = q.find((x) => x.recipients.some((rc) => rc.address === 'friend@remote.test'));
    assert.ok(e, 'remote recipient queued');
    assert.equal(e.sender, 'alice@example.org');
    assert.deepEqual(e.recipients.map((rc) => [rc.address, rc.status]), [['friend@remote.test', 'queued']]);
  });

  it('submits on 587 after STARTTLS with AUTH LOGIN (swaks)', async () => {
    const { stdout } = await exec('swaks', ['--server', `127.0.0.1:${srv.ports.submission}`, '--tls', '--auth', 'LOGIN', '--auth-user', 'bob@example.org', '--auth-password', PW, '--from', 'bob@example.org', '--to', 'alice@example.org', '--header', 'Subject: swaks 587']);
    assert.match(stdout, /235 2\.7\.0/);
    const m = (await mailboxMessages(data(), 'alice@example.org')).find((x) => x.raw.includes('Subject: swaks 587'));
    assert.ok(m);
    assert.match(m.raw, /with ESMTPSA/);
  });

  it('587 refuses AUTH and MAIL before STARTTLS and does not advertise AUTH', async () => {
    const c = await RawClient.connect(srv.ports.submission);
    await c.reply();
    const ehlo = (await c.command('EHLO client.example')).join('\n');
    assert.match(ehlo, /STARTTLS/);
    assert.doesNotMatch(ehlo, /AUTH/);
    assert.deepEqual(await c.command('AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=='), ['530 5.7.0 Must issue a STARTTLS command first']);
    assert.deepEqual(await c.command('MAIL FROM:<alice@example.org>'), ['530 5.7.0 Must issue a STARTTLS command first']);
    c.close();
    const r = await smtpSession({ port: srv.ports.submission, mode: 'plain', user: 'alice@example.org', password: PW, send: false });
    assert.equal(r.steps[0]!.ok, false, 'smtplib cannot log in without TLS');
  });

  it('port 25 refuses relaying and unknown local users; accepts aliases, catch-all and subaddresses', async () => {
    const relay = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'x@remote.test', to: ['victim@elsewhere.test'] });
    assert.deepEqual(relay.steps[0]!.refused, { 'victim@elsewhere.test': [554, '5.7.1 Relay access denied'] });
    const unknown = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'x@remote.test', to: ['nobody@example.org'] });
    assert.deepEqual(unknown.steps[0]!.refused, { 'nobody@example.org': [550, '5.1.1 Recipient address rejected: User unknown'] });

    const routed = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'x@remote.test', to: ['info@example.org', 'anything@catchall.test', 'alice+news@example.org', 'team@example.org', 'fwd@example.org'], subject: 'routing' });
    assert.ok(routed.steps.every((s) => s.ok), JSON.stringify(routed));
    const alice = (await mailboxMessages(data(), 'alice@example.org')).filter((x) => x.raw.includes('Subject: routing'));
    const bob = (await mailboxMessages(data(), 'bob@example.org')).filter((x) => x.raw.includes('Subject: routing'));
    assert.equal(alice.length, 1, 'alice gets one copy for info@, alice+news@ and team@');
    assert.equal(bob.length, 1, 'bob gets one copy for the catch-all and team@');
    const fwd = (await queueEntries(data())).find((e) => e.recipients.some((r) => r.address === 'someone@remote.test'));
    assert.ok(fwd, 'the external alias target is queued');
    assert.equal(fwd.recipients[0]!.orcpt, 'rfc822;fwd@example.org');
  });

  it('submission refuses a MAIL FROM the user does not own, accepts its aliases', async () => {
    const spoof = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'bob@example.org', password: PW, from: 'alice@example.org', to: ['carol@example.net'] });
    const send = spoof.steps.find((s) => s.step === 'send')!;
    assert.equal(send.ok, false);
    assert.equal(send.code, 553);
    assert.match(send.message!, /^5\.7\.1 Sender address <alice@example\.org> rejected: not owned by user bob@example\.org/);
    const alias = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'alice@example.org', password: PW, from: 'info@example.org', to: ['carol@example.net'], subject: 'from alias' });
    assert.ok(alias.steps.every((s) => s.ok), JSON.stringify(alias));
    const sub = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'alice@example.org', password: PW, from: 'alice+lists@example.org', to: ['carol@example.net'], subject: 'from subaddress' });
    assert.ok(sub.steps.every((s) => s.ok), JSON.stringify(sub));
  });

  it('a wrong password gets 535 5.7.8 after a growing delay', async () => {
    const t0 = Date.now();
    const r = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'alice@example.org', password: 'wrong password', send: false });
    assert.equal(r.steps[0]!.code, 535);
    assert.match(r.steps[0]!.message!, /^5\.7\.8 /);
    const first = Date.now() - t0;
    const t1 = Date.now();
    await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'alice@example.org', password: 'wrong again', send: false });
    const second = Date.now() - t1;
    assert.ok(first >= 100, `first failure delayed (${first} ms)`);
    assert.ok(second >= 200, `second failure delayed more (${second} ms)`);
    assert.ok(!JSON.stringify(srv.logs).includes('wrong again'), 'passwords never reach the log');
  });

  it('refuses oversized messages with 552 5.3.4 (declared SIZE and actual size)', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO client.example');
    assert.match((await c.command('MAIL FROM:<x@remote.test> SIZE=100000'))[0]!, /^552 5\.3\.4 /);
    assert.match((await c.command('MAIL FROM:<x@remote.test>'))[0]!, /^250 /);
    assert.match((await c.command('RCPT TO:<alice@example.org>'))[0]!, /^250 /);
    assert.match((await c.command('DATA'))[0]!, /^354 /);
    const line = 'x'.repeat(998) + '\r\n';
    c.write(`Subject: too big\r\n\r\n${line.repeat(70)}.\r\n`);
    assert.match((await c.reply())[0]!, /^552 5\.3\.4 /);
    assert.match((await c.command('NOOP'))[0]!, /^250 /, 'the session survives');
    c.close();
    assert.ok(!(await mailboxMessages(data(), 'alice@example.org')).some((m) => m.raw.includes('Subject: too big')));
  });

  it('enforces quotas at RCPT: 552 5.2.2 when the message can never fit, 452 4.2.2 when the mailbox is full', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO client.example');
    await c.command('MAIL FROM:<x@remote.test> SIZE=4000');
    assert.match((await c.command('RCPT TO:<small@example.org>'))[0]!, /^552 5\.2\.2 /);
    await c.command('RSET');
    await c.command('MAIL FROM:<x@remote.test>');
    assert.match((await c.command('RCPT TO:<small@example.org>'))[0]!, /^250 /);
    await c.command('DATA');
    c.write(`Subject: fill\r\n\r\n${'y'.repeat(1900)}\r\n.\r\n`);
    assert.match((await c.reply())[0]!, /^250 /);
    await c.command('MAIL FROM:<x@remote.test>');
    assert.match((await c.command('RCPT TO:<small@example.org>'))[0]!, /^452 4\.2\.2 /);
    c.close();
  });

  it('discards commands pipelined after STARTTLS (CVE-2011-0411 class)', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO client.example');
    c.write('STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n');
    assert.match((await c.reply())[0]!, /^220 /);
    await c.startTls();
    // If the injected MAIL had been executed inside TLS, this MAIL would get 503 (nested MAIL).
    await c.command('EHLO client.example');
    assert.match((await c.command('MAIL FROM:<real@remote.test>'))[0]!, /^250 /);
    assert.equal(c.pending(), '', 'no extra reply for the injected command');
    c.close();
  });

  it('refuses SMTP smuggling: a bare-LF end-of-data is not an end of data, and the message is refused', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO client.example');
    await c.command('MAIL FROM:<x@remote.test>');
    await c.command('RCPT TO:<alice@example.org>');
    await c.command('DATA');
    c.write('Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n');
    const reply = await c.reply();
    assert.deepEqual(reply, ['554 5.6.0 Message contains a bare LF or bare CR; only CRLF line endings are allowed (RFC 5321 2.3.8)']);
    assert.equal(c.pending(), '', 'the smuggled commands were never executed');
    assert.match((await c.command('NOOP'))[0]!, /^250 /);
    c.close();
    assert.ok(!(await mailboxMessages(data(), 'alice@example.org')).some((m) => m.raw.includes('smuggle')));
    assert.ok(!(await mailboxMessages(data(), 'bob@example.org')).some((m) => m.raw.includes('smuggled')));
  });

  it('answers garbage with 5xx and closes a session that keeps erring', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO client.example');
    let last: string[] = [];
    for (let i = 0; i < 25 && !c.closed; i++) {
      try {
        last = await c.command(`FOO${i} bar`);
      } catch {
        break;
      }
    }
    assert.match(last.join(''), /^(421|500)/);
    await c.untilClosed();
    assert.ok(c.closed, 'session closed after too many errors');
  });

  it('refuses HTTP requests sent to the SMTP port', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await c.reply())[0]!, /^421 /);
    c.close();
  });
});

describe('SMTP limits and relay networks', () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.create({ smtpToml: '[smtp]\nrelay_networks = ["127.0.0.0/8"]\n' });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('answers an over-long command line with an error and keeps serving other sessions', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    c.write(`EHLO ${'a'.repeat(20_000)}\r\n`);
    const r = await c.reply().catch(() => ['closed']);
    assert.match(r[0]!, /^(5\d\d|421|closed)/);
    c.close();
    const d = await RawClient.connect(srv.ports.smtp);
    assert.match((await d.reply())[0]!, /^220 /);
    d.close();
  });

  it('closes a session that floods junk commands (NOOP/RSET) without mail, but not a busy sender', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO flood.example');
    let closedAt = -1;
    for (let i = 0; i < 150; i++) {
      const r = await c.command('NOOP').catch(() => ['closed']);
      if (!r[0]!.startsWith('250')) {
        assert.equal(r[0], '421 4.7.0 Too many commands without mail, closing connection');
        closedAt = i;
        break;
      }
    }
    assert.equal(closedAt, 100);
    const busy = await RawClient.connect(srv.ports.smtp);
    await busy.reply();
    await busy.command('EHLO busy.example');
    for (let i = 0; i < 120; i++) {
      assert.match((await busy.command('MAIL FROM:<x@remote.test>'))[0]!, /^250 /);
      assert.match((await busy.command('RCPT TO:<alice@example.org>'))[0]!, /^250 /);
      assert.match((await busy.command('DATA'))[0]!, /^354 /);
      busy.write(`Subject: busy ${i}\r\n\r\nhi\r\n.\r\n`);
      assert.match((await busy.reply())[0]!, /^250 /);
      assert.match((await busy.command('RSET'))[0]!, /^250 /, `RSET after message ${i}`);
    }
    busy.close();
  });

  it('swaks delivers on port 25 with STARTTLS', async () => {
    const { stdout } = await exec('swaks', ['--server', `127.0.0.1:${srv.ports.smtp}`, '--tls', '--from', 'sender@remote.test', '--to', 'alice@example.org', '--header', 'Subject: swaks starttls 25']);
    assert.match(stdout, /<~ +250 2\.0\.0 Ok: queued as \S+/);
    const m = (await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org')).find((x) => x.raw.includes('Subject: swaks starttls 25'));
    assert.ok(m);
    assert.match(m.raw, /with ESMTPS/);
  });

  it('relays without AUTH for clients in relay_networks (queued for outbound delivery)', async () => {
    const r = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'app@internal.example', to: ['customer@elsewhere.test'], subject: 'relayed' });
    assert.ok(r.steps.every((s) => s.ok), JSON.stringify(r));
    const e = (await queueEntries(dataDirOf(srv.dir))).find((q) => q.recipients.some((x) => x.address === 'customer@elsewhere.test'));
    assert.ok(e, 'queued');
    assert.equal(e.sender, 'app@internal.example');
  });
});
