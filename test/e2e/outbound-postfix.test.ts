/**
 * Interop: Postern delivers by MX to a real Postfix (Debian's 3.7) on 127.0.0.5:25 and the mail arrives in a
 * Maildir there. Postfix's own Received header (smtpd_tls_received_header) shows the TLS Postern negotiated,
 * and the DKIM signatures Postern added (RSA and Ed25519, keys from `postern dkim generate`) verify on the
 * delivered copy: with mailauth against the TXT records in our test DNS, and with OpenDKIM's
 * `opendkim-testmsg`.
 *
 * The test DNS serves on 127.0.0.5:53 (UDP and TCP) rather than an ephemeral port, because opendkim-testmsg
 * has no resolver option: libopendkim asks the libc resolver, which reads /etc/resolv.conf and only knows port
 * 53. It runs in a private mount namespace (`unshare -m`) where a resolv.conf of the test's own
 * ("nameserver 127.0.0.5") is bind-mounted over /etc/resolv.conf: nothing on disk changes, and its queries stay
 * on loopback. Where unshare is not permitted, that check is skipped with the reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import os from 'node:os';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { waitFor } from '../harness/fake-mta.js';
import { Postfix, postfixMissing } from '../harness/postfix.js';
import { TestServer } from '../harness/server.js';
import { submit } from '../harness/submit.js';

const PW = 'correct horse battery';
const HOST = '127.0.0.5';
const TESTMSG = '/usr/sbin/opendkim-testmsg';

/** Whether `unshare -m` with a bind mount works here (root with CAP_SYS_ADMIN); the reason when it does not. */
function unshareMissing(): string | null {
  if (!existsSync(TESTMSG)) return `${TESTMSG} is not installed (package opendkim-tools; .ci/run installs it)`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind /dev/null /etc/hostname'], { encoding: 'utf8' });
  return r.status === 0 ? null : `cannot give opendkim-testmsg a private resolv.conf (unshare -m: ${(r.stderr || r.error?.message || '').trim()})`;
}

