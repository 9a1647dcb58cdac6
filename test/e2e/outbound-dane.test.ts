/**
 * DANE for outbound mail (RFC 7672). The test DNS server plays a validating resolver (AD set) for the "secure"
 * zones; recording MTAs: 127.0.0.14 (certificate for mx.dane.test from a test CA), 127.0.0.16 (mx2.dane.test, the
 * CA certificate sent with it), 127.0.0.15 (smtp-server's self-signed certificate).
 *  - DANE-EE 3 1 1 matching the MX's key: delivered, recorded as authenticated by DANE; the same for a domain
 *    without MX records (its own TLSA records);
 *  - DANE-TA 2 0 1 matching the CA of the chain, leaf for the MX name: delivered;
 *  - TLSA records that do not match: nothing sent (no plaintext either), the mail waits with 4.7.5;
 *  - the same records without DNSSEC (no AD): ignored, opportunistic TLS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { FakeMta, waitFor } from '../harness/fake-mta.js';
import { TestServer } from '../harness/server.js';
import { dataDirOf, queuedAfterAttempts } from '../harness/store.js';
import { submit } from '../harness/submit.js';
import { makePki } from '../harness/pki.js';

const PW = 'correct horse battery';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const spki = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });

describe('outbound: DANE (RFC 7672)', { timeout: 90_000 }, () => {
  let dir: string;
  let dns: DnsServer;
  let ee: FakeMta;
  let ta: FakeMta;
  let selfSigned: FakeMta;
  let srv: TestServer;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-dane-'));
    const p = makePki(dir, ['mx.dane.test', 'mx2.dane.test']);
    const caPem = readFileSync(p.ca, 'utf8');
    dns = await startDnsServer();
    ee = await FakeMta.start({ host: '127.0.0.14', ...p.certs['mx.dane.test']! });
    ta = await FakeMta.start({ host: '127.0.0.16', key: p.certs['mx2.dane.test']!.key, cert: p.certs['mx2.dane.test']!.cert + caPem });
    selfSigned = await FakeMta.start({ host: '127.0.0.15' });
    for (const zone of ['dane.test', 'ee.test', 'ta.test', 'wrong.test', 'implicit-ee.test']) dns.secure(zone);
    // No MX record (validated NODATA): the domain is its own MX, with TLSA records of its own.
    dns.set('implicit-ee.test', [{ type: 'A', data: '127.0.0.14' }]);
    dns.set('mx.dane.test', [{ type: 'A', data: '127.0.0.14' }]);
    dns.set('mx2.dane.test', [{ type: 'A', data: '127.0.0.16' }]);
    dns.set('bad.dane.test', [{ type: 'A', data: '127.0.0.15' }]);
    dns.set('bad.insecure-zone.test', [{ type: 'A', data: '127.0.0.15' }]);
    const eeRecord = { usage: 3, selector: 1, matchingType: 1, certificate: sha256(spki(p.certs['mx.dane.test']!.cert)) };
    dns.set('_25._tcp.mx.dane.test', [{ type: 'TLSA', data: eeRecord }]);
    dns.set('_25._tcp.implicit-ee.test', [{ type: 'TLSA', data: eeRecord }]);
    dns.set('_25._tcp.mx2.dane.test', [{ type: 'TLSA', data: { usage: 2, selector: 0, matchingType: 1, certificate: sha256(new X509Certificate(caPem).raw) } }]);
    // Records that match neither the self-signed MX nor anything it sends.
    dns.set('_25._tcp.bad.dane.test', [{ type: 'TLSA', data: eeRecord }]);
    dns.set('_25._tcp.bad.insecure-zone.test', [{ type: 'TLSA', data: eeRecord }]);
    for (const [domain, mx] of [
      ['ee.test', 'mx.dane.test'],
      ['ta.test', 'mx2.dane.test'],
      ['wrong.test', 'bad.dane.test'],
      ['insecure.test', 'bad.insecure-zone.test'],
    ] as const)
      dns.set(domain, [{ type: 'MX', data: { preference: 10, exchange: mx } }]);
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "1s"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    for (const m of [ee, ta, selfSigned]) await m?.close();
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const delivered = (rcpt: string) => waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === rcpt), 10_000, `delivered log for ${rcpt}`);

  it('DANE-EE: the MX key matches its TLSA record: delivered, authenticated by DANE', async () => {
    await submit(srv.ports.submissions, { to: ['bob@ee.test'], subject: 'dane ee' });
    await waitFor(() => ee.for('bob@ee.test')[0], 10_000, 'delivery to mx.dane.test');
    const tls = (await delivered('bob@ee.test')).tls as { verified: boolean; dane?: boolean };
    assert.deepEqual([tls.verified, tls.dane], [true, true]);
  });

  it('the implicit MX (validated absence of MX records): DANE with the TLSA records of the domain itself', async () => {
    await submit(srv.ports.submissions, { to: ['bob@implicit-ee.test'], subject: 'dane implicit' });
    await waitFor(() => ee.for('bob@implicit-ee.test')[0], 10_000, 'delivery to the implicit MX');
    assert.equal(((await delivered('bob@implicit-ee.test')).tls as { dane?: boolean }).dane, true);
  });

  it('DANE-TA: the CA of the presented chain matches, the certificate is for the MX name: delivered', async () => {
    await submit(srv.ports.submissions, { to: ['bob@ta.test'], subject: 'dane ta' });
    await waitFor(() => ta.for('bob@ta.test')[0], 10_000, 'delivery to mx2.dane.test');
    assert.equal(((await delivered('bob@ta.test')).tls as { dane?: boolean }).dane, true);
  });

  it('TLSA records that do not match: nothing is sent, not even in plaintext; the mail waits with 4.7.5', async () => {
    await submit(srv.ports.submissions, { to: ['bob@wrong.test'], subject: 'dane wrong' });
    const r = await queuedAfterAttempts(dataDirOf(srv.dir), 'bob@wrong.test', 2);
    assert.equal(r.status, 'queued');
    assert.match(String(r.lastError), /^4\.7\.5 bad\.dane\.test \[127\.0\.0\.15\]: certificate does not match its DANE TLSA records/);
    assert.equal(selfSigned.for('bob@wrong.test').length, 0);
  });

  it('the same records without DNSSEC validation are ignored: opportunistic TLS', async () => {
    await submit(srv.ports.submissions, { to: ['bob@insecure.test'], subject: 'dane insecure' });
    const m = await waitFor(() => selfSigned.for('bob@insecure.test')[0], 10_000, 'opportunistic delivery');
    assert.equal(m.secure, true);
    assert.equal(((await delivered('bob@insecure.test')).tls as { dane?: boolean }).dane, undefined);
  });
});
