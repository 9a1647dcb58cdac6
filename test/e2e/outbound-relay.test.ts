/**
 * Relay hosts and DKIM end to end. A test CA signs a certificate for relay.test; two recording relays with AUTH
 * run on 127.0.0.4:465 (implicit TLS) and 127.0.0.4:587 (STARTTLS). Postern trusts the CA through
 * [delivery] relay_ca_file and resolves relay.test through the test DNS. DKIM keys are made with
 * `postern dkim generate`, the printed TXT records are published in the test DNS, and mailauth verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import os from 'node:os';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { FakeMta, waitFor } from '../harness/fake-mta.js';
import { TestServer } from '../harness/server.js';
import { dataDirOf, queueEntries } from '../harness/store.js';
import { submit } from '../harness/submit.js';
import { makeCa } from '../harness/pki.js';

const PW = 'correct horse battery';

/** "sel._domainkey.d. IN TXT ( "a" "b" )" -> [name, value]. */
function parseZoneLine(line: string): [string, string] {
  const m = /^(\S+)\. IN TXT \( (.*) \)$/.exec(line.trim());
  assert.ok(m, `zone line: ${line}`);
  return [m[1]!, [...m[2]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]).join('')];
}

describe('relay hosts and DKIM', { timeout: 120_000 }, () => {
  let dir: string;
  let dns: DnsServer;
  let r465: FakeMta;
  let r587: FakeMta;
  let srv: TestServer;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-relay-'));
    const pki = makeCa(dir, 'relay.test');
    dns = await startDnsServer();
    dns.set('relay.test', [{ type: 'A', data: '127.0.0.4' }]);
    r465 = await FakeMta.start({ host: '127.0.0.4', port: 465, secure: true, key: pki.key, cert: pki.cert, auth: { user: 'relayuser', pass: 's3cret' } });
    r587 = await FakeMta.start({ host: '127.0.0.4', port: 587, key: pki.key, cert: pki.cert, auth: { user: 'other', pass: 'pw587' } });
    writeFileSync(path.join(dir, 'relay-credentials'), 'relayuser:s3cret\n');
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "300ms"\npoll_interval = "100ms"\n[delivery]\nrelay = "smtps://relay.test:465"\nrelay_credentials_file = "${path.join(dir, 'relay-credentials')}"\nrelay_ca_file = "${pki.ca}"\nconnect_timeout = "2s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
    await srv.addAccount('bob@example.net', PW);
    await srv.addAccount('carol@example.com', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await r465?.close();
    await r587?.close();
    await dns?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('DKIM: `postern dkim generate` keys (RSA and Ed25519) sign submitted mail; both verify against the published TXT', async () => {
    for (const args of [['--type', 'rsa', '--selector', 'rsa1'], ['--type', 'ed25519', '--selector', 'ed1']]) {
      const r = await srv.cli(['dkim', 'generate', 'example.org', ...args]);
      assert.equal(r.code, 0, r.stderr);
      const zone = r.stdout.split('\n').find((l) => l.includes('IN TXT'))!;
      const [name, value] = parseZoneLine(zone);
      dns.set(name, [{ type: 'TXT', data: value }]);
    }
    const dup = await srv.cli(['dkim', 'generate', 'example.org', '--selector', 'rsa1']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^postern: a key with selector "rsa1" already exists/);

    await submit(srv.ports.submissions, { to: ['dest@world.test'], subject: 'signed via relay' });
    const m = await waitFor(() => r465.for('dest@world.test')[0], 10_000, 'relay 465 delivery');
    assert.equal(m.secure, true);
    const resolver = new Resolver();
    resolver.setServers([dns.address]);
    const res = await dkimVerify(Buffer.from(m.raw), { resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT') as Promise<string[][]> });
    const byAlgo = Object.fromEntries(res.results.map((x) => [(x as { algo?: string }).algo, x.status.result]));
    assert.deepEqual(byAlgo, { 'rsa-sha256': 'pass', 'ed25519-sha256': 'pass' }, JSON.stringify(res.results.map((x) => x.status)));
    assert.match(m.raw, /h=[^;]*From: From;/, 'From is oversigned');
  });

  it('relay on 465 with implicit TLS and AUTH from the credentials file', async () => {
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'dest@world.test'), 5000, 'delivered log');
    const tls = log.tls as { verified: boolean };
    assert.equal(tls.verified, true, 'the relay certificate verified against relay_ca_file');
  });

  it('per-domain relay on 587 with STARTTLS (relay add-domain / add-auth)', async () => {
    assert.equal((await srv.cli(['relay', 'add-domain', 'example.net', 'relay.test:587'])).code, 0);
    assert.equal((await srv.cli(['relay', 'add-auth', 'example.net', 'other', 'pw587'])).code, 0);
    await submit(srv.ports.submissions, { from: 'bob@example.net', to: ['x@world.test'], subject: 'via 587' });
    const m = await waitFor(() => r587.for('x@world.test')[0], 10_000, 'relay 587 delivery');
    assert.equal(m.secure, true, 'STARTTLS before AUTH');
    assert.equal(r465.for('x@world.test').length, 0);
    const list = await srv.cli(['relay', 'list']);
    assert.match(list.stdout, /example\.net\s+relay\.test:587\s+auth other/);
  });

  it('a wrong relay password keeps the message queued and the log says why', async () => {
    assert.equal((await srv.cli(['relay', 'add-auth', 'example.com', 'relayuser', 'wrong-password'])).code, 0);
    await submit(srv.ports.submissions, { from: 'carol@example.com', to: ['y@world.test'], subject: 'bad auth' });
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivery deferred' && l.rcpt === 'y@world.test'), 10_000, 'deferred log');
    assert.match(String(log.reason), /relay relay\.test authentication failed: 535/);
    const e = (await queueEntries(dataDirOf(srv.dir))).find((x) => x.recipients.some((r) => r.address === 'y@world.test'));
    assert.ok(e, 'still queued');
    assert.equal(e.recipients[0]!.status, 'queued');
    assert.equal(r465.for('y@world.test').length, 0);
    // Fixing the credentials lets the next retry through.
    assert.equal((await srv.cli(['relay', 'add-auth', 'example.com', 'relayuser', 's3cret'])).code, 0);
    await waitFor(() => r465.for('y@world.test')[0], 10_000, 'delivered after fixing the password');
  });

  it('relay exclude-domain delivers directly by MX', async () => {
    assert.match((await srv.cli(['relay', 'exclude-domain', 'example.com'])).stdout, /delivered directly/);
    assert.equal((await srv.cli(['relay', 'add-domain', 'bad domain', 'x:1'])).code, 1);
  });
});
