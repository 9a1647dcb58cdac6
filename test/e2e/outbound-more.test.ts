/**
 * Outbound paths the other outbound tests leave out, against recording MTAs (smtp-server) on 127.0.0.6:25
 * (8BITMIME and DSN, no SMTPUTF8) and 127.0.0.7:25 (none of 8BITMIME, SMTPUTF8, DSN), and a relay on
 * 127.0.0.7:465 (implicit TLS, certificate from a test CA):
 *  - a STARTTLS handshake that fails is retried in plaintext on the same address (Postfix's `may`);
 *  - a message that needs SMTPUTF8, to a server without it: permanent failure, bounce with 5.6.7 (RFC 6531 3.2)
 *    as message/global-delivery-status (RFC 6533);
 *  - 8-bit content: BODY=8BITMIME where offered; to a server without 8BITMIME a bounce with 5.6.3 (RFC 6152);
 *  - NOTIFY=SUCCESS: passed on (with ORCPT) to a server that has DSN, and no report from us; to a server
 *    without DSN we send a "relayed" DSN (RFC 3461 5.2.2);
 *  - `[delivery] relay` with `postern relay exclude-domain`: an excluded sender domain goes by MX, others
 *    through the relay.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { FakeMta, waitFor } from '../harness/fake-mta.js';
import { TestServer } from '../harness/server.js';
import { dataDirOf, mailboxMessages, queueEntries } from '../harness/store.js';
import { submit } from '../harness/submit.js';
import { makeCa } from '../harness/pki.js';

const PW = 'correct horse battery';

describe('outbound: SMTPUTF8, 8BITMIME, NOTIFY=SUCCESS, relay exclusions', { timeout: 90_000 }, () => {
  let dir: string;
  let dns: DnsServer;
  let mx6: FakeMta;
  let mx7: FakeMta;
  let relay: FakeMta;
  let srv: TestServer;

  const inbox = () => mailboxMessages(dataDirOf(srv.dir), 'alice@example.org');
  const dsnFor = async (subject: string, rcpt: string) => (await inbox()).filter((m) => m.raw.includes(`Subject: ${subject}`) && m.raw.includes(rcpt));

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-more-'));
    const pki = makeCa(dir, 'relay.more.test');
    dns = await startDnsServer();
    mx6 = await FakeMta.start({ host: '127.0.0.6', hide: ['SMTPUTF8'] });
    // mx7 lacks everything, and its STARTTLS handshake fails (TLS 1.0 only; our client wants 1.2 or later).
    mx7 = await FakeMta.start({ host: '127.0.0.7', hide: ['SMTPUTF8', '8BITMIME', 'DSN'], tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1' } });
    relay = await FakeMta.start({ host: '127.0.0.7', port: 465, secure: true, key: pki.key, cert: pki.cert });
    dns.set('mx6.more.test', [{ type: 'A', data: '127.0.0.6' }]);
    dns.set('mx7.more.test', [{ type: 'A', data: '127.0.0.7' }]);
    dns.set('relay.more.test', [{ type: 'A', data: '127.0.0.7' }]);
    for (const d of ['noutf8.test', 'eightbit-ok.test', 'withdsn.test', 'direct.test']) dns.set(d, [{ type: 'MX', data: { preference: 10, exchange: 'mx6.more.test' } }]);
    for (const d of ['eightbit-no.test', 'nodsn.test', 'badtls.test']) dns.set(d, [{ type: 'MX', data: { preference: 10, exchange: 'mx7.more.test' } }]);
    srv = await TestServer.create({
      extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "300ms"\nretry_max = "1s"\npoll_interval = "100ms"\n[delivery]\nrelay = "smtps://relay.more.test:465"\nrelay_ca_file = "${pki.ca}"\nconnect_timeout = "2s"\n`,
    });
    await srv.start();
    await srv.addAccount('alice@example.org', PW);
    await srv.addAccount('carol@example.com', PW);
    // Everything from example.org goes by MX despite the global relay (that is what most tests here need).
    const ex = await srv.cli(['relay', 'exclude-domain', 'example.org']);
    assert.equal(ex.code, 0, ex.stderr);
  });

  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await mx6?.close();
    await mx7?.close();
    await relay?.close();
    await dns?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a failed STARTTLS handshake is retried in plaintext on the same address (opportunistic TLS, RFC 7435)', async () => {
    await submit(srv.ports.submissions, { to: ['t@badtls.test'], subject: 'bad tls' });
    const m = await waitFor(() => mx7.for('t@badtls.test')[0], 10_000, 'plaintext delivery after the TLS failure');
    assert.equal(m.secure, false);
    const fallback = await srv.logEntry('STARTTLS failed; retrying in plaintext', (l) => l.ip === '127.0.0.7');
    assert.ok(fallback, 'the fallback is logged');
    assert.match(String(fallback.err), /protocol version|unsupported protocol|TLS/i);
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 't@badtls.test'), 5000, 'delivered log');
    assert.equal(log.tls, null, 'delivered without TLS, and the log says so');
    assert.equal(log.attempts, 1, 'on the first attempt');
  });

  it('a message that needs SMTPUTF8, to a server without it, bounces at once with 5.6.7 (RFC 6531 3.2)', async () => {
    await submit(srv.ports.submissions, { to: ['jörg@noutf8.test'], subject: 'needs utf8' });
    const dsn = await waitFor(async () => (await dsnFor('Undelivered Mail Returned to Sender', 'jörg@noutf8.test'))[0], 10_000, 'SMTPUTF8 bounce');
    assert.match(dsn.raw, /Content-Type: message\/global-delivery-status/, 'an SMTPUTF8 message gets a global DSN (RFC 6533)');
    assert.match(dsn.raw, /Final-Recipient: utf-8; jörg@noutf8\.test/);
    assert.match(dsn.raw, /Action: failed/);
    assert.match(dsn.raw, /Status: 5\.6\.7/);
    assert.match(dsn.raw, /Diagnostic-Code: X-Postern; 5\.6\.7 mx6\.more\.test \[127\.0\.0\.6\] does not support SMTPUTF8, which this message requires/);
    assert.match(dsn.raw, /Content-Type: message\/global\r\n/, 'the original returned as message/global');
    assert.equal(mx6.for('jörg@noutf8.test').length, 0, 'nothing was sent');
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivery failed permanently' && l.rcpt === 'jörg@noutf8.test'), 5000, 'one attempt, failed permanently');
    assert.equal(log.attempts, 1);
    await waitFor(async () => !(await queueEntries(dataDirOf(srv.dir))).some((e) => e.recipients.some((r) => r.address === 'jörg@noutf8.test')), 5000, 'entry removed');
  });

  it('8-bit content goes with BODY=8BITMIME where offered, and bounces with 5.6.3 where 8BITMIME is not (RFC 6152)', async () => {
    const body = 'Grüße aus Köln, 8-bit.\r\n';
    await submit(srv.ports.submissions, { to: ['ok@eightbit-ok.test'], subject: 'eight ok', body });
    const m = await waitFor(() => mx6.for('ok@eightbit-ok.test')[0], 10_000, '8-bit delivery');
    assert.equal(m.mailArgs.BODY, '8BITMIME');
    assert.ok(m.raw.includes(body), 'the 8-bit body arrives unchanged');

    await submit(srv.ports.submissions, { to: ['no@eightbit-no.test'], subject: 'eight no', body });
    const dsn = await waitFor(async () => (await dsnFor('Undelivered Mail Returned to Sender', 'no@eightbit-no.test'))[0], 10_000, '8BITMIME bounce');
    assert.match(dsn.raw, /Content-Type: message\/delivery-status/);
    assert.match(dsn.raw, /Final-Recipient: rfc822; no@eightbit-no\.test/);
    assert.match(dsn.raw, /Status: 5\.6\.3/);
    assert.match(dsn.raw, /Diagnostic-Code: X-Postern; 5\.6\.3 mx7\.more\.test \[127\.0\.0\.7\] does not support 8BITMIME/);
    assert.equal(mx7.for('no@eightbit-no.test').length, 0, 'nothing was sent');
  });

  it('NOTIFY=SUCCESS: passed on to a server with DSN (no report from us); a "relayed" DSN when the server has no DSN', async () => {
    await submit(srv.ports.submissions, { to: ['s@withdsn.test'], subject: 'success dsn', dsn: { notify: ['SUCCESS'], orcpt: 'rfc822;orig-s@withdsn.test', envid: 'ENV-S1' } });
    const m = await waitFor(() => mx6.for('s@withdsn.test')[0], 10_000, 'delivery to a DSN server');
    assert.equal(m.rcptArgs[0]!.NOTIFY, 'SUCCESS');
    assert.equal(m.rcptArgs[0]!.ORCPT, 'rfc822;orig-s@withdsn.test');
    assert.equal(m.mailArgs.ENVID, 'ENV-S1');

    await submit(srv.ports.submissions, { to: ['r@nodsn.test'], subject: 'relayed dsn', dsn: { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;orig-r@nodsn.test', envid: 'ENV-R1', ret: 'HDRS' } });
    await waitFor(() => mx7.for('r@nodsn.test')[0], 10_000, 'delivery to a server without DSN');
    assert.deepEqual(mx7.for('r@nodsn.test')[0]!.rcptArgs[0], {}, 'no DSN parameters to a server without DSN');
    const dsn = await waitFor(async () => (await dsnFor('Successful Mail Delivery Report', 'r@nodsn.test'))[0], 10_000, 'relayed DSN');
    assert.match(dsn.raw, /Content-Type: multipart\/report; report-type=delivery-status;/);
    assert.match(dsn.raw, /Original-Envelope-Id: ENV-R1/);
    assert.match(dsn.raw, /Original-Recipient: rfc822;orig-r@nodsn\.test/);
    assert.match(dsn.raw, /Final-Recipient: rfc822; r@nodsn\.test/);
    assert.match(dsn.raw, /Action: relayed/);
    assert.match(dsn.raw, /Status: 2\.0\.0/);
    assert.match(dsn.raw, /Remote-MTA: dns; mx7\.more\.test/);
    assert.match(dsn.raw, /Content-Type: text\/rfc822-headers/, 'a success report returns the headers only');
    assert.match(dsn.raw, /Subject: relayed dsn/);

    // The server with DSN reports itself: no report from us for s@withdsn.test, and just one for r@nodsn.test.
    await new Promise((r) => setTimeout(r, 800));
    assert.equal((await dsnFor('Successful Mail Delivery Report', 's@withdsn.test')).length, 0);
    assert.equal((await dsnFor('Successful Mail Delivery Report', 'r@nodsn.test')).length, 1);
  });

  it('relay exclude-domain: excluded sender domains go by MX, the others through [delivery] relay', async () => {
    await submit(srv.ports.submissions, { from: 'carol@example.com', to: ['x@direct.test'], subject: 'via relay' });
    const viaRelay = await waitFor(() => relay.for('x@direct.test')[0], 10_000, 'delivery through the relay');
    assert.equal(viaRelay.secure, true);
    assert.equal(mx6.for('x@direct.test').length, 0);

    await submit(srv.ports.submissions, { from: 'alice@example.org', to: ['y@direct.test'], subject: 'excluded by MX' });
    const direct = await waitFor(() => mx6.for('y@direct.test')[0], 10_000, 'excluded domain by MX');
    assert.equal(direct.from, 'alice@example.org');
    assert.equal(relay.for('y@direct.test').length, 0);

    // Excluding example.com too switches its mail to direct delivery at the next queue pass.
    assert.match((await srv.cli(['relay', 'exclude-domain', 'example.com'])).stdout, /delivered directly/);
    assert.match((await srv.cli(['relay', 'list'])).stdout, /example\.com\s+excluded \(direct delivery\)/);
    await submit(srv.ports.submissions, { from: 'carol@example.com', to: ['z@direct.test'], subject: 'now by MX' });
    await waitFor(() => mx6.for('z@direct.test')[0], 10_000, 'newly excluded domain by MX');
    assert.equal(relay.for('z@direct.test').length, 0);
    const log = await waitFor(() => srv.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'z@direct.test'), 5000, 'delivered log');
    assert.match(String(log.relay), /^mx6\.more\.test \[127\.0\.0\.6\]$/);
  });
});
