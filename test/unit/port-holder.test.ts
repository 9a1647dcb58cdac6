import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  describePortHolder,
  listenerMatches,
  parseProcNetTcp,
} from '../../src/net/port-holder.js';

const linux = process.platform === 'linux' ? false : 'procfs is Linux only';

async function listen(host: string, port = 0): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;
const close = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

test('parseProcNetTcp: IPv4 and IPv6 tables in host byte order', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1493 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:84A2 0100007F:87AB 06 00000000:00000000 03:00000D50 00000000  1000        0 0 3 0000000000000000',
    'garbage line',
  ].join('\n');
  assert.deepEqual(parseProcNetTcp(tcp, 'LE'), [
    { localAddress: '0.0.0.0', localPort: 25, state: 0x0a, uid: 0, inode: 1493 },
    { localAddress: '127.0.0.1', localPort: 0x84a2, state: 0x06, uid: 1000, inode: 0 },
  ]);
  assert.equal(parseProcNetTcp(tcp, 'BE')[1]!.localAddress, '1.0.0.127');

  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000000000000:01D1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 4242 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000000000000000000001000000:03E1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0',
    '   2: 0000000000000000FFFF00000100007F:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0000000000000000 100 0 0 10 0',
    '   3: B80D0120000000000000000001000000:024B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4245 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  assert.deepEqual(
    parseProcNetTcp(tcp6, 'LE').map((e) => [e.localAddress, e.localPort, e.inode]),
    [
      ['::', 465, 4242],
      ['::1', 993, 4243],
      ['::ffff:127.0.0.1', 25, 4244],
      ['2001:db8::1', 587, 4245],
    ],
  );
});

test('listenerMatches: wildcards, families and mapped addresses', () => {
  const cases: Array<[string, string, boolean]> = [
    ['127.0.0.1', '127.0.0.1', true],
    ['127.0.0.1', '127.0.0.2', false],
    ['0.0.0.0', '127.0.0.2', true],
    ['127.0.0.1', '0.0.0.0', true],
    ['0.0.0.0', '::1', false],
    ['0.0.0.0', '::', true],
    ['::', '127.0.0.1', true],
    ['::', '::1', true],
    ['::1', '127.0.0.1', false],
    ['::1', '::', true],
    ['::ffff:127.0.0.1', '127.0.0.1', true],
    ['2001:db8::1', '2001:DB8:0::1', true],
    ['2001:db8::1', '2001:db8::2', false],
    ['127.0.0.1', 'localhost', true],
  ];
  for (const [have, want, expected] of cases) {
    assert.equal(listenerMatches(have, want), expected, `${have} vs ${want}`);
  }
});

test('describePortHolder names this process for a socket it listens on', { skip: linux }, async () => {
  const server = await listen('127.0.0.1');
  try {
    const port = portOf(server);
    const got = describePortHolder('127.0.0.1', port);
    assert.ok(got !== null, 'holder found');
    assert.match(got, new RegExp(`^pid ${process.pid} \\(.+\\)$`));
    assert.ok(got.includes('node'), got);
    // Binding the wildcard would conflict with it too; another loopback address would not.
    assert.equal(describePortHolder('0.0.0.0', port), got);
    assert.equal(describePortHolder('127.0.0.2', port), null);
  } finally {
    await close(server);
  }
});

test('describePortHolder: a dual-stack wildcard listener conflicts with IPv4 loopback', { skip: linux }, async (t) => {
  let server: net.Server;
  try {
    server = await listen('::');
  } catch {
    t.skip('no IPv6 here');
    return;
  }
  try {
    const got = describePortHolder('127.0.0.1', portOf(server));
    assert.match(got ?? '', new RegExp(`^pid ${process.pid} `));
  } finally {
    await close(server);
  }
});

test('describePortHolder: null for a free port and for nonsense', { skip: linux }, async () => {
  const server = await listen('127.0.0.1');
  const port = portOf(server);
  await close(server);
  assert.equal(describePortHolder('127.0.0.1', port), null);
  assert.equal(describePortHolder('127.0.0.1', -1), null);
});
