import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fetchItemSetsSeen,
  fetchResponseName,
  ImapParseError,
  parseCommand,
  type FetchCommand,
  type FetchItem,
} from '../../src/protocols/imap/parser.js';
import { rawCommandFrom } from '../../src/protocols/imap/reader.js';

function fetch(line: string): FetchCommand {
  const cmd = parseCommand(rawCommandFrom(line));
  assert.equal(cmd.name, 'FETCH');
  return cmd as FetchCommand;
}

function items(atts: string): FetchItem[] {
  return fetch(`a FETCH 1 ${atts}`).items;
}

const whole = { part: [], text: null, fields: null };

test('FETCH: simple attributes and macros (RFC 9051 6.4.5)', () => {
  const simple = ['ENVELOPE', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'BODY', 'BODYSTRUCTURE', 'UID', 'MODSEQ'];
  for (const att of simple) {
    assert.deepEqual(items(att), [{ type: att }], att);
    assert.deepEqual(items(att.toLowerCase()), [{ type: att }], att);
    assert.deepEqual(items(`(${att})`), [{ type: att }], att);
  }
  assert.deepEqual(items('(FLAGS UID RFC822.SIZE)'), [{ type: 'FLAGS' }, { type: 'UID' }, { type: 'RFC822.SIZE' }]);
  const macros: Array<[string, string[]]> = [
    ['FAST', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']],
    ['ALL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']],
    ['FULL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']],
  ];
  for (const [macro, expected] of macros) {
    const cmd = fetch(`a FETCH 1:* ${macro.toLowerCase()}`);
    assert.equal(cmd.macro, macro);
    assert.deepEqual(
      cmd.items.map((i) => i.type),
      expected,
    );
  }
  assert.equal(fetch('a FETCH 1 FLAGS').macro, null);
});

