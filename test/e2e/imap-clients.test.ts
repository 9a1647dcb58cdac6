/** Real IMAP clients against the real server: Python imaplib (143 + STARTTLS, 993), imapflow, curl, openssl. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ImapFlow } from 'imapflow';
import { TestServer } from '../harness/server.js';
import { python } from '../harness/py.js';
import { message } from '../harness/imap-client.js';

let srv: TestServer;
const USER = 'carol@postern.test';
const PW = 'carol-secret-99';

before(async () => {
  srv = await TestServer.create({ listeners: ['smtp', 'imap', 'imaps'] });
  await srv.addAccount(USER, PW);
  await srv.start();
});
after(async () => {
  await srv.stop();
  srv.cleanup();
});

function exec(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, out, err });
    });
    c.stdin.end(input);
  });
}

const IMAPLIB = String.raw`
import json, sys, imaplib, ssl
a = json.load(sys.stdin)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
if a["mode"] == "starttls":
    m = imaplib.IMAP4("127.0.0.1", a["port"])
    pre = list(m.capabilities)
    m.starttls(ssl_context=ctx)
else:
    m = imaplib.IMAP4_SSL("127.0.0.1", a["port"], ssl_context=ctx)
    pre = []
m.login(a["user"], a["pw"])
out = {"pre": pre}
out["list"] = [x.decode() for x in m.list()[1]]
typ, d = m.append("INBOX", "(\\Flagged)", None, a["msg"].encode())
out["append"] = typ
m.select("INBOX")
typ, d = m.search(None, "SUBJECT", '"%s"' % a["subject"])
ids = d[0].split()
out["search"] = len(ids)
typ, d = m.fetch(ids[-1], "(RFC822)")
out["fetched"] = a["subject"] in d[0][1].decode()
m.store(ids[-1], "+FLAGS", "\\Seen")
typ, d = m.uid("MOVE", m.fetch(ids[-1], "(UID)")[1][0].decode().split("UID ")[1].rstrip(")"), "Archive")
out["move"] = typ
m.expunge()
m.logout()
print(json.dumps(out))
`;

test('imaplib on 143 with STARTTLS and on 993', async () => {
  for (const [mode, port] of [['starttls', srv.ports.imap], ['ssl', srv.ports.imaps]] as const) {
    const subject = `imaplib ${mode}`;
    const r = await python<Record<string, unknown>>(IMAPLIB, { mode, port, user: USER, pw: PW, subject, msg: message({ subject }) });
    if (mode === 'starttls') assert.ok((r.pre as string[]).includes('LOGINDISABLED'));
    assert.equal(r.append, 'OK');
    assert.equal(r.search, 1);
    assert.equal(r.fetched, true);
    assert.equal(r.move, 'OK');
    assert.ok((r.list as string[]).some((l) => l.includes('INBOX')));
  }
});

test('imapflow: list, append, fetch, search, flags, move, IDLE notification', async () => {
  const client = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { rejectUnauthorized: false }, auth: { user: USER, pass: PW }, logger: false });
  await client.connect();
  const list = await client.list();
  assert.ok(list.some((m) => m.path === 'INBOX'));
  assert.ok(list.some((m) => m.specialUse === '\\Sent'));
  const lock = await client.getMailboxLock('INBOX');
  try {
    const ap = await client.append('INBOX', message({ subject: 'from imapflow', body: 'flowing text\r\n' }), ['\\Draft']);
    assert.ok(ap && typeof ap === 'object' && ap.uid);
    const uids = await client.search({ body: 'flowing' }, { uid: true });
    assert.ok(uids && uids.length === 1);
    const msg = await client.fetchOne(String(uids[0]), { envelope: true, bodyStructure: true, source: true, flags: true }, { uid: true });
    assert.ok(msg);
    assert.equal(msg.envelope?.subject, 'from imapflow');
    assert.ok(msg.flags?.has('\\Draft'));
    await client.messageFlagsAdd(String(uids[0]), ['\\Seen'], { uid: true });
    const exists = new Promise<number>((resolve) => client.once('exists', (d: { count: number }) => resolve(d.count)));
    void client.idle();
    await new Promise((r) => setTimeout(r, 200));
    await python(
      String.raw`
import json, sys, smtplib
a = json.load(sys.stdin)
s = smtplib.SMTP("127.0.0.1", a["port"], timeout=10); s.sendmail("x@example.net", [a["to"]], "Subject: push\r\n\r\nhi\r\n"); s.quit()
print("{}")
`,
      { port: srv.ports.smtp, to: USER },
    );
    const count = await Promise.race([exists, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS via IDLE')), 5000))]);
    assert.ok(count >= 2);
    const moved = await client.messageMove(String(uids[0]), 'Trash', { uid: true });
    assert.ok(moved && moved.uidMap && moved.uidMap.size === 1);
  } finally {
    lock.release();
  }
  await client.logout();
});

test('curl imaps:// lists, selects and fetches', async () => {
  const base = `imaps://127.0.0.1:${srv.ports.imaps}`;
  const auth = ['-k', '-s', '--user', `${USER}:${PW}`];
  const l = await exec('curl', [...auth, `${base}/`]);
  assert.equal(l.code, 0, l.err);
  assert.match(l.out, /INBOX/);
  const s = await exec('curl', [...auth, `${base}/Archive`, '-X', 'SEARCH ALL']);
  assert.equal(s.code, 0, s.err);
  assert.match(s.out, /SEARCH \d/);
  const f = await exec('curl', [...auth, `${base}/Archive;UID=1`]);
  assert.equal(f.code, 0, f.err);
  assert.match(f.out, /Subject: imaplib/);
});

test('openssl s_client -starttls imap: LOGINDISABLED before TLS, AUTH=PLAIN after', async () => {
  const r = await exec('openssl', ['s_client', '-starttls', 'imap', '-connect', `127.0.0.1:${srv.ports.imap}`, '-quiet', '-ign_eof'], 'a CAPABILITY\r\nb LOGOUT\r\n');
  assert.match(r.out + r.err, /AUTH=PLAIN/);
  // -debug dumps every octet read, the plaintext greeting and CAPABILITY answer before TLS included.
  const dbg = await exec('openssl', ['s_client', '-starttls', 'imap', '-connect', `127.0.0.1:${srv.ports.imap}`, '-debug'], '');
  const bytes: number[] = [];
  for (const line of dbg.out.split('\n')) {
    const m = /^[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})/.exec(line);
    if (m) for (const h of m[1]!.trim().split(/[ -]+/)) if (h) bytes.push(parseInt(h, 16));
  }
  assert.match(Buffer.from(bytes).toString('latin1'), /STARTTLS LOGINDISABLED/);
});
