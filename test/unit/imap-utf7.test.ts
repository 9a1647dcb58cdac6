import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeUtf7, encodeUtf7, isValidUtf7, Utf7Error } from '../../src/lib/imap/utf7.js';

test('modified UTF-7 round trips (RFC 3501 5.1.3)', () => {
  const cases: Array<[string, string]> = [
    ['', ''],
    ['INBOX', 'INBOX'],
    ['a&b', 'a&-b'],
    ['&', '&-'],
    ['&&', '&-&-'],
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'], // the RFC's example
    ['Entwürfe', 'Entw&APw-rfe'],
    ['Gelöschte Elemente', 'Gel&APY-schte Elemente'],
    ['Отправленные', '&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-'],
    ['é', '&AOk-'],
    ['éé', '&AOkA6Q-'],
    ['a\tb', 'a&AAk-b'], // controls are encoded
    ['x\u007fy', 'x&AH8-y'],
    ['😀', '&2D3eAA-'], // surrogate pair
    ['a😀b&c', 'a&2D3eAA-b&-c'],
    ['/ ~', '/ ~'],
    ['日本語&x', '&ZeVnLIqe-&-x'],
  ];
  for (const [text, wire] of cases) {
    assert.equal(encodeUtf7(text), wire, text);
    assert.equal(decodeUtf7(wire), text, wire);
    assert.ok(isValidUtf7(wire), wire);
  }
});

test('modified UTF-7 rejects malformed input', () => {
  const bad = [
    '&', // unterminated
    '&U,BTFw', // unterminated shift
    'a&Jjo', // unterminated
    '&AGE-', // encodes printable "a"
    '&ACY-', // encodes "&" which must be "&-"
    '&AOk=-', // padding is not allowed
    '&AOk/-', // "/" is not modified BASE64
    '&A-', // 6 bits: incomplete unit
    '&AO-', // 12 bits: incomplete unit
    '&AOl-', // leftover bits not zero
    '&2D0-', // lone high surrogate
    '&3gA-', // lone low surrogate
    '&2D3YPQ-', // high surrogate followed by high surrogate
    'Entwürfe', // 8-bit must be encoded
    'a\tb', // control must be encoded
    '&!!-', // invalid base64
  ];
  for (const input of bad) {
    assert.throws(() => decodeUtf7(input), Utf7Error, JSON.stringify(input));
    assert.equal(isValidUtf7(input), false, input);
  }
  assert.throws(() => encodeUtf7('a\ud800b'), Utf7Error);
  assert.throws(() => encodeUtf7('\udc00'), Utf7Error);
});

test('modified UTF-7: random round trips', () => {
  const alphabet = ['a', '&', ' ', '~', '/', 'é', '日', '😀', '\u0001', '-', ',', '+'];
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 500; i++) {
    let s = '';
    const len = rnd(12);
    for (let k = 0; k < len; k++) s += alphabet[rnd(alphabet.length)];
    const wire = encodeUtf7(s);
    assert.match(wire, /^[\x20-\x7e]*$/);
    assert.equal(decodeUtf7(wire), s, JSON.stringify(s));
  }
});
