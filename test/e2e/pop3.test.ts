/**
 * POP3 end to end: the compiled server on 110 (STLS required) and 995 (implicit TLS), mail delivered through
 * the real SMTP listener, fetched by Python poplib, curl, fetchmail and our byte-exact client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { TestServer } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { python } from '../harness/py.js';
import { Pop3Client } from '../harness/pop3.js';
import { ImapFlow } from 'imapflow';

const PASSWORD = 'correct horse battery';
let srv: TestServer;

/** Delivers one message through the SMTP listener (port 25 role), dot-stuffing it as RFC 5321 4.5.2 says. */
async function deliver(to: string, message: string | Buffer): Promise<void> {
  const c = await RawClient.connect(srv.ports.smtp);
  try {
    assert.match((await c.reply())[0]!, /^220 /);
    await c.command('EHLO client.example');
    assert.match((await c.command('MAIL FROM:<sender@example.net>'))[0]!, /^250 /);
    assert.match((await c.command(`RCPT TO:<${to}>`))[0]!, /^250 /);
    assert.match((await c.command('DATA'))[0]!, /^354 /);
    const body = Buffer.isBuffer(message) ? message.toString('latin1') : message;
    c.write(Buffer.from(body.replace(/^\./gm, '..') + (body.endsWith('\r\n') ? '' : '\r\n') + '.\r\n', 'latin1'));
    assert.match((await c.reply(60_000))[0]!, /^250 /);
    await c.command('QUIT');
  } finally {
    c.close();
  }
}

function simple(subject: string): string {
  return `From: <sender@example.net>\r\nTo: <x@example.org>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@client.example>\r\n\r\nBody of ${subject}.\r\n.starts with a dot\r\n`;
}

/** Logs in over 995 (implicit TLS) with USER/PASS; returns the client in TRANSACTION state. */
async function login(user: string, opts: { tls?: 'implicit' | 'stls' } = {}): Promise<{ c: Pop3Client; reply: string }> {
  const mode = opts.tls ?? 'implicit';
  const { client: c } = await Pop3Client.connect(mode === 'implicit' ? srv.ports.pop3s : srv.ports.pop3, { tls: mode === 'implicit' });
  if (mode === 'stls') assert.match(await c.stls(), /^\+OK/);
  assert.match(await c.command(`USER ${user}`), /^\+OK/);
  return { c, reply: await c.command(`PASS ${PASSWORD}`) };
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

before(async () => {
  srv = await TestServer.create({ listeners: ['smtp', 'pop3', 'pop3s', 'imaps'] });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'kate']) await srv.addAccount(`${u}@example.org`, PASSWORD);
  await srv.start();
});

after(async () => {
  await srv?.stop();
  srv?.cleanup();
});

const POPLIB = String.raw`
import json, sys, poplib, ssl
a = json.load(sys.stdin)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
o = {}
if a["mode"] == "ssl":
    p = poplib.POP3_SSL("127.0.0.1", a["port"], context=ctx, timeout=20)
else:
    p = poplib.POP3("127.0.0.1", a["port"], timeout=20)
    o["capa_plain"] = p.capa()
    try:
        p.user(a["user"]); o["user_plain"] = "accepted"
    except poplib.error_proto as e:
        o["user_plain"] = str(e)
    p.stls(context=ctx)
o["welcome"] = p.getwelcome().decode()
o["capa"] = p.capa()
p.user(a["user"]); o["pass"] = p.pass_(a["password"]).decode()
o["stat"] = list(p.stat())
o["list"] = [x.decode() for x in p.list()[1]]
o["uidl"] = [x.decode() for x in p.uidl()[1]]
o["retr"] = [[x.decode("latin1") for x in p.retr(i + 1)[1]] for i in range(o["stat"][0])]
o["top"] = [x.decode("latin1") for x in p.top(1, 0)[1]] if o["stat"][0] else []
o["quit"] = p.quit().decode()
print(json.dumps(o))
`;

interface PoplibOut {
  capa_plain?: Record<string, string[]>;
  user_plain?: string;
  welcome: string;
  capa: Record<string, string[]>;
  pass: string;
  stat: [number, number];
  list: string[];
  uidl: string[];
  retr: string[][];
  top: string[];
  quit: string;
}

