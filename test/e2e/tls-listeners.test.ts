/** TLS (openssl s_client, versions, SNI, certificate hot reload) and listener behaviour (limits, PROXY protocol, signals). */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { TestServer, freePort } from '../harness/server.js';
import { RawClient } from '../harness/raw.js';
import { mailboxMessages, dataDirOf } from '../harness/store.js';

const PW = 'correct horse battery';

function makeCert(dir: string, name: string, tag: string): { cert: string; key: string } {
  const cert = path.join(dir, `${tag}.crt`);
  const key = path.join(dir, `${tag}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** Runs openssl s_client and returns its combined output (it exits when stdin closes). */
async function sClient(args: string[], input = 'QUIT\r\n'): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', ...args], { timeout: 15_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    // Keep stdin open long enough to read the banner, which follows the handshake after banner_delay.
    setTimeout(() => child.stdin!.end(input), 700);
  });
}

function serial(output: string): string {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output)?.[0];
  assert.ok(pem, 'certificate printed');
  return execFileSync('openssl', ['x509', '-noout', '-serial'], { input: pem, encoding: 'utf8' }).trim();
}

describe('TLS', () => {
  let srv: TestServer;
  let main: { cert: string; key: string };
  let other: { cert: string; key: string };
  before(async () => {
    srv = await TestServer.create();
    main = makeCert(srv.dir, 'mx.postern.test', 'main');
    other = makeCert(srv.dir, 'other.test', 'other');
    writeFileSync(
      srv.configFile,
      readFileSync(srv.configFile, 'utf8') + `[tls]\ncert = "${main.cert}"\nkey = "${main.key}"\nreload_interval = "200ms"\n[[tls.certificates]]\ncert = "${other.cert}"\nkey = "${other.key}"\n`,
    );
    await srv.start();
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('openssl s_client -starttls smtp sees the configured certificate', async () => {
    const out = await sClient(['-starttls', 'smtp', '-connect', `127.0.0.1:${srv.ports.smtp}`, '-showcerts', '-servername', 'mx.postern.test']);
    assert.match(out, /Certificate chain\n 0 s:CN ?= ?mx\.postern\.test/);
    assert.match(out, /Protocol\s*: TLSv1\.3|New, TLSv1\.3/);
    assert.equal(serial(out), execFileSync('openssl', ['x509', '-noout', '-serial', '-in', main.cert], { encoding: 'utf8' }).trim());
  });

  it('chooses the certificate by SNI', async () => {
    const out = await sClient(['-starttls', 'smtp', '-connect', `127.0.0.1:${srv.ports.smtp}`, '-servername', 'other.test']);
    assert.match(out, /s:CN ?= ?other\.test/);
    const implicit = await sClient(['-connect', `127.0.0.1:${srv.ports.submissions}`, '-servername', 'other.test']);
    assert.match(implicit, /s:CN ?= ?other\.test/);
    assert.match(implicit, /220 mx\.postern\.test/);
  });

  it('refuses TLS 1.0 and 1.1, accepts 1.2 with a forward-secret AEAD suite', async () => {
    for (const v of ['-tls1', '-tls1_1']) {
      const out = await sClient([v, '-cipher', 'DEFAULT@SECLEVEL=0', '-connect', `127.0.0.1:${srv.ports.submissions}`]);
      assert.doesNotMatch(out, /220 mx\.postern\.test/, v);
      assert.match(out, /alert|no protocols available|handshake failure|wrong version|unsupported protocol/i, v);
    }
    const ok = await sClient(['-tls1_2', '-connect', `127.0.0.1:${srv.ports.submissions}`]);
    assert.match(ok, /220 mx\.postern\.test/);
    assert.match(ok, /Cipher is ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)/);
    const weak = await sClient(['-tls1_2', '-cipher', 'AES128-SHA', '-connect', `127.0.0.1:${srv.ports.submissions}`]);
    assert.doesNotMatch(weak, /220 mx\.postern\.test/, 'non-forward-secret CBC suite refused');
  });

  it('picks up a renewed certificate on disk without a restart or dropping sessions', async () => {
    const before = serial(await sClient(['-connect', `127.0.0.1:${srv.ports.submissions}`]));
    const held = await RawClient.connect(srv.ports.submissions, { tls: true });
    await held.reply();
    const renewed = makeCert(srv.dir, 'mx.postern.test', 'renewed');
    renameSync(renewed.key, main.key);
    renameSync(renewed.cert, main.cert);
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = serial(await sClient(['-connect', `127.0.0.1:${srv.ports.submissions}`]));
    }
    assert.notEqual(after, before, 'new connections get the renewed certificate');
    const starttls = serial(await sClient(['-starttls', 'smtp', '-connect', `127.0.0.1:${srv.ports.smtp}`]));
    assert.equal(starttls, after, 'STARTTLS uses the renewed certificate too');
    assert.match((await held.command('NOOP'))[0]!, /^250 /, 'the existing session survives');
    held.close();
  });
});

describe('listeners, limits, PROXY protocol and signals', () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.create({
      extraToml: '[proxy]\ntrusted_networks = ["127.0.0.1/32"]\n',
    });
    // The submission listener speaks PROXY protocol; the smtp listener allows 3 connections per IP.
    writeFileSync(
      srv.configFile,
      readFileSync(srv.configFile, 'utf8')
        .replace(`address = "127.0.0.1:${srv.ports.smtp}"`, `address = "127.0.0.1:${srv.ports.smtp}"\nmax_connections_per_ip = 3`)
        .replace(`address = "127.0.0.1:${srv.ports.submission}"`, `address = "127.0.0.1:${srv.ports.submission}"\nproxy_protocol = true`),
    );
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('limits connections per IP with 421 4.7.0', async () => {
    const held = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(srv.ports.smtp);
      assert.match((await c.reply())[0]!, /^220 /);
      held.push(c);
    }
    const extra = await RawClient.connect(srv.ports.smtp);
    assert.deepEqual(await extra.reply(), ['421 4.7.0 Too many connections from your address, try again later']);
    held.pop()!.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await RawClient.connect(srv.ports.smtp);
    assert.match((await again.reply())[0]!, /^220 /, 'a slot frees when a connection closes');
    for (const c of [...held, again, extra]) c.close();
  });

  it('takes the client address from a PROXY v1 header and from a v2 header', async () => {
    const v1 = await RawClient.connect(srv.ports.submission);
    v1.write('PROXY TCP4 203.0.113.7 127.0.0.1 40000 587\r\n');
    assert.match((await v1.reply())[0]!, /^220 /);
    await v1.command('EHLO proxied.example');
    assert.match((await v1.command('STARTTLS'))[0]!, /^220 /);
    await v1.startTls();
    await v1.command('EHLO proxied.example');
    assert.match((await v1.command(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${PW}`).toString('base64')}`))[0]!, /^235 /);
    await v1.command('MAIL FROM:<alice@example.org>');
    await v1.command('RCPT TO:<alice@example.org>');
    await v1.command('DATA');
    v1.write('Subject: via proxy v1\r\n\r\nhi\r\n.\r\n');
    assert.match((await v1.reply())[0]!, /^250 /);
    v1.close();
    const m = (await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org')).find((x) => x.raw.includes('via proxy v1'));
    assert.ok(m);
    assert.match(m.raw, /^Received: from proxied\.example \(\[203\.0\.113\.7\]\)/);

    const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    const body = Buffer.alloc(12);
    Buffer.from([198, 51, 100, 9]).copy(body, 0);
    Buffer.from([127, 0, 0, 1]).copy(body, 4);
    body.writeUInt16BE(50000, 8);
    body.writeUInt16BE(587, 10);
    const v2 = await RawClient.connect(srv.ports.submission);
    v2.write(Buffer.concat([sig, Buffer.from([0x21, 0x11, 0x00, 12]), body]));
    assert.match((await v2.reply())[0]!, /^220 /);
    assert.match((await v2.command('EHLO v2.example')).join('\n'), /250[- ]STARTTLS/);
    v2.close();
    assert.ok(await srv.logEntry('smtp connection', (l) => l.remote === '198.51.100.9'), 'logged with the proxied address');
  });

  it('closes a connection whose PROXY header is garbage', async () => {
    const c = await RawClient.connect(srv.ports.submission);
    c.write('EHLO no-proxy-header.example\r\n');
    assert.equal(await c.untilClosed(3000), '');
    assert.ok(c.closed);
  });

  it('SIGHUP reloads the configuration without dropping connections', async () => {
    const held = await RawClient.connect(srv.ports.smtp);
    await held.reply();
    assert.match((await held.command('EHLO a.example')).join('\n'), /SIZE 26214400/);
    writeFileSync(srv.configFile, readFileSync(srv.configFile, 'utf8') + '[smtp]\nmax_message_size = "1M"\n');
    srv.child!.kill('SIGHUP');
    for (let i = 0; i < 50 && !srv.logs.some((l) => l.msg === 'configuration reloaded'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match((await held.command('EHLO a.example')).join('\n'), /SIZE 1048576/, 'the held session sees the new limit');
    const fresh = await RawClient.connect(srv.ports.smtp);
    await fresh.reply();
    assert.match((await fresh.command('EHLO b.example')).join('\n'), /SIZE 1048576/);
    held.close();
    fresh.close();
  });

  it('SIGHUP applies changed [protection] settings to the running port 25 (greylisting switched on)', async () => {
    const before = await RawClient.connect(srv.ports.smtp);
    await before.reply();
    await before.command('EHLO a.example');
    await before.command('MAIL FROM:<first@remote.test>');
    assert.match((await before.command('RCPT TO:<alice@example.org>'))[0]!, /^250 /, 'no greylisting yet');
    before.close();
    const text = readFileSync(srv.configFile, 'utf8');
    assert.ok(text.includes('[protection]\nenabled = false\n'));
    writeFileSync(
      srv.configFile,
      text.replace('[protection]\nenabled = false\n', '[protection]\nenabled = true\nscreen_exempt = []\ndnsbl = []\ngreylisting = true\ngreylist_delay = "1h"\npregreet_wait = "0s"\n'),
    );
    const reloads = srv.logs.filter((l) => l.msg === 'inbound checks rebuilt from the new [protection]/[spam]/[virus] settings').length;
    srv.child!.kill('SIGHUP');
    for (let i = 0; i < 100 && srv.logs.filter((l) => l.msg === 'inbound checks rebuilt from the new [protection]/[spam]/[virus] settings').length === reloads; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await RawClient.connect(srv.ports.smtp);
    await after.reply();
    await after.command('EHLO b.example');
    await after.command('MAIL FROM:<second@remote.test>');
    assert.match((await after.command('RCPT TO:<alice@example.org>'))[0]!, /^451 4\.7\.1 /, 'greylisted after the reload');
    after.close();
    // Switch it off again for the tests that follow.
    writeFileSync(srv.configFile, text);
    srv.child!.kill('SIGHUP');
    for (let i = 0; i < 100 && srv.logs.filter((l) => l.msg === 'inbound checks rebuilt from the new [protection]/[spam]/[virus] settings').length < reloads + 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it('SIGHUP moves, opens and closes listeners as [listeners] now say; open connections stay', async () => {
    const text = readFileSync(srv.configFile, 'utf8');
    const oldPort = srv.ports.submissions;
    const newPort = await freePort();
    const held = await RawClient.connect(oldPort, { tls: true });
    assert.match((await held.reply())[0]!, /^220 /);
    const reloaded = async () => {
      const n = srv.logs.filter((l) => l.msg === 'configuration reloaded').length;
      srv.child!.kill('SIGHUP');
      for (let i = 0; i < 100 && srv.logs.filter((l) => l.msg === 'configuration reloaded').length === n; i++) await new Promise((r) => setTimeout(r, 50));
    };
    assert.ok(text.includes(`[listeners.imap]\nenabled = false\n`));
    writeFileSync(
      srv.configFile,
      text.replace(`address = "127.0.0.1:${oldPort}"`, `address = "127.0.0.1:${newPort}"`).replace('[listeners.imap]\nenabled = false\n', '[listeners.imap]\nenabled = true\n'),
    );
    await reloaded();
    try {
      const moved = await RawClient.connect(newPort, { tls: true });
      assert.match((await moved.reply())[0]!, /^220 /, 'submissions answers on its new port');
      moved.close();
      await assert.rejects(RawClient.connect(oldPort, { tls: true }), /ECONNREFUSED/, 'and no longer on the old one');
      assert.match((await held.command('EHLO still.example')).join('\n'), /^250[ -]/, 'the connection accepted on the old port goes on');
      const imap = await RawClient.connect(srv.ports.imap);
      for (let i = 0; i < 250 && !imap.pending().includes('\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(imap.pending(), /^\* OK /, 'imap, enabled by the reload, greets');
      imap.close();
    } finally {
      held.close();
      // Back as before for the tests that follow: the old port again, imap closed.
      writeFileSync(srv.configFile, text);
      await reloaded();
    }
    const back = await RawClient.connect(oldPort, { tls: true });
    assert.match((await back.reply())[0]!, /^220 /);
    back.close();
    await assert.rejects(RawClient.connect(srv.ports.imap), /ECONNREFUSED/, 'imap disabled again');
  });

  it('SIGTERM stops accepting, lets an open session finish, then exits 0', async () => {
    const c = await RawClient.connect(srv.ports.smtp);
    await c.reply();
    await c.command('EHLO a.example');
    await c.command('MAIL FROM:<x@remote.test>');
    await c.command('RCPT TO:<alice@example.org>');
    srv.child!.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(RawClient.connect(srv.ports.smtp), /ECONNREFUSED/, 'no new connections');
    assert.match((await c.command('DATA'))[0]!, /^354 /);
    c.write('Subject: during shutdown\r\n\r\nhi\r\n.\r\n');
    assert.match((await c.reply())[0]!, /^250 /);
    c.write('QUIT\r\n');
    assert.equal(await srv.waitExit(), 0);
    assert.ok((await mailboxMessages(dataDirOf(srv.dir), 'alice@example.org')).some((m) => m.raw.includes('during shutdown')));
  });
});