test('FETCH: body sections and partials', () => {
  const cases: Array<[string, FetchItem]> = [
    ['BODY[]', { type: 'BODY[]', peek: false, section: whole, partial: null }],
    ['BODY.PEEK[]', { type: 'BODY[]', peek: true, section: whole, partial: null }],
    ['body.peek[header]', { type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER', fields: null }, partial: null }],
    ['BODY[TEXT]<0.2048>', { type: 'BODY[]', peek: false, section: { part: [], text: 'TEXT', fields: null }, partial: { offset: 0, length: 2048 } }],
    ['BODY[1]', { type: 'BODY[]', peek: false, section: { part: [1], text: null, fields: null }, partial: null }],
    ['BODY[1.2.3]', { type: 'BODY[]', peek: false, section: { part: [1, 2, 3], text: null, fields: null }, partial: null }],
    ['BODY[1.2.MIME]', { type: 'BODY[]', peek: false, section: { part: [1, 2], text: 'MIME', fields: null }, partial: null }],
    ['BODY[3.TEXT]', { type: 'BODY[]', peek: false, section: { part: [3], text: 'TEXT', fields: null }, partial: null }],
    ['BODY[4.2.HEADER]', { type: 'BODY[]', peek: false, section: { part: [4, 2], text: 'HEADER', fields: null }, partial: null }],
    [
      'BODY[HEADER.FIELDS (DATE FROM)]',
      { type: 'BODY[]', peek: false, section: { part: [], text: 'HEADER.FIELDS', fields: ['DATE', 'FROM'] }, partial: null },
    ],
    [
      'BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received "X Y" {4}\r\nDkim)]<10.1>',
      {
        type: 'BODY[]',
        peek: true,
        section: { part: [1, 2], text: 'HEADER.FIELDS.NOT', fields: ['Received', 'X Y', 'Dkim'] },
        partial: { offset: 10, length: 1 },
      },
    ],
    ['BODY[]<4294967295.4294967295>', { type: 'BODY[]', peek: false, section: whole, partial: { offset: 4294967295, length: 4294967295 } }],
    ['BODY[]<0.9007199254740991>', { type: 'BODY[]', peek: false, section: whole, partial: { offset: 0, length: 9007199254740991 } }],
    ['BINARY[]', { type: 'BINARY[]', peek: false, part: [], partial: null }],
    ['BINARY.PEEK[1.2]<0.100>', { type: 'BINARY[]', peek: true, part: [1, 2], partial: { offset: 0, length: 100 } }],
    ['BINARY.SIZE[3]', { type: 'BINARY.SIZE[]', part: [3] }],
    ['binary.size[]', { type: 'BINARY.SIZE[]', part: [] }],
  ];
  for (const [att, expected] of cases) {
    assert.deepEqual(items(att), [expected], att);
    assert.deepEqual(items(`(UID ${att} FLAGS)`), [{ type: 'UID' }, expected, { type: 'FLAGS' }], att);
  }
});

test('FETCH: modifiers CHANGEDSINCE and VANISHED (RFC 7162)', () => {
  const c = fetch('a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)');
  assert.equal(c.changedSince, 12345n);
  assert.equal(c.vanished, false);
  const u = fetch('a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)');
  assert.equal(u.uid, true);
  assert.equal(u.changedSince, 12345n);
  assert.equal(u.vanished, true);
  assert.deepEqual(u.sequence, { ranges: [{ start: 300, end: 500 }], saved: false });
  assert.equal(fetch('a UID FETCH 1 FLAGS (vanished changedsince 0)').vanished, true);
  assert.equal(fetch('a FETCH 1 FAST (CHANGEDSINCE 9223372036854775807)').changedSince, 9223372036854775807n);
  assert.deepEqual(fetch('a FETCH $ FLAGS').sequence, { ranges: [], saved: true });
});

test('FETCH: malformed', () => {
  const bad: Array<[string, RegExp]> = [
    ['a FETCH', /Expected SP/],
    ['a FETCH 1', /Expected SP/],
    ['a FETCH 1 ', /Expected fetch attribute/],
    ['a FETCH 1 ()', /Expected fetch attribute/],
    ['a FETCH 1 (FLAGS', /"\)"/],
    ['a FETCH 1 (FLAGS))', /should end/],
    ['a FETCH 1 FLAGS UID', /"\("/],
    ['a FETCH 1 (FLAGS  UID)', /Expected fetch attribute/],
    ['a FETCH 1 (ALL)', /Unknown fetch attribute ALL/],
    ['a FETCH 1 (FAST FLAGS)', /Unknown fetch attribute FAST/],
    ['a FETCH 1 FLAGX', /Unknown fetch attribute/],
    ['a FETCH 1 FLAGS_X', /Invalid fetch attribute/],
    ['a FETCH 1 RFC822.PEEK', /Unknown fetch attribute/],
    ['a FETCH 1 BODY.PEEK', /requires a section/],
    ['a FETCH 1 BINARY', /requires a section/],
    ['a FETCH 1 BINARY.SIZE', /requires a section/],
    ['a FETCH 1 FLAGS[]', /does not take a section/],
    ['a FETCH 1 BODY[', /closing section/],
    ['a FETCH 1 BODY[TEXT', /closing section/],
    ['a FETCH 1 BODY[FOO]', /Invalid section/],
    ['a FETCH 1 BODY[MIME]', /MIME requires a part/],
    ['a FETCH 1 BODY[0]', /Invalid section part/],
    ['a FETCH 1 BODY[01]', /Invalid section part/],
    ['a FETCH 1 BODY[1.]', /Invalid section/],
    ['a FETCH 1 BODY[.1]', /Invalid section/],
    ['a FETCH 1 BODY[1..2]', /Invalid section/],
    ['a FETCH 1 BODY[4294967296]', /Invalid section part/],
    ['a FETCH 1 BODY[TEXT.1]', /Invalid section/],
    ['a FETCH 1 BODY[HEADER.FIELDS]', /SP before header list/],
    ['a FETCH 1 BODY[HEADER.FIELDS ()]', /header field name/],
    ['a FETCH 1 BODY[HEADER.FIELDS (From]', /"\)"/],
    ['a FETCH 1 BODY[HEADER.FIELDS From]', /"\("/],
    ['a FETCH 1 BODY[HEADER.FIELDS ("")]', /Empty header field name/],
    ['a FETCH 1 BODY[HEADER (From)]', /closing section/],
    ['a FETCH 1 BODY[TEXT]<>', /partial offset/],
    ['a FETCH 1 BODY[TEXT]<0>', /"\." in partial/],
    ['a FETCH 1 BODY[TEXT]<0.0>', /non-zero/],
    ['a FETCH 1 BODY[TEXT]<0.10', /">"/],
    ['a FETCH 1 BODY[TEXT]<-1.10>', /partial offset/],
    ['a FETCH 1 BODY[]<99999999999999999999.1>', /out of range/],
    ['a FETCH 1 BINARY[TEXT]', /Invalid section part/],
    ['a FETCH 1 BINARY.SIZE[1]<0.1>', /"\)"|should end/],
    ['a FETCH 1 BODY[]x', /should end/],
    ['a FETCH 0 FLAGS', /Invalid sequence set/],
    ['a FETCH 4294967296 FLAGS', /out of range/],
    ['a FETCH 1:2:3 FLAGS', /Invalid sequence set/],
    ['a FETCH x FLAGS', /Expected sequence set/],
    ['a FETCH 1 FLAGS (CHANGEDSINCE)', /SP before mod-sequence/],
    ['a FETCH 1 FLAGS (CHANGEDSINCE x)', /mod-sequence/],
    ['a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)', /out of range/],
    ['a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)', /Duplicate/],
    ['a FETCH 1 FLAGS (FOO)', /Unknown fetch modifier/],
    ['a FETCH 1 FLAGS ()', /fetch modifier/],
    ['a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)', /VANISHED requires UID FETCH/],
    ['a UID FETCH 1 FLAGS (VANISHED)', /VANISHED requires CHANGEDSINCE/],
    ['a FETCH 1 FLAGS CHANGEDSINCE 1', /"\("/],
  ];
  for (const [line, re] of bad) {
    let err: unknown;
    try {
      parseCommand(rawCommandFrom(line));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ImapParseError, line);
    assert.equal(err.tag, 'a', line);
    assert.equal(err.command, 'FETCH', line);
    assert.match(err.message, re, line);
  }
});

test('fetchResponseName and fetchItemSetsSeen', () => {
  const cases: Array<[string, string, boolean]> = [
    ['FLAGS', 'FLAGS', false],
    ['RFC822', 'RFC822', true],
    ['RFC822.HEADER', 'RFC822.HEADER', false],
    ['RFC822.TEXT', 'RFC822.TEXT', true],
    ['BODY', 'BODY', false],
    ['BODY[]', 'BODY[]', true],
    ['BODY.PEEK[]', 'BODY[]', false],
    ['BODY.PEEK[TEXT]<100.50>', 'BODY[TEXT]<100>', false],
    ['BODY[1.2.MIME]', 'BODY[1.2.MIME]', true],
    ['BODY[HEADER.FIELDS (date "X Y" a\\b)]', 'BODY[HEADER.FIELDS (date "X Y" "a\\\\b")]', true],
    ['BINARY.PEEK[1]<0.10>', 'BINARY[1]<0>', false],
    ['BINARY[]', 'BINARY[]', true],
    ['BINARY.SIZE[2.1]', 'BINARY.SIZE[2.1]', false],
  ];
  for (const [att, name, seen] of cases) {
    const src = att.includes('a\\b') ? att.replace('a\\b', '"a\\\\b"') : att;
    const [item] = items(src);
    assert.equal(fetchResponseName(item!), name, att);
    assert.equal(fetchItemSetsSeen(item!), seen, att);
  }
});