test('poplib on 110: STLS required, CAPA per RFC 2449, USER/PASS, STAT/LIST/UIDL/RETR/TOP', async () => {
  await deliver('alice@example.org', simple('first'));
  await deliver('alice@example.org', simple('second'));
  const o = await python<PoplibOut>(POPLIB, { mode: 'stls', port: srv.ports.pop3, user: 'alice@example.org', password: PASSWORD });
  assert.deepEqual(Object.keys(o.capa_plain!), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS', 'EXPIRE', 'IMPLEMENTATION']);
  assert.match(o.user_plain!, /^b?'-ERR \[AUTH\]/);
  assert.deepEqual(Object.keys(o.capa), ['TOP', 'USER', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL', 'EXPIRE', 'IMPLEMENTATION']);
  assert.deepEqual(o.capa.SASL, ['PLAIN']);
  assert.deepEqual(o.capa.EXPIRE, ['NEVER']);
  assert.match(o.pass, /^\+OK .*2 messages/);
  assert.equal(o.stat[0], 2);
  assert.equal(o.list.length, 2);
  const sizes = o.list.map((l) => Number(l.split(' ')[1]));
  assert.equal(o.stat[1], sizes[0]! + sizes[1]!);
  assert.equal(o.uidl.length, 2);
  for (const [i, u] of o.uidl.entries()) assert.match(u, new RegExp(`^${i + 1} [\\x21-\\x7e]{1,70}$`));
  assert.ok(o.retr[0]!.includes('Subject: first'));
  assert.ok(o.retr[0]!.includes('.starts with a dot'), 'dot-stuffing undone by poplib');
  assert.ok(o.retr[1]!.includes('Subject: second'));
  // RFC 1939 LIST: the octet count equals the bytes of the message (CRLF line ends).
  assert.equal(o.retr[0]!.reduce((n, l) => n + Buffer.byteLength(l, 'latin1') + 2, 0), sizes[0]);
  assert.ok(o.top.includes('Subject: first') && o.top.at(-1) === '' && !o.top.some((l) => l.startsWith('Body of')));
  assert.match(o.quit, /^\+OK/);
});

test('poplib on 995 (implicit TLS); UIDL equal across sessions', async () => {
  const a = await python<PoplibOut>(POPLIB, { mode: 'ssl', port: srv.ports.pop3s, user: 'alice@example.org', password: PASSWORD });
  const b = await python<PoplibOut>(POPLIB, { mode: 'stls', port: srv.ports.pop3, user: 'alice@example.org', password: PASSWORD });
  assert.match(a.welcome, /^\+OK/);
  assert.ok(!('STLS' in a.capa), 'no STLS on 995');
  assert.ok('USER' in a.capa && 'SASL' in a.capa);
  assert.equal(a.stat[0], 2);
  assert.deepEqual(a.uidl, b.uidl);
});

test('curl pop3s:// lists and retrieves', async () => {
  await deliver('bob@example.org', simple('curl test'));
  const url = `pop3s://127.0.0.1:${srv.ports.pop3s}/`;
  const list = await run('curl', ['-sS', '-k', '--max-time', '20', '-u', `bob@example.org:${PASSWORD}`, url]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^1 \d+\r?\n$/);
  const msg = await run('curl', ['-sS', '-k', '--max-time', '20', '-u', `bob@example.org:${PASSWORD}`, url + '1']);
  assert.equal(msg.code, 0, msg.stderr);
  assert.match(msg.stdout, /Subject: curl test/);
  assert.match(msg.stdout, /\r\n\.starts with a dot\r\n/);
  // STLS on 110 too (--ssl-reqd: curl refuses to continue without it).
  const stls = await run('curl', ['-sS', '-k', '--ssl-reqd', '--max-time', '20', '-u', `bob@example.org:${PASSWORD}`, `pop3://127.0.0.1:${srv.ports.pop3}/1`]);
  assert.equal(stls.code, 0, stls.stderr);
  assert.match(stls.stdout, /Subject: curl test/);
});

test('fetchmail (Debian) pulls the mailbox over 995 and deletes what it fetched', { skip: !existsSync('/usr/bin/fetchmail') && 'fetchmail not installed' }, async () => {
  for (const s of ['fm one', 'fm two', 'fm three']) await deliver('carol@example.org', simple(s));
  const home = mkdtempSync(path.join(srv.dir, 'fetchmail-'));
  const out = path.join(home, 'mbox');
  const rc = path.join(home, 'fetchmailrc');
  writeFileSync(
    rc,
    `set no syslog\npoll 127.0.0.1 service ${srv.ports.pop3s} protocol pop3 uidl\n  user "carol@example.org" there with password "${PASSWORD}" is "carol" here\n  ssl no sslcertck\n  mda "/bin/sh -c 'cat >> ${out}'"\n`,
  );
  chmodSync(rc, 0o600);
  const r = await run('fetchmail', ['-f', rc, '-v', '--nodetach', '--pidfile', path.join(home, 'pid')], { env: { HOME: home, FETCHMAILHOME: home } });
  assert.equal(r.code, 0, `fetchmail exit ${r.code}: ${r.stdout}\n${r.stderr}`);
  const mbox = readFileSync(out, 'latin1');
  for (const s of ['fm one', 'fm two', 'fm three']) assert.match(mbox, new RegExp(`Subject: ${s}`));
  assert.match(mbox, /\n\.starts with a dot\r?\n/);
  // fetchmail deletes after fetching (no "keep"): the maildrop is empty now.
  const { c, reply } = await login('carol@example.org');
  assert.match(reply, /^\+OK/);
  assert.equal(await c.command('STAT'), '+OK 0 0');
  await c.command('QUIT');
});

test('DELE + QUIT removes; DELE + dropped connection removes nothing; RSET unmarks; UIDs stay stable', async () => {
  for (const s of ['d1', 'd2', 'd3']) await deliver('dave@example.org', simple(s));
  let { c, reply } = await login('dave@example.org');
  assert.match(reply, /3 messages/);
  const uidl0 = (await c.multi('UIDL')).lines;
  assert.equal(await c.command('DELE 1'), '+OK message 1 deleted');
  assert.match(await c.command('DELE 1'), /^-ERR /);
  assert.match(await c.command('RETR 1'), /^-ERR /);
  assert.equal((await c.multi('LIST')).lines.length, 2);
  assert.match(await c.command('RSET'), /^\+OK .*3 messages/);
  assert.equal(await c.command('DELE 2'), '+OK message 2 deleted');
  c.close(); // dropped without QUIT: RFC 1939 6, no UPDATE
  await new Promise((r) => setTimeout(r, 200));

  ({ c, reply } = await login('dave@example.org'));
  assert.match(reply, /3 messages/, 'nothing deleted by a dropped session');
  assert.deepEqual((await c.multi('UIDL')).lines, uidl0);
  assert.equal(await c.command('DELE 2'), '+OK message 2 deleted');
  assert.match(await c.command('QUIT'), /^\+OK .*2 messages left/);
  await c.untilClosed();

  ({ c, reply } = await login('dave@example.org'));
  assert.match(reply, /2 messages/);
  const uidl1 = (await c.multi('UIDL')).lines.map((l) => l.split(' ')[1]);
  assert.deepEqual(uidl1, [uidl0[0]!.split(' ')[1], uidl0[2]!.split(' ')[1]], 'remaining messages keep their unique ids');
  assert.match((await c.multi('RETR 2')).data.toString(), /Subject: d3/);
  await c.command('QUIT');
});

test('a second session on the same maildrop gets -ERR [IN-USE], across 110 and 995', async () => {
  await deliver('erin@example.org', simple('lock'));
  const a = await login('erin@example.org', { tls: 'stls' });
  assert.match(a.reply, /^\+OK/);
  const b = await login('erin@example.org');
  assert.match(b.reply, /^-ERR \[IN-USE\]/);
  // Still in AUTHORIZATION: it may retry once the lock is free.
  assert.match(await a.c.command('QUIT'), /^\+OK/);
  await a.c.untilClosed();
  assert.match(await b.c.command('USER erin@example.org'), /^\+OK/);
  assert.match(await b.c.command(`PASS ${PASSWORD}`), /^\+OK/);
  // A dropped connection releases the lock too.
  b.c.close();
  await new Promise((r) => setTimeout(r, 200));
  const c = await login('erin@example.org');
  assert.match(c.reply, /^\+OK/);
  c.c.close();
});

test('before STLS on 110: USER, PASS and AUTH answer -ERR [AUTH]; bytes pipelined after STLS are discarded', async () => {
  const { client: c, greeting } = await Pop3Client.connect(srv.ports.pop3);
  assert.match(greeting, /^\+OK/);
  assert.match(await c.command('USER frank@example.org'), /^-ERR \[AUTH\] /);
  assert.match(await c.command(`PASS ${PASSWORD}`), /^-ERR \[AUTH\] /);
  assert.match(await c.command('AUTH PLAIN ' + Buffer.from(`\0frank@example.org\0${PASSWORD}`).toString('base64')), /^-ERR \[AUTH\] /);
  assert.match(await c.command('AUTH'), /^-ERR \[AUTH\] /);
  const capa = await c.multi('CAPA');
  assert.ok(!capa.lines.includes('USER') && !capa.lines.some((l) => l.startsWith('SASL')) && capa.lines.includes('STLS'));
  // RFC 2595 4 / STARTTLS injection: "USER" sent in the clear right behind STLS must not count after TLS.
  c.write('STLS\r\nUSER frank@example.org\r\nCAPA\r\n');
  assert.match(await c.line(), /^\+OK/);
  await c.upgrade();
  assert.match(await c.command(`PASS ${PASSWORD}`), /^-ERR USER first/);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.pending(), '', 'no reply to injected commands');
  assert.match(await c.command('STLS'), /^-ERR /, 'no second STLS');
  assert.match(await c.command('USER frank@example.org'), /^\+OK/);
  assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK/);
  await c.command('QUIT');
});

test('AUTH PLAIN with initial response and with continuation (RFC 5034); bad ones fail cleanly', async () => {
  await deliver('grace@example.org', simple('sasl'));
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  let { client: c } = await Pop3Client.connect(srv.ports.pop3s, { tls: true });
  assert.deepEqual((await c.multi('AUTH')).lines, ['PLAIN']);
  assert.match(await c.command('AUTH CRAM-MD5'), /^-ERR /);
  assert.match(await c.command('AUTH PLAIN'), /^\+ ?$/);
  assert.match(await c.command('*'), /^-ERR /, 'cancelled');
  assert.match(await c.command(`AUTH PLAIN ${b64(`\0grace@example.org\0${PASSWORD}`)}`), /^\+OK .*1 messages/);
  assert.equal(await c.command('STAT'), (await c.command('STAT')));
  await c.command('QUIT');

  ({ client: c } = await Pop3Client.connect(srv.ports.pop3s, { tls: true }));
  assert.match(await c.command('AUTH PLAIN'), /^\+/);
  assert.match(await c.command(b64(`grace@example.org\0grace@example.org\0${PASSWORD}`)), /^\+OK/);
  await c.command('QUIT');

  ({ client: c } = await Pop3Client.connect(srv.ports.pop3s, { tls: true }));
  assert.match(await c.command(`AUTH PLAIN ${b64(`other@example.org\0grace@example.org\0${PASSWORD}`)}`), /^-ERR \[AUTH\]/);
  assert.match(await c.command('AUTH PLAIN =='), /^-ERR /);
  c.close();
});

test('failed logins back off (shared limiter) and answer -ERR [AUTH]; passwords never logged', async () => {
  const { client: c } = await Pop3Client.connect(srv.ports.pop3s, { tls: true });
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    assert.match(await c.command('USER heidi@example.org'), /^\+OK/);
    const t0 = Date.now();
    assert.match(await c.command(`PASS wrong-password-${i}`), /^-ERR \[AUTH\] /);
    times.push(Date.now() - t0);
  }
  // [accounts] auth_failure_delay = 100ms, max 400ms in the test configuration: 100, 200, 400.
  assert.ok(times[0]! >= 90 && times[1]! >= 190 && times[2]! >= 390, `delays ${times}`);
  assert.match(await c.command('USER heidi@example.org'), /^\+OK/);
  assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK/);
  await c.command('QUIT');
  await new Promise((r) => setTimeout(r, 200));
  const all = JSON.stringify(srv.logs);
  assert.ok(!all.includes('wrong-password') && !all.includes(PASSWORD), 'no password in the log');
  assert.ok(await srv.logEntry('authentication failed', (l) => l.proto === 'pop3' && l.user === 'heidi@example.org'));
});