/** Runs opendkim-testmsg (verify mode) on a message with the test DNS as its resolver. */
function opendkimVerify(message: string, resolvConf: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind "$1" /etc/resolv.conf && exec ${TESTMSG}`, 'sh', resolvConf], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', (d) => (stderr += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    });
    child.stdin.end(message);
  });
}

/** "sel._domainkey.d. IN TXT ( "a" "b" )" -> [name, value]. */
function parseZoneLine(line: string): [string, string] {
  const m = /^(\S+)\. IN TXT \( (.*) \)$/.exec(line.trim());
  assert.ok(m, `zone line: ${line}`);
  return [m[1]!, [...m[2]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]).join('')];
}

/** The message with only the DKIM-Signature of one algorithm (the others removed; they are not signed). */
function withOnlySignature(message: string, algo: string): string {
  const end = message.indexOf('\n\n');
  const fields = message.slice(0, end + 1).split(/\n(?=\S)/);
  const kept = fields.filter((f) => !/^DKIM-Signature:/i.test(f) || new RegExp(`a=${algo};`).test(f));
  return kept.join('\n') + message.slice(end + 1);
}

const missing = postfixMissing();

describe('interop with a real Postfix', { timeout: 90_000, skip: missing ?? false }, () => {
  let dir: string;
  let dns: DnsServer;
  let postfix: Postfix;
  let srv: TestServer;
  let delivered: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-pfi-'));
    dns = await startDnsServer({ host: HOST, port: 53 });
    dns.set('interop.test', [{ type: 'MX', data: { preference: 10, exchange: 'postfix.remote.test' } }]);
    dns.set('postfix.remote.test', [{ type: 'A', data: HOST }]);
    postfix = await Postfix.start({ host: HOST, hostname: 'postfix.remote.test', mailboxes: { 'interop.test': ['bob'] } });
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "1s"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "3s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
    for (const args of [['--type', 'rsa', '--selector', 'pfrsa'], ['--type', 'ed25519', '--selector', 'pfed']]) {
      const r = await srv.cli(['dkim', 'generate', 'example.org', ...args]);
      assert.equal(r.code, 0, r.stderr);
      const [name, value] = parseZoneLine(r.stdout.split('\n').find((l) => l.includes('IN TXT'))!);
      dns.set(name, [{ type: 'TXT', data: value }]);
    }
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    if (postfix) {
      await postfix.stop();
      postfix.cleanup();
    }
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Postfix receives the message over STARTTLS and its Received header reports the TLS version and cipher', async () => {
    await submit(srv.ports.submissions, { to: ['bob@interop.test'], subject: 'hello postfix', body: 'Interop body.\r\nSecond line.\r\n' });
    try {
      delivered = await waitFor(() => postfix.messages('bob@interop.test')[0], 20_000, 'delivery into the Postfix Maildir');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- postfix maillog ---\n${postfix.log()}\n--- postern ---\n${srv.logs.filter((l) => /deliver|outbound/.test(String(l.msg))).map((l) => JSON.stringify(l)).join('\n')}`);
    }
    assert.match(delivered, /^Subject: hello postfix$/m);
    assert.match(delivered, /^Delivered-To: bob@interop\.test$/m);
    assert.match(delivered, /Interop body\.\nSecond line\./);
    // Postfix: "Received: from mx.postern.test (unknown [127.0.0.1]) (using TLSv1.3 with cipher X (256/256 bits) ...".
    const received = /^Received: from mx\.postern\.test \(unknown \[127\.0\.0\.1\]\)\n\t\(using (TLSv1\.[23]) with cipher (\S+) \((\d+)\/(\d+) bits\)[\s\S]*?by postfix\.remote\.test \(Postfix\) with ESMTPS id/m.exec(delivered);
    assert.ok(received, `Postfix's Received header with TLS details:\n${delivered.slice(0, 1200)}`);
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'bob@interop.test'), 5000, 'delivered log');
    const tls = log.tls as { version: string; cipher: string; verified: boolean };
    assert.equal(tls.version, received[1], 'Postern and Postfix agree on the TLS version');
    assert.equal(tls.cipher, received[2], 'Postern and Postfix agree on the cipher');
    assert.equal(tls.verified, false, 'a self-signed certificate is used but not verified (opportunistic TLS, RFC 7435)');
    assert.match(String(log.relay), /^postfix\.remote\.test \[127\.0\.0\.5\]$/);
    assert.match(postfix.log(), /postfix\/virtual\[\d+\]: \w+: to=<bob@interop\.test>, relay=virtual, .*status=sent/);
  });

  it('the DKIM signatures (RSA and Ed25519) verify with mailauth against the published TXT records', async () => {
    assert.ok(delivered, 'delivered by the previous test');
    const resolver = new Resolver();
    resolver.setServers([dns.address]);
    const res = await dkimVerify(Buffer.from(delivered.replace(/\r?\n/g, '\r\n')), { resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT') as Promise<string[][]> });
    const byAlgo = Object.fromEntries(res.results.map((x) => [(x as { algo?: string }).algo, x.status.result]));
    assert.deepEqual(byAlgo, { 'rsa-sha256': 'pass', 'ed25519-sha256': 'pass' }, JSON.stringify(res.results.map((x) => x.status)));
  });

  it('the DKIM signature verifies with opendkim-testmsg (OpenDKIM), each alone, and a tampered copy fails', async (t) => {
    assert.ok(delivered, 'delivered by the previous test');
    const why = unshareMissing();
    if (why) return t.skip(why);
    const resolvConf = path.join(dir, 'resolv.conf');
    writeFileSync(resolvConf, `nameserver ${HOST}\noptions timeout:2 attempts:2\n`);
    const before = dns.queries.length;
    const ok = await opendkimVerify(delivered, resolvConf);
    assert.equal(ok.code, 0, `opendkim-testmsg: ${ok.stderr}`);
    assert.equal(ok.stderr, '', 'no output means the signature verified');
    assert.ok(dns.queries.slice(before).some((q) => /_domainkey\.example\.org$/.test(q.name) && q.type === 'TXT'), 'OpenDKIM fetched the key from the test DNS');
    // Each signature on its own (the other removed: DKIM-Signature fields are not signed), untouched and tampered.
    for (const algo of ['rsa-sha256', 'ed25519-sha256']) {
      const only = withOnlySignature(delivered, algo);
      assert.equal((only.match(/^DKIM-Signature:/gm) ?? []).length, 1);
      const good = await opendkimVerify(only, resolvConf);
      assert.equal(good.code, 0, `${algo} alone: ${good.stderr}`);
      const bad = await opendkimVerify(only.replace('Second line.', 'Second line!'), resolvConf);
      assert.notEqual(bad.code, 0, `${algo}: a changed body fails verification`);
      assert.match(bad.stderr, /dkim_eom\(\): Bad signature/);
    }
  });
});
