import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  bytesToIp,
  canonicalIp,
  cidrContains,
  CidrError,
  formatCidr,
  ipToBytes,
  parseCidr,
  parseCidrList,
} from '../../src/net/cidr.js';

test('parseCidr: accepted forms and canonical output', () => {
  const cases: Array<[string, string, 4 | 6]> = [
    ['10.0.0.0/8', '10.0.0.0/8', 4],
    ['192.168.1.7', '192.168.1.7/32', 4],
    ['0.0.0.0/0', '0.0.0.0/0', 4],
    [' 172.16.0.0/12 ', '172.16.0.0/12', 4],
    ['2001:DB8::/32', '2001:db8::/32', 6],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128', 6],
    ['::/0', '::/0', 6],
    ['::1', '::1/128', 6],
    ['fe80::/10', 'fe80::/10', 6],
    // IPv4-mapped prefixes become the IPv4 prefix they denote (RFC 4291 2.5.5.2).
    ['::ffff:10.0.0.0/104', '10.0.0.0/8', 4],
    ['::ffff:1.2.3.4', '1.2.3.4/32', 4],
    ['::ffff:0:0/96', '0.0.0.0/0', 4],
    ['::ffff:7f00:1', '127.0.0.1/32', 4],
    // Shorter than /96: stays IPv6.
    ['::/80', '::/80', 6],
  ];
  for (const [input, want, family] of cases) {
    const c = parseCidr(input);
    assert.equal(formatCidr(c), want, input);
    assert.equal(c.family, family, input);
  }
});

test('parseCidr: rejects garbage, bad prefixes, host bits and zone ids', () => {
  const bad = [
    '',
    'example.com',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/08',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    '256.0.0.0/8',
    '01.2.3.4',
    '2001:db8::/129',
    'fe80::1%eth0',
    '1:2:3:4:5:6:7:8:9',
    '10.0.0.1/8',
    '2001:db8::1/32',
  ];
  for (const s of bad) assert.throws(() => parseCidr(s), CidrError, s);
  assert.throws(() => parseCidr('10.0.0.1/8'), /did you mean 10\.0\.0\.0\/8/);
  assert.throws(() => parseCidrList(['10.0.0.0/8', 'nope']), /nope/);
});

test('bytesToIp: RFC 5952 canonical text', () => {
  const cases: Array<[string, string]> = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['192.0.2.1', '192.0.2.1'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
  assert.equal(canonicalIp('nope'), null);
  assert.equal(ipToBytes('1.2.3'), null);
  assert.throws(() => bytesToIp(new Uint8Array(5)), RangeError);
});

test('cidrContains: IPv4, IPv6 and IPv4-mapped addresses', () => {
  const list = parseCidrList(['10.0.0.0/8', '192.168.1.128/25', '2001:db8::/32', '::1']);
  const cases: Array<[string, boolean]> = [
    ['10.1.2.3', true],
    ['11.0.0.0', false],
    ['192.168.1.128', true],
    ['192.168.1.255', true],
    ['192.168.1.127', false],
    ['::ffff:10.9.9.9', true],
    ['::ffff:a09:909', true],
    ['::ffff:11.0.0.1', false],
    ['2001:db8:ffff::1', true],
    ['2001:db9::1', false],
    ['::1', true],
    ['::2', false],
    ['not-an-ip', false],
    ['', false],
  ];
  for (const [ip, want] of cases) assert.equal(cidrContains(list, ip), want, ip);

  // A mapped prefix matches plain IPv4 clients, and strings are accepted directly.
  assert.equal(cidrContains(['::ffff:10.0.0.0/104'], '10.200.0.1'), true);
  assert.equal(cidrContains(['::ffff:10.0.0.0/104'], '11.0.0.1'), false);
  // An IPv6 prefix covering ::ffff:0:0/96 covers IPv4 as well; one that does not, does not.
  assert.equal(cidrContains(['::/0'], '203.0.113.5'), true);
  assert.equal(cidrContains(['2001:db8::/32'], '203.0.113.5'), false);
  assert.equal(cidrContains([], '10.0.0.1'), false);
  // A bad string entry never matches and does not throw (validate at load with parseCidrList).
  assert.equal(cidrContains(['10.0.0.1/8', 'garbage', '10.0.0.0/8'], '10.0.0.1'), true);
  assert.equal(cidrContains(['10.0.0.1/8', 'garbage'], '10.0.0.1'), false);
});

test('cidrContains agrees with net.BlockList on random addresses', () => {
  const prefixes = [
    '10.0.0.0/8',
    '172.16.0.0/12',
    '100.64.0.0/10',
    '203.0.113.0/24',
    '2001:db8::/32',
    'fd00::/8',
    '2001:db8:abcd:12::/63',
  ];
  const parsed = parseCidrList(prefixes);
  const bl = new net.BlockList();
  for (const c of parsed) bl.addSubnet(c.network, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  const samples: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const kind = i % 3;
    const b = randomBytes(kind === 0 ? 4 : 16);
    if (kind === 0) {
      // Bias towards the prefixes' neighbourhood so that both outcomes occur.
      b[0] = [10, 172, 100, 203, 11][i % 5]!;
    } else if (kind === 1) {
      b[0] = 0x20;
      b[1] = 0x01;
      b[2] = 0x0d;
      b[3] = i % 2 ? 0xb8 : 0xb9;
      if (i % 4 === 1) {
        b[4] = 0xab;
        b[5] = 0xcd;
        b[6] = 0;
      }
    } else {
      b[0] = i % 2 ? 0xfd : 0xfc;
    }
    samples.push(bytesToIp(b));
  }
  let hits = 0;
  for (const ip of samples) {
    const want = bl.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
    assert.equal(cidrContains(parsed, ip), want, ip);
    if (want) hits++;
  }
  assert.ok(hits > 100 && hits < samples.length - 100, `both outcomes sampled (${hits})`);
});