test('malformed input gets -ERR and the session survives; a flood of errors closes it', async () => {
  await deliver('ivan@example.org', simple('malformed'));
  const { client: c } = await Pop3Client.connect(srv.ports.pop3s, { tls: true });
  assert.match(await c.command('XYZZY'), /^-ERR /);
  assert.match(await c.command('\u0000\u00ff\u0001'), /^-ERR /);
  assert.match(await c.command('STAT'), /^-ERR /, 'STAT before login');
  assert.match(await c.command('A'.repeat(10_000)), /^-ERR Line too long/);
  assert.match(await c.command('APOP x y'), /^-ERR /);
  assert.equal((await c.multi('CAPA')).status, '+OK Capability list follows');
  // Pipelined commands are answered in order (RFC 2449 6.6).
  c.write('USER ivan@example.org\r\nPASS ' + PASSWORD + '\r\nSTAT\r\nRETR 0\r\nLIST 99\r\nTOP 1\r\nNOOP\r\n');
  assert.match(await c.line(), /^\+OK/);
  assert.match(await c.line(), /^\+OK maildrop locked/);
  assert.match(await c.line(), /^\+OK 1 \d+$/);
  assert.match(await c.line(), /^-ERR Syntax/);
  assert.match(await c.line(), /^-ERR No such message/);
  assert.match(await c.line(), /^-ERR Syntax/);
  assert.equal(await c.line(), '+OK');
  assert.match(await c.command('BOGUS'), /^-ERR Unknown command/);
  // That was the 9th error; the 10th closes the session (nothing deleted: no UPDATE).
  assert.match(await c.command('BOGUS'), /^-ERR /);
  assert.match(await c.line(), /^-ERR Too many errors/);
  await c.untilClosed();
  assert.ok(c.closed);
});

