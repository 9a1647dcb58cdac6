/** Unit tests for the outbound building blocks: resolver outcomes, MX ordering, backoff, DSN text, xtext. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../harness/dns-server.js';
import { DnsError, NodeResolver, isNullMx, orderMx } from '../../src/lib/dns/resolver.js';
import { backoff } from '../../src/core/queue.js';
import { buildDsn, wantsDsn } from '../../src/core/dsn.js';
import { enhanced, xtext } from '../../src/core/outbound.js';
import { fromDomain, txtRecord, zoneLine } from '../../src/core/dkim.js';
import { generateKeyPairSync } from 'node:crypto';

it('resolver: MX, NODATA, NXDOMAIN, SERVFAIL and null MX (RFC 7505) are told apart', async () => {
  const dns = await startDnsServer({
    records: {
      'a.test': [{ type: 'MX', data: { preference: 10, exchange: 'mx.a.test' } }],
      'noMx.test': [{ type: 'A', data: '127.0.0.9' }],
      'null.test': [{ type: 'MX', data: { preference: 0, exchange: '.' } }],
    },
    failures: { 'broken.test': 'servfail' },
  });
  try {
    const r = new NodeResolver({ servers: [dns.address], timeoutMs: 500, tries: 1 });
    assert.deepEqual(await r.mx('a.test'), [{ preference: 10, exchange: 'mx.a.test' }]);
    await assert.rejects(r.mx('nomx.test'), (e: DnsError) => e.kind === 'nodata' && e.notFound);
    await assert.rejects(r.mx('absent.test'), (e: DnsError) => e.kind === 'nxdomain');
    await assert.rejects(r.mx('broken.test'), (e: DnsError) => e.temporary);
    assert.equal(isNullMx(await r.mx('null.test')), true);
    assert.deepEqual(await r.a('nomx.test'), ['127.0.0.9']);
  } finally {
    await dns.close();
  }
});

it('orderMx: ascending preference, equal preferences shuffled by the injected randomness', () => {
  const recs = [
    { preference: 20, exchange: 'c' },
    { preference: 10, exchange: 'a' },
    { preference: 10, exchange: 'b' },
  ];
  let i = 0;
  const seq = [0.5, 0.9, 0.1];
  assert.deepEqual(orderMx(recs, () => seq[i++]!).map((r) => r.exchange), ['b', 'a', 'c']);
  i = 0;
  const seq2 = [0.5, 0.1, 0.9];
  assert.deepEqual(orderMx(recs, () => seq2[i++]!).map((r) => r.exchange), ['a', 'b', 'c']);
});

it('backoff doubles from the base and is capped', () => {
  const m = 60_000;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoff(n, 5 * m, 240 * m) / m), [5, 10, 20, 40, 80, 160, 240, 240]);
});

it('NOTIFY semantics (RFC 3461 4.1)', () => {
  assert.equal(wantsDsn(null, 'FAILURE'), true);
  assert.equal(wantsDsn(null, 'DELAY'), true);
  assert.equal(wantsDsn(null, 'SUCCESS'), false);
  assert.equal(wantsDsn(['NEVER'], 'FAILURE'), false);
  assert.equal(wantsDsn(['SUCCESS'], 'FAILURE'), false);
  assert.equal(wantsDsn(['SUCCESS', 'FAILURE'], 'SUCCESS'), true);
});

it('buildDsn: RFC 3464 structure, RET=FULL returns the message, SMTPUTF8 uses message/global*', () => {
  const original = Buffer.from('From: a@x.test\r\nSubject: hi\r\n\r\nbody\r\n');
  const base = {
    hostname: 'mx.example.org', queueId: 'Q1', sender: 'a@x.test', envid: null, ret: 'FULL' as const, smtputf8: false, arrival: 0, now: 1000, token: 'tok', original,
    recipients: [{ address: 'b@y.test', orcpt: 'rfc822;B@y.test', action: 'failed' as const, status: '5.1.1', diagnostic: '550 5.1.1 no', fromRemote: true, remoteMta: 'mx.y.test [192.0.2.1]', lastAttempt: 1000, willRetryUntil: null }],
  };
  const d = buildDsn(base).toString();
  assert.match(d, /Content-Type: multipart\/report; report-type=delivery-status;\r\n boundary="tok\/mx.example.org"/);
  assert.match(d, /Reporting-MTA: dns; mx.example.org\r\n/);
  assert.match(d, /Original-Recipient: rfc822;B@y.test\r\nFinal-Recipient: rfc822; b@y.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.y.test\r\nDiagnostic-Code: smtp; 550 5.1.1 no/);
  assert.match(d, /Content-Type: message\/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nFrom: a@x.test\r\nSubject: hi\r\n\r\nbody\r\n\r\n--tok\/mx.example.org--\r\n$/);
  const g = buildDsn({ ...base, smtputf8: true }).toString();
  assert.match(g, /message\/global-delivery-status/);
  assert.match(g, /Content-Type: message\/global\r\n/);
});

it('xtext and enhanced status codes', () => {
  assert.equal(xtext('a+b=c d'), 'a+2Bb+3Dc+20d');
  assert.equal(enhanced('550 5.1.1 no such user', 5), '5.1.1');
  assert.equal(enhanced('550 no such user', 5), '5.0.0');
  assert.equal(enhanced('451 5.1.1 mismatched class', 4), '4.0.0');
});

it('DKIM helpers: From domain, TXT record forms (RFC 6376 3.6.1, RFC 8463 4.2), zone line split at 255', () => {
  assert.equal(fromDomain(Buffer.from('Subject: x\r\nFrom: "A, B" <a@Example.ORG>\r\n\r\n')), 'example.org');
  assert.equal(fromDomain(Buffer.from('Subject: x\r\n\r\n')), null);
  const ed = generateKeyPairSync('ed25519').privateKey;
  const rec = txtRecord(ed);
  assert.match(rec, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const line = zoneLine('example.org', 's1', txtRecord(rsa));
  assert.match(line, /^s1\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=rsa; p=[^"]{200,}" "[^"]+" \)$/);
});
