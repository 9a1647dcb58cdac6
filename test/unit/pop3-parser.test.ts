import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, MessageEncoder, decodeSaslPlain, parseCommand, uniqueId, MAX_LINE_OCTETS, type Command } from '../../src/protocols/pop3/parser.js';

test('parseCommand: valid commands (RFC 1939, 2449, 2595, 5034)', () => {
  const cases: Array<[string, Command]> = [
    ['USER alice@example.org', { name: 'USER', user: 'alice@example.org' }],
    ['user alice', { name: 'USER', user: 'alice' }],
    ['PASS secret with spaces', { name: 'PASS', pass: 'secret with spaces' }],
    ['STAT', { name: 'STAT' }],
    ['list', { name: 'LIST', msg: null }],
    ['LIST 3', { name: 'LIST', msg: 3 }],
    ['UIDL', { name: 'UIDL', msg: null }],
    ['UIDL 12', { name: 'UIDL', msg: 12 }],
    ['RETR 1', { name: 'RETR', msg: 1 }],
    ['TOP 2 0', { name: 'TOP', msg: 2, lines: 0 }],
    ['TOP 2 10', { name: 'TOP', msg: 2, lines: 10 }],
    ['DELE 7', { name: 'DELE', msg: 7 }],
    ['NOOP', { name: 'NOOP' }],
    ['RSET', { name: 'RSET' }],
    ['QUIT', { name: 'QUIT' }],
    ['CAPA', { name: 'CAPA' }],
    ['STLS', { name: 'STLS' }],
    ['AUTH', { name: 'AUTH', mechanism: null, initial: null }],
    ['AUTH plain', { name: 'AUTH', mechanism: 'PLAIN', initial: null }],
    ['AUTH PLAIN AGFsaWNlAHNlY3JldA==', { name: 'AUTH', mechanism: 'PLAIN', initial: 'AGFsaWNlAHNlY3JldA==' }],
    ['AUTH PLAIN =', { name: 'AUTH', mechanism: 'PLAIN', initial: '=' }],
    ['APOP mrose c4c9334bac560ecc979e58001b3e22fb', { name: 'APOP' }],
  ];
  for (const [line, want] of cases) assert.deepEqual(parseCommand(line), { ok: true, command: want }, line);
});

test('parseCommand: malformed input is a syntax or unknown error, never a throw', () => {
  const syntax = ['RETR', 'RETR 0', 'RETR -1', 'RETR +1', 'RETR 1a', 'RETR 1 2', 'RETR  1', 'LIST 0', 'LIST x', 'TOP 1', 'TOP 1 -1', 'TOP a 1', 'DELE', 'STAT now', 'QUIT now', 'USER', 'USER a b', 'PASS', 'AUTH PLAIN abc$', 'AUTH PL@IN', 'RETR 99999999999', 'NOOP ', 'USER '];
  for (const line of syntax) {
    const r = parseCommand(line);
    assert.equal(r.ok, false, line);
    assert.equal(!r.ok && r.error, 'syntax', line);
  }
  for (const line of ['', ' ', 'HELO x', 'XYZZY', '\u0000\u0001', 'RETR\t1', 'STLSX']) {
    const r = parseCommand(line);
    assert.equal(r.ok, false, JSON.stringify(line));
    assert.equal(!r.ok && r.error, 'unknown', JSON.stringify(line));
  }
});

test('LineSplitter: CRLF and bare LF framing across chunks', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(Buffer.from('US')), []);
  assert.deepEqual(s.push(Buffer.from('ER a\r')), []);
  assert.deepEqual(s.push(Buffer.from('\nNOOP\nST')), [
    { kind: 'line', line: 'USER a' },
    { kind: 'line', line: 'NOOP' },
  ]);
  assert.deepEqual(s.push(Buffer.from('AT\r\n')), [{ kind: 'line', line: 'STAT' }]);
  s.push(Buffer.from('PARTIAL'));
  s.reset();
  assert.deepEqual(s.push(Buffer.from('QUIT\r\n')), [{ kind: 'line', line: 'QUIT' }]);
});

