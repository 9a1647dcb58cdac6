/**
 * MTA-STS for outbound mail (RFC 8461), against a policy server (HTTPS on 127.0.0.11:443, certificate from a test
 * CA that the server trusts through NODE_EXTRA_CA_CERTS) and recording MTAs on 127.0.0.12:25 (a certificate from
 * that CA for mx.sts.test) and 127.0.0.13:25 (smtp-server's self-signed certificate):
 *  - enforce, MX listed, certificate valid: delivered over verified TLS;
 *  - enforce, MX listed, certificate not valid: not delivered (no plaintext fallback), kept queued with 4.7.5;
 *  - enforce, MX not listed in the policy: not delivered, 4.7.5;
 *  - testing, certificate not valid: delivered anyway, and logged;
 *  - a domain without a policy record: opportunistic TLS as before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { FakeMta, waitFor } from '../harness/fake-mta.js';
import { TestServer } from '../harness/server.js';
import { dataDirOf, queuedAfterAttempts } from '../harness/store.js';
import { submit } from '../harness/submit.js';
import { makePki } from '../harness/pki.js';

const PW = 'correct horse battery';

const POLICIES: Record<string, string> = {
  'enforce.test': 'version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n',
  'badcert.test': 'version: STSv1\nmode: enforce\nmx: *.sts.test\nmax_age: 86400\n',
  'unlisted.test': 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n',
  'testing.test': 'version: STSv1\nmode: testing\nmx: selfsigned.sts.test\nmax_age: 86400\n',
};

describe('outbound: MTA-STS (RFC 8461)', { timeout: 90_000 }, () => {
  let dir: string;
  let dns: DnsServer;
  let good: FakeMta;
  let selfSigned: FakeMta;
  let web: https.Server;
  let srv: TestServer;
  const fetched: string[] = [];

  const failedAttempts = (rcpt: string, n: number) => queuedAfterAttempts(dataDirOf(srv.dir), rcpt, n);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-sts-'));
    const names = Object.keys(POLICIES).map((d) => `mta-sts.${d}`);
    const p = makePki(dir, [...names, 'mx.sts.test']);
    dns = await startDnsServer();
    good = await FakeMta.start({ host: '127.0.0.12', key: p.certs['mx.sts.test']!.key, cert: p.certs['mx.sts.test']!.cert });
    selfSigned = await FakeMta.start({ host: '127.0.0.13' });
    // One HTTPS server for every policy host, the certificate chosen by SNI.
    const contexts = new Map(names.map((n) => [n, tls.createSecureContext(p.certs[n]!)]));
    web = https.createServer({ SNICallback: (name, cb) => cb(null, contexts.get(name)), ...p.certs[names[0]!]! }, (req, res) => {
      const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
      const domain = host.replace(/^mta-sts\./, '');
      fetched.push(`${host}${req.url}`);
      if (req.url !== '/.well-known/mta-sts.txt' || !POLICIES[domain]) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(POLICIES[domain]);
    });
    await new Promise<void>((r) => web.listen(443, '127.0.0.11', r));
    dns.set('mx.sts.test', [{ type: 'A', data: '127.0.0.12' }]);
    dns.set('selfsigned.sts.test', [{ type: 'A', data: '127.0.0.13' }]);
    for (const [domain, mx] of [
      ['enforce.test', 'mx.sts.test'],
      ['badcert.test', 'selfsigned.sts.test'],
      ['unlisted.test', 'mx.sts.test'],
      ['testing.test', 'selfsigned.sts.test'],
      ['nopolicy.test', 'selfsigned.sts.test'],
    ] as const) {
      dns.set(domain, [{ type: 'MX', data: { preference: 10, exchange: mx } }]);
      if (POLICIES[domain]) {
        dns.set(`_mta-sts.${domain}`, [{ type: 'TXT', data: 'v=STSv1; id=20261130T000000;' }]);
        dns.set(`mta-sts.${domain}`, [{ type: 'A', data: '127.0.0.11' }]);
      }
    }
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "1s"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
      env: { NODE_EXTRA_CA_CERTS: p.ca },
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await good?.close();
    await selfSigned?.close();
    await new Promise((r) => (web ? web.close(r) : r(undefined)));
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('enforce: delivered to the listed MX over TLS with a verified certificate; the policy is fetched over HTTPS', async () => {
    await submit(srv.ports.submissions, { to: ['bob@enforce.test'], subject: 'sts enforce' });
    const m = await waitFor(() => good.for('bob@enforce.test')[0], 10_000, 'delivery to mx.sts.test');
    assert.equal(m.secure, true);
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'bob@enforce.test'), 5000, 'delivered log');
    assert.equal((log.tls as { verified: boolean }).verified, true);
    assert.ok(fetched.includes('mta-sts.enforce.test/.well-known/mta-sts.txt'), fetched.join(' '));
    assert.ok(await srv.logEntry('MTA-STS policy fetched', (l) => l.domain === 'enforce.test' && l.mode === 'enforce'));
  });

  it('enforce: an MX whose certificate does not verify gets nothing, not even in plaintext; the mail waits with 4.7.5', async () => {
    await submit(srv.ports.submissions, { to: ['bob@badcert.test'], subject: 'sts badcert' });
    const r = await failedAttempts('bob@badcert.test', 2);
    assert.equal(r.status, 'queued');
    assert.match(String(r.lastError), /^4\.7\.5 .*MTA-STS policy of badcert\.test/);
    assert.equal(selfSigned.for('bob@badcert.test').length, 0, 'nothing was sent to the MX');
  });

  it('enforce: an MX the policy does not list is not tried', async () => {
    await submit(srv.ports.submissions, { to: ['bob@unlisted.test'], subject: 'sts unlisted' });
    const r = await failedAttempts('bob@unlisted.test', 1);
    assert.match(String(r.lastError), /^4\.7\.5 MTA-STS policy of unlisted\.test lists mx\.elsewhere\.test; its MX hosts are mx\.sts\.test: no MX host to deliver to/);
    assert.equal(good.for('bob@unlisted.test').length, 0);
  });

  it('testing: delivered despite the certificate, and the failure is logged', async () => {
    await submit(srv.ports.submissions, { to: ['bob@testing.test'], subject: 'sts testing' });
    await waitFor(() => selfSigned.for('bob@testing.test')[0], 10_000, 'delivery in testing mode');
    assert.ok(await srv.logEntry('MTA-STS policy (testing): no TLS with a valid certificate; delivering anyway', (l) => l.domain === 'testing.test'));
  });

  it('no policy record: opportunistic TLS, delivered to a self-signed MX', async () => {
    await submit(srv.ports.submissions, { to: ['bob@nopolicy.test'], subject: 'sts none' });
    const m = await waitFor(() => selfSigned.for('bob@nopolicy.test')[0], 10_000, 'opportunistic delivery');
    assert.equal(m.secure, true);
    assert.ok(!fetched.some((f) => f.startsWith('mta-sts.nopolicy.test')), 'no policy fetched without a record');
  });
});