test('a 5 MB message streams with the exact octet count and dot-stuffing', async () => {
  const line = (i: number) => (i % 7 === 0 ? '.' : '') + `line ${i} `.padEnd(70, 'x');
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < 5 * 1024 * 1024; i++) {
    const l = line(i);
    lines.push(l);
    size += l.length + 2;
  }
  const message = `From: <sender@example.net>\r\nTo: <alice@example.org>\r\nSubject: big\r\n\r\n${lines.join('\r\n')}\r\n.\r\n..\r\n`;
  await deliver('frank@example.org', message);
  const { c, reply } = await login('frank@example.org');
  assert.match(reply, /1 messages/);
  const listed = Number((await c.command('LIST 1')).split(' ')[2]);
  const t0 = Date.now();
  const status = await c.command('RETR 1');
  const m = /^\+OK (\d+) octets$/.exec(status);
  assert.ok(m, status);
  const { raw, data } = await c.body(60_000);
  assert.equal(Number(m[1]), listed);
  assert.equal(data.length, listed, 'octet count = bytes after un-stuffing');
  assert.ok(raw.length > data.length, 'stuffed lines were sent');
  const text = data.toString('latin1');
  assert.ok(text.endsWith(message), 'stored message (after the Received prefix) is the one sent');
  assert.ok(text.startsWith('Received: '));
  // TOP on the same message: header + 1 body line, stuffed.
  assert.match(await c.command('TOP 1 1'), /^\+OK/);
  const top = await c.body();
  assert.ok(top.raw.toString('latin1').endsWith('\r\n\r\n..' + 'line 0 '.padEnd(70, 'x') + '\r\n'));
  await c.command('QUIT');
  assert.ok(Date.now() - t0 < 20_000);
});