test('LineSplitter: a too-long line yields one too-long item, then framing recovers', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.push(Buffer.from('12345678901234\r\n')), [{ kind: 'line', line: '12345678901234' }]); // exactly 16 octets
  const out = s.push(Buffer.from('123456789012345\r\n'));
  assert.deepEqual(out, [{ kind: 'too-long' }]);
  const big = [...s.push(Buffer.alloc(100, 0x41)), ...s.push(Buffer.alloc(100, 0x41)), ...s.push(Buffer.from('\r\nNOOP\r\n'))];
  assert.deepEqual(big, [{ kind: 'too-long' }, { kind: 'line', line: 'NOOP' }]);
  assert.ok(MAX_LINE_OCTETS >= 255, 'RFC 2449 4: at least 255 octets');
});

function encodeAll(parts: string[], lines: number | null = null): string {
  const enc = new MessageEncoder(lines);
  const out = parts.map((p) => enc.encode(Buffer.from(p, 'latin1')).toString('latin1')).join('');
  return out + enc.finish().toString('latin1');
}

test('MessageEncoder: dot-stuffing, CRLF, terminator, any chunking', () => {
  const msg = 'Subject: x\r\n\r\n.leading dot\r\n..two\r\nmid.dle\r\n.\r\nend\r\n';
  const want = 'Subject: x\r\n\r\n..leading dot\r\n...two\r\nmid.dle\r\n..\r\nend\r\n.\r\n';
  assert.equal(encodeAll([msg]), want);
  // Every split point, including between CR and LF and right before a dot.
  for (let i = 0; i <= msg.length; i++) assert.equal(encodeAll([msg.slice(0, i), msg.slice(i)]), want, `split at ${i}`);
  assert.equal(encodeAll(msg.split('')), want);
  // No final CRLF: one is added before the terminator. Bare LF becomes CRLF.
  assert.equal(encodeAll(['A: b\r\n\r\nbody']), 'A: b\r\n\r\nbody\r\n.\r\n');
  assert.equal(encodeAll(['A: b\n\n.x\n']), 'A: b\r\n\r\n..x\r\n.\r\n');
  assert.equal(encodeAll([]), '.\r\n');
});

test('MessageEncoder: TOP sends the header, the blank line and n body lines', () => {
  const msg = 'A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n';
  assert.equal(encodeAll([msg], 0), 'A: 1\r\nB: 2\r\n\r\n.\r\n');
  assert.equal(encodeAll([msg], 2), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n');
  assert.equal(encodeAll([msg], 10), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n');
  for (let i = 0; i <= msg.length; i++) assert.equal(encodeAll([msg.slice(0, i), msg.slice(i)], 1), 'A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n', `split at ${i}`);
  const enc = new MessageEncoder(1);
  enc.encode(Buffer.from(msg));
  assert.equal(enc.complete, true);
  // A header-only message: everything, then the terminator.
  assert.equal(encodeAll(['A: 1\r\n'], 3), 'A: 1\r\n.\r\n');
});

test('decodeSaslPlain (RFC 4616) and uniqueId (RFC 1939 7)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.deepEqual(decodeSaslPlain(b64('\0alice@x.org\0pw pw')), { authzid: '', user: 'alice@x.org', pass: 'pw pw' });
  assert.deepEqual(decodeSaslPlain(b64('alice\0alice\0pw')), { authzid: 'alice', user: 'alice', pass: 'pw' });
  for (const bad of ['=', '', b64('alice\0pw'), b64('\0\0pw'), b64('\0a\0'), 'not base64!', 'abc']) assert.equal(decodeSaslPlain(bad), null, bad);
  const id = uniqueId(1700000000, 42);
  assert.match(id, /^[\x21-\x7e]{1,70}$/);
  assert.equal(id, uniqueId(1700000000, 42));
  assert.notEqual(id, uniqueId(1700000001, 42));
});
