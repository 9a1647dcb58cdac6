import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import {
  parseProxyHeader,
  ProxyProtocolError,
  readProxyHeader,
  V2_SIGNATURE,
  type ProxyHeaderResult,
} from '../../src/net/proxy-protocol.js';

// --- helpers ----------------------------------------------------------------------------------

function v2(opts: {
  verCmd?: number;
  famProto?: number;
  addr?: Buffer;
  tlvs?: Buffer;
  length?: number;
}): Buffer {
  const addr = opts.addr ?? Buffer.alloc(0);
  const tlvs = opts.tlvs ?? Buffer.alloc(0);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(opts.length ?? addr.length + tlvs.length);
  return Buffer.concat([
    V2_SIGNATURE,
    Buffer.from([opts.verCmd ?? 0x21, opts.famProto ?? 0x11]),
    len,
    addr,
    tlvs,
  ]);
}

function inet4(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function inet6(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

// --- parseProxyHeader tables ------------------------------------------------------------------

test('parseProxyHeader: v1 headers that parse (spec 2.1)', () => {
  const cases: Array<[string, ProxyHeaderResult]> = [
    [
      'PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n',
      { remoteAddress: '192.0.2.1', remotePort: 56324, localAddress: '198.51.100.2', localPort: 25 },
    ],
    [
      'PROXY TCP6 2001:DB8:0:0::1 2001:db8::2 0 65535\r\n',
      { remoteAddress: '2001:db8::1', remotePort: 0, localAddress: '2001:db8::2', localPort: 65535 },
    ],
    [
      'PROXY TCP6 ::ffff:192.0.2.1 ::1 1 993\r\n',
      { remoteAddress: '::ffff:192.0.2.1', remotePort: 1, localAddress: '::1', localPort: 993 },
    ],
    ['PROXY UNKNOWN\r\n', { local: true }],
    ['PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n', { local: true }],
  ];
  for (const [line, want] of cases) {
    const buf = Buffer.concat([ascii(line), ascii('EHLO x\r\n')]);
    const got = parseProxyHeader(buf);
    assert.notEqual(got, 'incomplete', line);
    assert.deepEqual(got, { consumed: line.length, result: want }, line);
  }
  // The longest legal line (spec 2.1: 107 bytes including CRLF) is accepted.
  const longest =
    'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
  assert.equal(longest.length, 104);
  const unknown107 = `PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`;
  assert.equal(unknown107.length, 107);
  assert.deepEqual(parseProxyHeader(ascii(longest)), {
    consumed: 104,
    result: {
      remoteAddress: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      remotePort: 65535,
      localAddress: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      localPort: 65535,
    },
  });
  assert.deepEqual(parseProxyHeader(ascii(unknown107)), { consumed: 107, result: { local: true } });
});

test('parseProxyHeader: v1 garbage is refused', () => {
  const bad: string[] = [
    'GET / HTTP/1.0\r\n',
    'EHLO example.com\r\n',
    'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
    'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
    'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n',
    'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 ::1 5.6.7.8 1 2\r\n',
    'PROXY TCP6 1.2.3.4 ::1 1 2\r\n',
    'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\t\r\n',
    'PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n',
    'PROXY \xff',
    `PROXY UNKNOWN ${'x'.repeat(107 - 15)}\r\n`, // 108 bytes
    `PROXY UNKNOWN ${'x'.repeat(200)}`, // no CRLF within 107 bytes
    'X',
    '\r\r',
  ];
  for (const s of bad) {
    assert.throws(
      () => parseProxyHeader(ascii(s)),
      (e: unknown) => e instanceof ProxyProtocolError && e.code === 'malformed',
      JSON.stringify(s),
    );
  }
});

test('parseProxyHeader: every proper prefix of a valid header is incomplete', () => {
  const headers = [
    ascii('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n'),
    ascii('PROXY UNKNOWN\r\n'),
    v2({ addr: inet4([192, 0, 2, 1], [198, 51, 100, 2], 56324, 25) }),
    v2({ verCmd: 0x20, famProto: 0x00 }),
    v2({ famProto: 0x21, addr: inet6('2001:0db8:0000:0000:0000:0000:0000:0001', '0'.repeat(32), 1, 2) }),
  ];
  for (const h of headers) {
    assert.equal(parseProxyHeader(Buffer.alloc(0)), 'incomplete');
    for (let i = 1; i < h.length; i++) {
      assert.equal(parseProxyHeader(h.subarray(0, i)), 'incomplete', `${h.toString('hex')} cut at ${i}`);
    }
    const whole = parseProxyHeader(h);
    assert.ok(whole !== 'incomplete' && whole.consumed === h.length);
  }
});

test('parseProxyHeader: v2 headers that parse (spec 2.2)', () => {
  const cases: Array<[string, Buffer, ProxyHeaderResult]> = [
    [
      'PROXY INET STREAM',
      v2({ addr: inet4([192, 0, 2, 1], [198, 51, 100, 2], 56324, 25) }),
      { remoteAddress: '192.0.2.1', remotePort: 56324, localAddress: '198.51.100.2', localPort: 25 },
    ],
    [
      'PROXY INET6 STREAM',
      v2({
        famProto: 0x21,
        addr: inet6(
          '2001:0db8:0000:0000:0000:0000:0000:0001',
          '0000:0000:0000:0000:0000:ffff:c633:6402',
          443,
          993,
        ),
      }),
      {
        remoteAddress: '2001:db8::1',
        remotePort: 443,
        localAddress: '::ffff:198.51.100.2',
        localPort: 993,
      },
    ],
    [
      'PROXY INET STREAM with TLVs (ALPN, AUTHORITY, NOOP padding)',
      v2({
        addr: inet4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2),
        tlvs: Buffer.concat([
          tlv(0x01, ascii('smtp')),
          tlv(0x02, ascii('mx.example.com')),
          tlv(0x04, Buffer.alloc(0)),
          tlv(0x04, Buffer.alloc(5)),
        ]),
      }),
      { remoteAddress: '10.0.0.1', remotePort: 1, localAddress: '10.0.0.2', localPort: 2 },
    ],
    ['LOCAL UNSPEC', v2({ verCmd: 0x20, famProto: 0x00 }), { local: true }],
    [
      'LOCAL with an address block, which is discarded',
      v2({ verCmd: 0x20, famProto: 0x11, addr: inet4([1, 1, 1, 1], [2, 2, 2, 2], 3, 4) }),
      { local: true },
    ],
    [
      'LOCAL UNIX with a short body (family ignored for LOCAL)',
      v2({ verCmd: 0x20, famProto: 0x31, addr: Buffer.alloc(3) }),
      { local: true },
    ],
  ];
  for (const [name, header, want] of cases) {
    const got = parseProxyHeader(Buffer.concat([header, ascii('220 surplus')]));
    assert.deepEqual(got, { consumed: header.length, result: want }, name);
  }
});

test('parseProxyHeader: v2 garbage and unsupported headers are refused', () => {
  const addr4 = inet4([1, 2, 3, 4], [5, 6, 7, 8], 9, 10);
  const bad: Array<[string, Buffer, 'malformed' | 'unsupported']> = [
    ['bad signature', Buffer.concat([ascii('\r\n\r\n\x00\r\nQUIX\n'), Buffer.from([0x21, 0x11, 0, 0])]), 'malformed'],
    ['signature prefix then garbage', ascii('\r\n\r\nX'), 'malformed'],
    ['version 1 in the binary form', v2({ verCmd: 0x11, addr: addr4 }), 'malformed'],
    ['version 3', v2({ verCmd: 0x31, addr: addr4 }), 'malformed'],
    ['command 2', v2({ verCmd: 0x22, addr: addr4 }), 'malformed'],
    ['family 4', v2({ famProto: 0x41, addr: addr4 }), 'malformed'],
    ['protocol 3', v2({ famProto: 0x13, addr: addr4 }), 'malformed'],
    ['INET length shorter than the address', v2({ addr: addr4.subarray(0, 11) }), 'malformed'],
    ['INET6 with an INET-sized block', v2({ famProto: 0x21, addr: addr4 }), 'malformed'],
    ['truncated TLV header', v2({ addr: addr4, tlvs: Buffer.from([0x01, 0x00]) }), 'malformed'],
    ['TLV longer than the header', v2({ addr: addr4, tlvs: Buffer.from([0x01, 0x00, 0x09, 0x41]) }), 'malformed'],
    ['PROXY UNSPEC', v2({ famProto: 0x00 }), 'unsupported'],
    ['PROXY INET DGRAM', v2({ famProto: 0x12, addr: addr4 }), 'unsupported'],
    ['PROXY INET UNSPEC protocol', v2({ famProto: 0x10, addr: addr4 }), 'unsupported'],
    ['PROXY UNIX STREAM', v2({ famProto: 0x31, addr: Buffer.alloc(216) }), 'unsupported'],
  ];
  for (const [name, buf, code] of bad) {
    assert.throws(
      () => parseProxyHeader(buf),
      (e: unknown) => e instanceof ProxyProtocolError && e.code === code,
      name,
    );
  }
  // The length is checked before waiting for the bytes it announces.
  const short = v2({ length: 4 }).subarray(0, 16);
  assert.throws(() => parseProxyHeader(short), ProxyProtocolError);
});

// --- readProxyHeader over real sockets --------------------------------------------------------

/**
 * Start a server whose connection handler calls readProxyHeader, then collects whatever the
 * next consumer reads. `send` gets a connected client socket.
 */
async function exchange(
  send: (client: net.Socket) => Promise<void> | void,
  timeoutMs = 2000,
): Promise<{ header: ProxyHeaderResult | ProxyProtocolError; rest: string }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const result = new Promise<{ header: ProxyHeaderResult | ProxyProtocolError; rest: string }>(
    (resolve) => {
      server.once('connection', (sock) => {
        sock.on('error', () => {});
        readProxyHeader(sock, { timeoutMs }).then(
          (header) => {
            const parts: Buffer[] = [];
            sock.on('data', (d: Buffer) => parts.push(d));
            sock.on('end', () => {
              resolve({ header, rest: Buffer.concat(parts).toString('latin1') });
              sock.end();
            });
          },
          (err: ProxyProtocolError) => {
            resolve({ header: err, rest: '' });
            sock.destroy();
          },
        );
      });
    },
  );
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  await send(client);
  const out = await result;
  client.destroy();
  server.close();
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('readProxyHeader: v1 header and payload in one write; payload left for the next reader', async () => {
  const { header, rest } = await exchange((c) => {
    c.end('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO client.example\r\nQUIT\r\n');
  });
  assert.deepEqual(header, {
    remoteAddress: '192.0.2.1',
    remotePort: 56324,
    localAddress: '198.51.100.2',
    localPort: 25,
  });
  assert.equal(rest, 'EHLO client.example\r\nQUIT\r\n');
});

test('readProxyHeader: v2 header dribbled one byte at a time, then payload', async () => {
  const h = v2({
    addr: inet4([203, 0, 113, 9], [192, 0, 2, 25], 40000, 587),
    tlvs: tlv(0x04, Buffer.alloc(10)),
  });
  const payload = Buffer.concat([h, ascii('EHLO a\r\n')]);
  const { header, rest } = await exchange(async (c) => {
    c.setNoDelay(true);
    for (let i = 0; i < payload.length; i++) {
      c.write(payload.subarray(i, i + 1));
      if (i < h.length + 2) await sleep(1);
    }
    c.end();
  });
  assert.deepEqual(header, {
    remoteAddress: '203.0.113.9',
    remotePort: 40000,
    localAddress: '192.0.2.25',
    localPort: 587,
  });
  assert.equal(rest, 'EHLO a\r\n');
});

test('readProxyHeader: header alone, then data in a later packet', async () => {
  const { header, rest } = await exchange(async (c) => {
    c.write('PROXY UNKNOWN\r\n');
    await sleep(30);
    c.end('later');
  });
  assert.deepEqual(header, { local: true });
  assert.equal(rest, 'later');
});

test('readProxyHeader: garbage, early close and silence are typed errors', async () => {
  const garbage = await exchange((c) => {
    c.write('EHLO i.am.not.a.proxy\r\n');
  });
  assert.ok(garbage.header instanceof ProxyProtocolError);
  assert.equal(garbage.header.code, 'malformed');

  const closed = await exchange((c) => {
    c.end('PROXY TCP4 1.2.3.4');
  });
  assert.ok(closed.header instanceof ProxyProtocolError);
  assert.equal(closed.header.code, 'closed');

  const t0 = Date.now();
  const silent = await exchange(() => {}, 150);
  assert.ok(silent.header instanceof ProxyProtocolError);
  assert.equal(silent.header.code, 'timeout');
  assert.ok(Date.now() - t0 >= 140);

  const gone = new net.Socket();
  gone.destroy();
  await assert.rejects(readProxyHeader(gone, { timeoutMs: 5000 }), (e: unknown) => {
    return e instanceof ProxyProtocolError && e.code === 'closed';
  });

  const tooLong = await exchange((c) => {
    c.write(`PROXY TCP4 ${'1'.repeat(150)}`);
  });
  assert.ok(tooLong.header instanceof ProxyProtocolError);
  assert.equal(tooLong.header.code, 'malformed');
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test(
  'readProxyHeader: a ClientHello sent in the same packet as the header reaches a TLSSocket',
  { skip: haveOpenssl() ? false : 'openssl not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-pp-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
          '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
        { stdio: 'ignore' },
      );
      const key = readFileSync(join(dir, 'key.pem'));
      const cert = readFileSync(join(dir, 'cert.pem'));
      const server = net.createServer((raw) => {
        raw.on('error', () => {});
        void readProxyHeader(raw, { timeoutMs: 2000 }).then((h) => {
          const secure = new tls.TLSSocket(raw, { isServer: true, key, cert });
          secure.on('error', () => {});
          secure.end(`hello ${'remoteAddress' in h ? h.remoteAddress : 'local'}\n`);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const raw = net.connect(port, '127.0.0.1');
      await once(raw, 'connect');
      // A stream in front of the socket that prepends the PROXY header to the first write, so
      // that the header and the ClientHello go out in one write (as a real proxy sends them).
      let first = true;
      const front = new Duplex({
        write(chunk: Buffer, _enc, cb) {
          const data = first ? Buffer.concat([ascii('PROXY TCP4 198.51.100.77 192.0.2.1 5555 465\r\n'), chunk]) : chunk;
          first = false;
          raw.write(data, cb);
        },
        read() {
          raw.resume();
        },
        final(cb) {
          raw.end(cb);
        },
      });
      raw.on('data', (d: Buffer) => {
        if (!front.push(d)) raw.pause();
      });
      raw.on('end', () => front.push(null));
      const secure = tls.connect({ socket: front, rejectUnauthorized: false, servername: 'localhost' });
      let text = '';
      secure.setEncoding('utf8');
      secure.on('data', (d: string) => (text += d));
      await once(secure, 'end');
      assert.equal(text, 'hello 198.51.100.77\n');
      secure.destroy();
      server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