test('an IMAP session on the same INBOX sees the expunges of a POP3 QUIT', async () => {
  for (const s of ['i1', 'i2', 'i3']) await deliver('judy@example.org', simple(s));
  const imap = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { rejectUnauthorized: false }, auth: { user: 'judy@example.org', pass: PASSWORD }, logger: false });
  await imap.connect();
  try {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      assert.equal((imap.mailbox as { exists: number }).exists, 3);
      const expunged: unknown[] = [];
      imap.on('expunge', (e: unknown) => expunged.push(e));
      const { c } = await login('judy@example.org');
      assert.equal(await c.command('DELE 1'), '+OK message 1 deleted');
      assert.equal(await c.command('DELE 3'), '+OK message 3 deleted');
      assert.match(await c.command('QUIT'), /^\+OK/);
      await c.untilClosed();
      const deadline = Date.now() + 5000;
      while (expunged.length < 2 && Date.now() < deadline) {
        await imap.noop();
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(expunged.length, 2, 'two EXPUNGE/VANISHED notifications');
      assert.equal((imap.mailbox as { exists: number }).exists, 1);
      const left = await imap.fetchOne('*', { envelope: true });
      assert.equal(left && left.envelope?.subject, 'i2');
    } finally {
      lock.release();
    }
  } finally {
    await imap.logout().catch(() => undefined);
  }
});

