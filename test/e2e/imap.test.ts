/**
 * IMAP transcripts against the real server (dist/), our own client. One server for the file; each test uses
 * its own account. Two sessions where changes must propagate (RFC 9051 7.5.1).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { TestServer, ROOT } from '../harness/server.js';
import { ImapClient, message } from '../harness/imap-client.js';
import { python } from '../harness/py.js';
import { normalizeLineEndings } from '../../src/lib/mime/parse.js';

let srv: TestServer;
const PW = 'secret-pass-123';
let n = 0;

async function account(): Promise<string> {
  const addr = `u${++n}@postern.test`;
  await srv.addAccount(addr, PW);
  return addr;
}

async function session(user: string): Promise<ImapClient> {
  const c = await ImapClient.connect(srv.ports.imaps, { tls: true });
  await c.login(user, PW);
  return c;
}

before(async () => {
  srv = await TestServer.create({ listeners: ['smtp', 'imap', 'imaps'], extraToml: '[imap]\nmax_literal_size = "1M"\nplaintext_auth_networks = ["127.0.0.9/32"]\n' });
  await srv.start();
});
after(async () => {
  await srv.stop();
  srv.cleanup();
});

test('143: STARTTLS required; LOGINDISABLED; pipelined bytes after STARTTLS are discarded', async () => {
  const user = await account();
  const c = await ImapClient.connect(srv.ports.imap);
  assert.match(c.greeting, /STARTTLS LOGINDISABLED/);
  assert.doesNotMatch(c.greeting, /AUTH=/);
  let r = await c.cmd(`LOGIN ${user} ${PW}`);
  assert.equal(r.status, 'NO');
  assert.match(r.text, /PRIVACYREQUIRED/);
  r = await c.cmd('AUTHENTICATE PLAIN');
  assert.match(r.text, /PRIVACYREQUIRED/);
  // Injection: a command pipelined with STARTTLS must not run after the handshake.
  c.write('X1 STARTTLS\r\nX2 CAPABILITY\r\n');
  const ok = await c.waitFor((l) => l.startsWith('X1 '));
  assert.match(ok, /^X1 OK/);
  c.close();
  const c2 = await ImapClient.connect(srv.ports.imap);
  assert.equal((await c2.startTls()).status, 'OK');
  const caps = await c2.ok('CAPABILITY');
  assert.match(caps[0]!, /AUTH=PLAIN/);
  assert.doesNotMatch(caps[0]!, /LOGINDISABLED|STARTTLS/);
  await c2.ok(`AUTHENTICATE PLAIN ${Buffer.from(`\0${user}\0${PW}`).toString('base64')}`);
  c2.close();
});

test('143: a client in [imap] plaintext_auth_networks may log in without STARTTLS; others still may not', async () => {
  const user = await account();
  const local = await ImapClient.connect(srv.ports.imap, { localAddress: '127.0.0.9' });
  assert.doesNotMatch(local.greeting, /LOGINDISABLED/);
  assert.match(local.greeting, /STARTTLS/);
  assert.match(local.greeting, /AUTH=PLAIN/);
  await local.login(user, PW);
  await local.ok('SELECT INBOX');
  local.close();
  const other = await ImapClient.connect(srv.ports.imap, { localAddress: '127.0.0.10' });
  assert.match(other.greeting, /LOGINDISABLED/);
  const r = await other.cmd(`LOGIN ${user} ${PW}`);
  assert.equal(r.status, 'NO');
  assert.match(r.text, /PRIVACYREQUIRED/);
  other.close();
});

test('login failures: NO [AUTHENTICATIONFAILED]; AUTHENTICATE with continuation; cancel', async () => {
  const user = await account();
  const c = await ImapClient.connect(srv.ports.imaps, { tls: true });
  const r = await c.cmd(`LOGIN ${user} wrong-password`);
  assert.equal(r.status, 'NO');
  assert.match(r.text, /AUTHENTICATIONFAILED/);
  c.write('A9 AUTHENTICATE PLAIN\r\n');
  await c.waitFor((l) => l.startsWith('+'));
  c.write('*\r\n');
  assert.match(await c.waitFor((l) => l.startsWith('A9 ')), /^A9 BAD/);
  c.write('A10 AUTHENTICATE PLAIN\r\n');
  await c.waitFor((l) => l.startsWith('+'));
  c.write(Buffer.from(`\0${user}\0${PW}`).toString('base64') + '\r\n');
  assert.match(await c.waitFor((l) => l.startsWith('A10 ')), /^A10 OK/);
  assert.ok(!srv.logs.some((l) => JSON.stringify(l).includes(PW)), 'password never logged');
  c.close();
});

test('APPEND, SELECT, FETCH items, partial, HEADER.FIELDS, BINARY, \\Seen by BODY[]', async () => {
  const user = await account();
  const c = await session(user);
  const body = 'Line one\r\nLine two =C3=A9\r\n';
  const raw = message({ subject: 'fetch me', body, extra: 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n' });
  const a = await c.append('INBOX', raw, '\\Flagged $Label');
  assert.equal(a.status, 'OK');
  assert.match(a.text, /\[APPENDUID \d+ 1\]/);
  const sel = await c.ok('SELECT INBOX');
  assert.ok(sel.includes('* 1 EXISTS'));
  assert.ok(sel.some((l) => /PERMANENTFLAGS \(.*\\\*\)/.test(l)));
  let f = await c.ok('FETCH 1 (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<5.3> BINARY.PEEK[1] BINARY.SIZE[1])');
  assert.match(f[0]!, /FLAGS \(\\Flagged \\Recent \$Label\)/);
  assert.match(f[0]!, new RegExp(`RFC822.SIZE ${Buffer.byteLength(raw)}`));
  assert.match(f[0]!, /BODY\[HEADER.FIELDS \(SUBJECT\)\] \{21\}\r\nSubject: fetch me\r\n\r\n/);
  assert.match(f[0]!, /BODY\[TEXT\]<5> \{3\}\r\none/);
  assert.match(f[0]!, /BINARY\[1\] \{\d+\}\r\nLine one\r\nLine two é/);
  assert.match(f[0]!, /BINARY.SIZE\[1\] 23/);
  f = await c.ok('FETCH 1 (BODY[])');
  assert.ok(f[0]!.includes(raw));
  assert.match(f[0]!, /FLAGS \(\\Seen/); // set by BODY[] and reported (RFC 9051 6.4.5)
  f = await c.ok('UID FETCH 1 (FLAGS)');
  assert.match(f[0]!, /UID 1/);
  const bad = await c.cmd('FETCH 5 FLAGS');
  assert.equal(bad.status, 'BAD');
  c.close();
});

test('two sessions: EXISTS, FETCH FLAGS and EXPUNGE reach the other session at the right moments', async () => {
  const user = await account();
  const a = await session(user);
  const b = await session(user);
  for (let i = 0; i < 3; i++) await a.append('INBOX', message({ subject: `m${i}` }));
  await a.ok('SELECT INBOX');
  await b.ok('SELECT INBOX');
  await a.append('INBOX', message({ subject: 'new' }));
  let u = await b.ok('NOOP');
  assert.ok(u.includes('* 4 EXISTS'), u.join('|'));
  await a.ok('STORE 2 +FLAGS.SILENT (\\Deleted)');
  u = await b.ok('NOOP');
  assert.ok(u.some((l) => /^\* 2 FETCH \(UID 2 FLAGS \(\\Deleted/.test(l)), u.join('|'));
  await a.ok('EXPUNGE');
  // No EXPUNGE during FETCH (RFC 9051 7.5.1): sequence numbers stay as the client knows them.
  u = await b.ok('FETCH 3 (UID)');
  assert.deepEqual(u.filter((l) => /EXPUNGE/.test(l)), []);
  assert.match(u.find((l) => /FETCH/.test(l))!, /UID 3/);
  u = await b.ok('NOOP');
  assert.ok(u.includes('* 2 EXPUNGE'), u.join('|'));
  u = await b.ok('FETCH 3 (UID)');
  assert.match(u[0]!, /UID 4/);
  a.close();
  b.close();
});

test('IDLE: a message delivered over SMTP appears in under a second', async () => {
  const user = await account();
  const c = await session(user);
  await c.ok('SELECT INBOX');
  const tag = await c.idle();
  const t0 = Date.now();
  await python(
    String.raw`
import json, sys, smtplib
a = json.load(sys.stdin)
s = smtplib.SMTP("127.0.0.1", a["port"], timeout=10)
s.sendmail("x@example.net", [a["to"]], "From: x@example.net\r\nTo: %s\r\nSubject: idle\r\n\r\nhi\r\n" % a["to"])
s.quit()
print(json.dumps({"ok": True}))
`,
    { port: srv.ports.smtp, to: user },
  );
  await c.waitFor((l) => l === '* 1 EXISTS', 5000);
  assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
  const r = await c.done(tag);
  assert.equal(r.status, 'OK');
  c.close();
});

test('STORE, SEARCH keys, ESEARCH, SEARCHRES, SORT, THREAD', async () => {
  const user = await account();
  const c = await session(user);
  await c.append('INBOX', message({ subject: 'apple pie', body: 'the quick brown fox\r\n', date: 'Tue, 1 Mar 2022 10:00:00 +0000', messageId: '<a@x>' }));
  await c.append('INBOX', message({ subject: 'Re: apple pie', body: 'lazy dog\r\n', date: 'Wed, 2 Mar 2022 10:00:00 +0000', messageId: '<b@x>', extra: 'In-Reply-To: <a@x>\r\nReferences: <a@x>\r\n' }));
  await c.append('INBOX', message({ subject: 'banana', from: 'Zed <zed@example.org>', body: 'x'.repeat(3000) + '\r\n', date: 'Thu, 3 Mar 2022 10:00:00 +0000' }));
  await c.ok('SELECT INBOX');
  const s = async (q: string) => (await c.ok(q)).find((l) => /^\* (E?SEARCH|SORT|THREAD)/.test(l))!;
  assert.equal(await s('SEARCH BODY "quick brown"'), '* SEARCH 1');
  assert.equal(await s('SEARCH TEXT "lazy"'), '* SEARCH 2');
  assert.equal(await s('SEARCH SUBJECT "APPLE"'), '* SEARCH 1 2');
  assert.equal(await s('SEARCH FROM zed'), '* SEARCH 3');
  assert.equal(await s('SEARCH HEADER In-Reply-To "a@x"'), '* SEARCH 2');
  assert.equal(await s('SEARCH LARGER 2000'), '* SEARCH 3');
  assert.equal(await s('SEARCH SENTSINCE 2-Mar-2022 SENTBEFORE 3-Mar-2022'), '* SEARCH 2');
  assert.equal(await s('SEARCH OR 1 3 NOT SUBJECT banana'), '* SEARCH 1');
  await c.ok('STORE 2 +FLAGS (\\Answered)');
  assert.equal(await s('SEARCH ANSWERED'), '* SEARCH 2');
  assert.match(await s('UID SEARCH RETURN (MIN MAX COUNT) ALL'), /^\* ESEARCH \(TAG "A\d+"\) UID MIN 1 MAX 3 COUNT 3$/);
  await c.ok('SEARCH RETURN (SAVE) SUBJECT apple');
  const f = await c.ok('FETCH $ (UID)');
  assert.equal(f.length, 2);
  assert.equal(await s('SORT (REVERSE SIZE) UTF-8 ALL'), '* SORT 3 2 1');
  assert.equal(await s('SORT (SUBJECT) UTF-8 ALL'), '* SORT 1 2 3');
  assert.equal(await s('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 2)(3)');
  assert.equal(await s('SEARCH MODSEQ 1'), '* SEARCH 1 2 3 (MODSEQ 5)');
  const bc = await c.cmd('SEARCH CHARSET X-NO-SUCH-CHARSET ALL'); // KOI8-R etc. are decoded (iconv-lite)
  assert.equal(bc.status, 'NO');
  assert.match(bc.text, /BADCHARSET/);
  c.close();
});

test('COPY/MOVE with COPYUID, UID EXPUNGE, CLOSE, UIDs never reused', async () => {
  const user = await account();
  const c = await session(user);
  for (let i = 0; i < 4; i++) await c.append('INBOX', message({ subject: `c${i}` }));
  await c.ok('SELECT INBOX');
  let r = await c.cmd('COPY 1:2 Trash');
  assert.match(r.text, /\[COPYUID \d+ 1,2 1,2\]/);
  const mv = await c.ok('UID MOVE 3 Archive');
  assert.ok(mv.some((l) => /^\* OK \[COPYUID \d+ 3 1\]/.test(l)));
  assert.ok(mv.includes('* 3 EXPUNGE'));
  await c.ok('STORE 1:* +FLAGS (\\Deleted)');
  const ue = await c.ok('UID EXPUNGE 1');
  assert.deepEqual(ue, ['* 1 EXPUNGE']);
  r = await c.cmd('COPY 1 Nowhere');
  assert.match(r.text, /TRYCREATE/);
  await c.ok('CLOSE');
  const st = await c.ok('STATUS INBOX (MESSAGES UIDNEXT DELETED SIZE)');
  assert.match(st[0]!, /MESSAGES 0 UIDNEXT 5 DELETED 0 SIZE 0/);
  await c.append('INBOX', message());
  const st2 = await c.ok('STATUS INBOX (UIDNEXT)');
  assert.match(st2[0]!, /UIDNEXT 6/);
  c.close();
});

test('CONDSTORE / QRESYNC: UNCHANGEDSINCE, CHANGEDSINCE, VANISHED, SELECT QRESYNC', async () => {
  const user = await account();
  const c = await session(user);
  for (let i = 0; i < 3; i++) await c.append('INBOX', message());
  await c.ok('ENABLE QRESYNC');
  const sel = await c.ok('SELECT INBOX');
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.join(' '))![1]);
  const uv = Number(/UIDVALIDITY (\d+)/.exec(sel.join(' '))![1]);
  const st = await c.ok('STORE 1 +FLAGS (\\Seen)');
  assert.match(st[0]!, /MODSEQ \((\d+)\)/);
  const r = await c.cmd(`STORE 1 (UNCHANGEDSINCE ${hms}) +FLAGS (\\Flagged)`);
  assert.match(r.text, /\[MODIFIED 1\]/);
  await c.ok('STORE 3 +FLAGS (\\Deleted)');
  const ex = await c.ok('EXPUNGE');
  assert.deepEqual(ex, ['* VANISHED 3']);
  const f = await c.ok(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${hms} VANISHED)`);
  assert.ok(f.includes('* VANISHED (EARLIER) 3'), f.join('|'));
  assert.ok(f.some((l) => /UID 1 .*MODSEQ/.test(l)));
  await c.ok('UNSELECT');
  const q = await c.ok(`SELECT INBOX (QRESYNC (${uv} ${hms}))`);
  assert.ok(q.includes('* VANISHED (EARLIER) 3'), q.join('|'));
  assert.ok(q.some((l) => /FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ/.test(l)));
  c.close();
});

test('STORE that changes nothing: the flags are reported, no MODSEQ is spent, other sessions see no update', async () => {
  const user = await account();
  const c = await session(user);
  const other = await session(user);
  for (let i = 0; i < 3; i++) assert.equal((await c.append('INBOX', message(), '\\Seen')).status, 'OK');
  await c.ok('ENABLE CONDSTORE');
  const hms = (lines: string[]) => Number(/HIGHESTMODSEQ (\d+)/.exec(lines.join(' '))![1]);
  const h0 = hms(await c.ok('SELECT INBOX'));
  await other.ok('SELECT INBOX');
  // Already \Seen: answered with the flags and the messages' own MODSEQs, HIGHESTMODSEQ stays.
  const same = await c.ok('STORE 1:2 +FLAGS (\\Seen)');
  assert.equal(same.length, 2, same.join('|'));
  for (const l of same) assert.match(l, /^\* [12] FETCH \(FLAGS \(\\Seen( \\Recent)?\) MODSEQ \((\d+)\)\)$/);
  assert.ok(same.every((l) => Number(/MODSEQ \((\d+)\)/.exec(l)![1]) <= h0));
  assert.deepEqual(await c.ok('STORE 3 -FLAGS.SILENT (\\Answered)'), []);
  assert.equal(hms(await c.ok('STATUS INBOX (HIGHESTMODSEQ)')), h0);
  assert.deepEqual(await other.ok('NOOP'), [], 'no flag change to announce');
  // One message of the set changing: one new MODSEQ, and the other session is told about that message only.
  const one = await c.ok('STORE 1:3 +FLAGS (\\Flagged)');
  assert.equal(one.length, 3);
  assert.equal(hms(await c.ok('STATUS INBOX (HIGHESTMODSEQ)')), h0 + 1);
  await c.ok('STORE 2:3 -FLAGS (\\Flagged)');
  const seen = await other.ok('NOOP');
  assert.ok(seen.some((l) => /^\* 1 FETCH \(.*FLAGS \(.*\\Flagged/.test(l)), seen.join('|'));
  const again = await c.ok('STORE 2:3 -FLAGS (\\Flagged)');
  assert.ok(again.every((l) => !/\\Flagged/.test(l)), again.join('|'));
  assert.equal(hms(await c.ok('STATUS INBOX (HIGHESTMODSEQ)')), h0 + 2);
  c.close();
  other.close();
});

test('mailboxes: CREATE (USE), LIST variants, RENAME hierarchy and INBOX, DELETE, SUBSCRIBE, STATUS, QUOTA, NAMESPACE', async () => {
  const user = await account();
  const c = await session(user);
  await c.ok('CREATE Projects/2024/Q1');
  await c.ok('CREATE "Spam box" (USE (\\Junk))');
  let l = await c.ok('LIST "" "Projects/%"');
  assert.deepEqual(l, ['* LIST (\\HasChildren) "/" "Projects/2024"']);
  await c.ok('RENAME Projects Work');
  l = await c.ok('LIST "" "Work*"');
  assert.equal(l.length, 3);
  await c.append('INBOX', message());
  await c.ok('RENAME INBOX Old');
  const s1 = await c.ok('STATUS INBOX (MESSAGES)');
  assert.match(s1[0]!, /MESSAGES 0/);
  const s2 = await c.ok('STATUS Old (MESSAGES)');
  assert.match(s2[0]!, /MESSAGES 1/);
  const d = await c.cmd('DELETE Work');
  assert.match(d.text, /HASCHILDREN/);
  await c.ok('DELETE Work/2024/Q1');
  await c.ok('UNSUBSCRIBE Old');
  const ls = await c.ok('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))');
  assert.ok(!ls.some((x) => /"Old"/.test(x)));
  assert.ok(ls.some((x) => /^\* STATUS "INBOX" \(MESSAGES 0\)/.test(x)));
  const su = await c.ok('LIST (SPECIAL-USE) "" "*"');
  assert.ok(su.some((x) => /\\Junk\) "\/" "Spam box"/.test(x) || /\\Junk/.test(x)));
  const q = await c.ok('GETQUOTAROOT INBOX');
  assert.ok(q[0]!.startsWith('* QUOTAROOT "INBOX" ""'));
  assert.deepEqual(await c.ok('NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL']);
  // Modified UTF-7 for IMAP4rev1, UTF-8 once enabled.
  await c.ok('CREATE "&ZeVnLIqe-"');
  assert.ok((await c.ok('LIST "" "&ZeVnLIqe-"'))[0]!.endsWith('"&ZeVnLIqe-"'));
  await c.ok('ENABLE UTF8=ACCEPT');
  assert.ok((await c.ok('LIST "" "日本語"'))[0]!.endsWith('"日本語"'));
  c.close();
});

test('BODYSTRUCTURE of a UTF-8 parameter: a literal before UTF8=ACCEPT, a quoted string after, in every session', async () => {
  const user = await account();
  const raw = message({ subject: 'cv', extra: 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; name="résumé.txt"\r\n' });
  const a = await session(user);
  const ap = await a.append('INBOX', raw);
  assert.equal(ap.status, 'OK');
  await a.ok('SELECT INBOX');
  const structure = async (c: ImapClient) => (await c.ok('FETCH 1 BODYSTRUCTURE')).find((l) => l.startsWith('* 1 FETCH'))!;
  const plain = await structure(a);
  assert.match(plain, /"name" \{12\}\r?\nrésumé\.txt/, 'no UTF-8 in quoted strings before UTF8=ACCEPT');
  const b = await session(user);
  await b.ok('ENABLE UTF8=ACCEPT');
  await b.ok('SELECT INBOX');
  const utf8 = await structure(b);
  assert.match(utf8, /"name" "résumé\.txt"/);
  assert.equal(await structure(a), plain, 'the first session still gets its own form');
  a.close();
  b.close();
});

test('APPEND over quota -> NO [OVERQUOTA]; too big -> NO [TOOBIG]; MULTIAPPEND', async () => {
  const user = await account();
  assert.equal((await srv.cli(['quota', 'set', user, '2K'])).code, 0);
  const c = await session(user);
  const big = message({ body: 'y'.repeat(3000) + '\r\n' });
  const r = await c.append('INBOX', big);
  assert.equal(r.status, 'NO');
  assert.match(r.text, /OVERQUOTA/);
  c.write(`T1 APPEND INBOX {${2 * 1024 * 1024}}\r\n`);
  assert.match(await c.waitFor((l) => l.startsWith('T1 ')), /T1 NO \[TOOBIG\]/);
  const m1 = message({ subject: 'one' });
  const m2 = message({ subject: 'two' });
  c.write(`T2 APPEND INBOX {${m1.length}+}\r\n${m1} (\\Seen) {${m2.length}+}\r\n${m2}\r\n`);
  assert.match(await c.waitFor((l) => l.startsWith('T2 ')), /T2 OK \[APPENDUID \d+ 1:2\]/);
  c.close();
});

test('COMPRESS=DEFLATE', async () => {
  const user = await account();
  await python(
    String.raw`
import json, sys, imaplib, ssl, zlib, socket
a = json.load(sys.stdin)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", a["port"])))
f = s.makefile("rb")
f.readline()
s.sendall(b'a LOGIN "%s" "%s"\r\n' % (a["user"].encode(), a["pw"].encode())); f.readline()
s.sendall(b"b COMPRESS DEFLATE\r\n"); assert f.readline().startswith(b"b OK")
c = zlib.compressobj(wbits=-15); d = zlib.decompressobj(wbits=-15)
s.sendall(c.compress(b"c NOOP\r\n") + c.flush(zlib.Z_SYNC_FLUSH))
out = b""
while b"c OK" not in out: out += d.decompress(s.recv(4096))
print(json.dumps({"ok": True}))
`,
    { port: srv.ports.imaps, user, pw: PW },
  );
});

test('malformed input: BAD and the session survives; a fuzz loop never crashes the server', async () => {
  const user = await account();
  const c = await session(user);
  for (const bad of ['FETCH', 'A1', '"', 'X FOO BAR', 'Y SELECT', 'Z UID XYZZY 1', 'W SEARCH (', 'V STORE 1 +FLAGS', 'U LOGIN a b']) {
    c.write(bad + '\r\n');
  }
  const r = await c.cmd('NOOP');
  assert.equal(r.status, 'OK');
  await c.append('INBOX', message());
  // Fuzz: random commands in every state; each must get exactly one tagged reply (or a clean close).
  const words = ['FETCH', 'STORE', 'SEARCH', 'UID', 'SELECT', 'EXAMINE', 'LIST', 'STATUS', 'APPEND', 'COPY', 'MOVE', 'EXPUNGE', 'CLOSE', 'UNSELECT', 'IDLE', 'NOOP', 'ENABLE', 'SORT', 'THREAD', 'CREATE', 'RENAME', 'DELETE', 'GETQUOTAROOT'];
  const args = ['1', '*', '1:*', '$', 'INBOX', '"INBOX"', '(FLAGS)', '(BODY[1.2.MIME]<0.10>)', 'BODY[]', '+FLAGS', '(\\Seen)', 'ALL', 'TEXT', '"x"', '(', ')', '{3+}\r\nabc', '~{2+}\r\n\0\0', 'RETURN', '(MIN)', 'UTF-8', 'REFERENCES', 'CHANGEDSINCE', '99999999999', '-1', '\u00e9', 'NIL', '"\\"'];
  let seed = 42;
  const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % k);
  for (let i = 0; i < 300; i++) {
    const parts = [words[rnd(words.length)]!];
    for (let j = rnd(5); j > 0; j--) parts.push(args[rnd(args.length)]!);
    const tag = `F${i}`;
    const line = parts.join(' ');
    if (/^IDLE/.test(line)) continue;
    c.write(`${tag} ${line}\r\n`);
    const reply = await c.waitFor((l) => l.startsWith(`${tag} `) || /^\* BYE/.test(l), 10_000);
    assert.ok(!/^\* BYE/.test(reply), `BYE after ${line}`);
    assert.match(reply, /^F\d+ (OK|NO|BAD)/);
    if (/^SELECT|^EXAMINE/.test(line) === false && i % 50 === 0) await c.cmd('SELECT INBOX');
  }
  // Random bytes on a fresh connection in the not-authenticated state.
  for (let k = 0; k < 5; k++) {
    const s = net.connect(srv.ports.imap, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.on('error', () => undefined);
    const junk = Buffer.alloc(4000);
    for (let i = 0; i < junk.length; i++) junk[i] = rnd(256);
    s.write(junk);
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
  }
  assert.equal((await c.cmd('NOOP')).status, 'OK');
  assert.equal(srv.child!.exitCode, null);
  c.close();
});

test('ENVELOPE and BODYSTRUCTURE match Dovecot 2.3 on the tricky fixtures (recorded answers)', async () => {
  const user = await account();
  const c = await session(user);
  const dir = path.join(ROOT, 'test/fixtures/mime');
  const names = readdirSync(dir).filter((f) => f.endsWith('.dovecot.json'));
  await c.ok('CREATE Fixtures');
  let uid = 0;
  const mismatches: string[] = [];
  for (const j of names) {
    const eml = path.join(dir, j.replace('.dovecot.json', '.eml'));
    const raw = normalizeLineEndings(readFileSync(eml));
    if (raw.length === 0) continue;
    const r = await c.append('Fixtures', raw);
    assert.equal(r.status, 'OK', j);
    uid++;
    await c.ok('SELECT Fixtures');
    const exp = JSON.parse(readFileSync(path.join(dir, j), 'utf8')) as Record<string, string>;
    // Recorded as Latin-1 (one char per byte); our client decodes UTF-8: compare octets. Sections are compared
    // for 7-bit fixtures only (the client's UTF-8 decoding is lossy for raw 8-bit bodies).
    const sevenBit = !/[\x80-\xff]/.test(Object.values(exp).join(''));
    for (const [item, want] of Object.entries(exp)) {
      if (j.startsWith('deep-nesting') && /^(BODY|BODYSTRUCTURE|BODY\[(\d+\.){49,}\d+\])$/.test(item)) continue; // depth cap 50, documented
      if (item.startsWith('BODY[') && !sevenBit) continue;
      const ask = item.startsWith('BODY[') ? item.replace('BODY[', 'BODY.PEEK[') : item;
      const line = (await c.ok(`UID FETCH ${uid} (${ask})`))[0]!;
      const prefix = `* ${uid > 0 ? '' : ''}`;
      void prefix;
      const at = line.indexOf(`${item} `);
      let got = line.slice(at + item.length + 1).replace(/\)$/, '');
      if (item.startsWith('BODY[')) got = got.replace(/^\{\d+\}\r\n/, '');
      if (!Buffer.from(got, 'utf8').equals(Buffer.from(want, 'latin1'))) mismatches.push(`${j} ${item}\n got ${got}\n exp ${want}`);
    }
  }
  assert.deepEqual(mismatches, []);
  c.close();
});
