import { it } from 'node:test';
import assert from 'node:assert/strict';
import { scanLineEndings, toCrlf } from '../../src/protocols/smtp/server.js';
import { receivedHeader, rfc5322Date } from '../../src/protocols/smtp/received.js';

it('finds bare LF and bare CR, also across chunk boundaries', () => {
  const cases: [string[], boolean][] = [
    [['a\r\nb\r\n'], false],
    [['a\nb\r\n'], true],
    [['a\rb\r\n'], true],
    [['a\r', '\nb\r\n'], false],
    [['a\r', 'b\r\n'], true],
    [['\n.\n'], true],
    [['\r\n.\r\n'], false],
  ];
  for (const [chunks, bare] of cases) {
    let prev = false;
    let found = false;
    for (const c of chunks) {
      const r = scanLineEndings(Buffer.from(c), prev);
      found ||= r.bare;
      prev = r.endsWithCR;
    }
    assert.equal(found || prev, bare, JSON.stringify(chunks));
  }
});

it('normalises bare line endings to CRLF when configured to', () => {
  assert.equal(toCrlf(Buffer.from('a\nb\rc\r\nd')).toString(), 'a\r\nb\r\nc\r\nd');
});

it('formats Received per RFC 5321 4.4 and refuses to echo unsafe HELO names', () => {
  const d = new Date(Date.UTC(2026, 10, 30, 9, 5, 7));
  assert.equal(rfc5322Date(d), 'Mon, 30 Nov 2026 09:05:07 +0000');
  const h = receivedHeader({ helo: 'evil\r\nX-Injected: 1', remoteAddress: '2001:db8::1', hostname: 'mx.example.org', protocol: 'ESMTPSA', tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, id: 'abc', recipient: 'a@example.org', date: d });
  assert.equal(h, 'Received: from unknown ([IPv6:2001:db8::1])\r\n\tby mx.example.org (Postern) with ESMTPSA\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n\tid abc\r\n\tfor <a@example.org>;\r\n\tMon, 30 Nov 2026 09:05:07 +0000\r\n');
});