test('RETR marks a message \\Seen for IMAP at QUIT (as Dovecot), TOP and a dropped session do not', async () => {
  for (const s of ['s1', 's2', 's3']) await deliver('kate@example.org', simple(s));
  const first = await login('kate@example.org');
  assert.match((await first.c.multi('RETR 1')).status, /^\+OK/);
  await first.c.untilClosed(300).catch(() => undefined);
  first.c.close(); // dropped without QUIT: nothing changes
  await new Promise((r) => setTimeout(r, 300)); // the server notices the close and releases the maildrop
  const { c } = await login('kate@example.org');
  assert.match((await c.multi('RETR 2')).status, /^\+OK/);
  assert.match((await c.multi('TOP 3 0')).status, /^\+OK/);
  assert.match(await c.command('QUIT'), /^\+OK/);
  await c.untilClosed();
  const imap = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { rejectUnauthorized: false }, auth: { user: 'kate@example.org', pass: PASSWORD }, logger: false });
  await imap.connect();
  try {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const flags: Record<string, boolean> = {};
      for await (const m of imap.fetch('1:*', { envelope: true, flags: true })) flags[m.envelope!.subject!] = m.flags!.has('\\Seen');
      assert.deepEqual(flags, { s1: false, s2: true, s3: false });
    } finally {
      lock.release();
    }
  } finally {
    await imap.logout().catch(() => undefined);
  }
});

test('RFC 1939 3: an idle unauthenticated session is closed without a reply (listener idle_timeout)', async () => {
  const s2 = await TestServer.create({ listeners: ['pop3'], env: { POSTERN_LISTENERS_POP3_IDLE_TIMEOUT: '1s' } });
  await s2.start();
  try {
    const { client: c, greeting } = await Pop3Client.connect(s2.ports.pop3);
    assert.match(greeting, /^\+OK/);
    const t0 = Date.now();
    const rest = await c.untilClosed(5000);
    assert.ok(c.closed, 'closed by the server');
    assert.equal(rest, '', 'no reply on autologout');
    assert.ok(Date.now() - t0 >= 800, `closed after ${Date.now() - t0} ms`);
  } finally {
    await s2.stop();
    s2.cleanup();
  }
});

test('a pipelined flood is answered in order with backpressure (reader paused while replies are unread)', async () => {
  const { c, reply } = await login('ivan@example.org');
  assert.match(reply, /^\+OK/);
  const n = 50_000;
  c.socket.pause();
  c.write('NOOP\r\n'.repeat(n) + 'STAT\r\n');
  await new Promise((r) => setTimeout(r, 300));
  c.socket.resume();
  for (let i = 0; i < n; i++) assert.equal(await c.line(), '+OK');
  assert.match(await c.line(), /^\+OK \d+ \d+$/);
  await c.command('QUIT');
});
