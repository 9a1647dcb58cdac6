import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapParseError, parseCommand, type ParseOptions, type SearchCommand, type SearchKey } from '../../src/protocols/imap/parser.js';
import { rawCommandFrom } from '../../src/protocols/imap/reader.js';
import { searchUsesModSeq, searchUsesSavedResult } from '../../src/lib/imap/search.js';

function search(line: string, options?: ParseOptions): SearchCommand {
  const cmd = parseCommand(rawCommandFrom(line), options);
  assert.equal(cmd.name, 'SEARCH');
  return cmd as SearchCommand;
}

function key(criteria: string): SearchKey {
  return search(`a SEARCH ${criteria}`).criteria;
}

function searchError(line: string | Buffer, options?: ParseOptions): ImapParseError {
  try {
    parseCommand(rawCommandFrom(line), options);
  } catch (e) {
    assert.ok(e instanceof ImapParseError, String(e));
    return e;
  }
  assert.fail(`accepted: ${line.toString()}`);
}

const seq = (start: number | '*', end: number | '*' = start) => ({ ranges: [{ start, end }], saved: false });

test('search keys: every key of RFC 9051 and RFC 3501', () => {
  const cases: Array<[string, SearchKey]> = [
    ['ALL', { type: 'all' }],
    ['ANSWERED', { type: 'flag', flag: '\\Answered', set: true }],
    ['DELETED', { type: 'flag', flag: '\\Deleted', set: true }],
    ['DRAFT', { type: 'flag', flag: '\\Draft', set: true }],
    ['FLAGGED', { type: 'flag', flag: '\\Flagged', set: true }],
    ['SEEN', { type: 'flag', flag: '\\Seen', set: true }],
    ['UNANSWERED', { type: 'flag', flag: '\\Answered', set: false }],
    ['UNDELETED', { type: 'flag', flag: '\\Deleted', set: false }],
    ['UNDRAFT', { type: 'flag', flag: '\\Draft', set: false }],
    ['UNFLAGGED', { type: 'flag', flag: '\\Flagged', set: false }],
    ['unseen', { type: 'flag', flag: '\\Seen', set: false }],
    ['NEW', { type: 'new' }],
    ['OLD', { type: 'old' }],
    ['RECENT', { type: 'recent' }],
    ['BCC x', { type: 'header', field: 'Bcc', value: 'x' }],
    ['CC "a b"', { type: 'header', field: 'Cc', value: 'a b' }],
    ['FROM {7}\r\nSmith, ', { type: 'header', field: 'From', value: 'Smith, ' }],
    ['TO ""', { type: 'header', field: 'To', value: '' }],
    ['SUBJECT "Grüße"', { type: 'header', field: 'Subject', value: 'Grüße' }],
    ['HEADER X-Spam-Flag YES', { type: 'header', field: 'X-Spam-Flag', value: 'YES' }],
    ['HEADER "Message-ID" ""', { type: 'header', field: 'Message-ID', value: '' }],
    ['BODY "hello world"', { type: 'body', value: 'hello world' }],
    ['TEXT foo]bar', { type: 'text', value: 'foo]bar' }],
    ['KEYWORD $Forwarded', { type: 'keyword', keyword: '$Forwarded', set: true }],
    ['UNKEYWORD Junk', { type: 'keyword', keyword: 'Junk', set: false }],
    ['BEFORE 1-Feb-1994', { type: 'date', field: 'internal', op: 'before', date: { year: 1994, month: 2, day: 1 } }],
    ['ON "29-feb-2024"', { type: 'date', field: 'internal', op: 'on', date: { year: 2024, month: 2, day: 29 } }],
    ['SINCE 01-DEC-2000', { type: 'date', field: 'internal', op: 'since', date: { year: 2000, month: 12, day: 1 } }],
    ['SENTBEFORE 31-Jan-2020', { type: 'date', field: 'sent', op: 'before', date: { year: 2020, month: 1, day: 31 } }],
    ['SENTON 15-Aug-1999', { type: 'date', field: 'sent', op: 'on', date: { year: 1999, month: 8, day: 15 } }],
    ['SENTSINCE 1-Jan-1970', { type: 'date', field: 'sent', op: 'since', date: { year: 1970, month: 1, day: 1 } }],
    ['LARGER 1024', { type: 'size', op: 'larger', size: 1024 }],
    ['SMALLER 0', { type: 'size', op: 'smaller', size: 0 }],
    ['LARGER 4294967296', { type: 'size', op: 'larger', size: 4294967296 }], // number64 in IMAP4rev2
    ['UID 1:*', { type: 'uid', set: seq(1, '*') }],
    ['UID $', { type: 'uid', set: { ranges: [], saved: true } }],
    ['2:4', { type: 'seq', set: seq(2, 4) }],
    ['*', { type: 'seq', set: seq('*') }],
    ['$', { type: 'seq', set: { ranges: [], saved: true } }],
    ['NOT SEEN', { type: 'not', key: { type: 'flag', flag: '\\Seen', set: true } }],
    ['OR SEEN FLAGGED', { type: 'or', left: { type: 'flag', flag: '\\Seen', set: true }, right: { type: 'flag', flag: '\\Flagged', set: true } }],
    ['(SEEN)', { type: 'flag', flag: '\\Seen', set: true }],
    ['MODSEQ 0', { type: 'modseq', modseq: 0n, entry: null }],
    ['MODSEQ 620162338', { type: 'modseq', modseq: 620162338n, entry: null }],
    ['MODSEQ "/flags/\\\\draft" all 620162338', { type: 'modseq', modseq: 620162338n, entry: { flag: '\\Draft', entryType: 'all' } }],
    ['MODSEQ "/FLAGS/$Junk" PRIV 5', { type: 'modseq', modseq: 5n, entry: { flag: '$Junk', entryType: 'priv' } }],
    ['MODSEQ "/flags/\\\\Seen" shared 9223372036854775807', { type: 'modseq', modseq: 9223372036854775807n, entry: { flag: '\\Seen', entryType: 'shared' } }],
  ];
  for (const [criteria, expected] of cases) assert.deepEqual(key(criteria), expected, criteria);
});

test('search: lists, nesting, implicit AND', () => {
  assert.deepEqual(key('FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), {
    type: 'and',
    keys: [
      { type: 'flag', flag: '\\Flagged', set: true },
      { type: 'date', field: 'internal', op: 'since', date: { year: 1994, month: 2, day: 1 } },
      { type: 'not', key: { type: 'header', field: 'From', value: 'Smith' } },
    ],
  });
  assert.deepEqual(key('OR (SEEN FLAGGED) NOT (UID 5 DRAFT)'), {
    type: 'or',
    left: { type: 'and', keys: [{ type: 'flag', flag: '\\Seen', set: true }, { type: 'flag', flag: '\\Flagged', set: true }] },
    right: { type: 'not', key: { type: 'and', keys: [{ type: 'uid', set: seq(5) }, { type: 'flag', flag: '\\Draft', set: true }] } },
  });
  assert.deepEqual(key('OR OR FROM a FROM b FROM c'), {
    type: 'or',
    left: { type: 'or', left: { type: 'header', field: 'From', value: 'a' }, right: { type: 'header', field: 'From', value: 'b' } },
    right: { type: 'header', field: 'From', value: 'c' },
  });
  assert.deepEqual(key('((((ALL))))'), { type: 'all' });
  assert.deepEqual(key('1:3 (4 5)'), {
    type: 'and',
    keys: [{ type: 'seq', set: seq(1, 3) }, { type: 'and', keys: [{ type: 'seq', set: seq(4) }, { type: 'seq', set: seq(5) }] }],
  });
  // Deep but within the limit: 200 NOTs, a 200-way OR chain.
  assert.equal(key('NOT '.repeat(200) + 'ALL').type, 'not');
  assert.equal(key('OR '.repeat(200) + 'SEEN '.repeat(201).trim()).type, 'or');
});

test('search: depth limit', () => {
  const deep = 'a SEARCH ' + 'NOT '.repeat(300) + 'ALL';
  assert.match(searchError(deep).message, /nested too deeply/);
  assert.match(searchError('a SEARCH ' + '('.repeat(5000) + 'ALL' + ')'.repeat(5000)).message, /nested too deeply/);
  assert.match(searchError('a SEARCH NOT NOT NOT ALL', { maxSearchDepth: 2 }).message, /nested too deeply/);
  assert.equal(search('a SEARCH NOT NOT ALL', { maxSearchDepth: 2 }).criteria.type, 'not');
});

test('search: RETURN options (RFC 4731, RFC 5182) and CHARSET', () => {
  const none = { min: false, max: false, all: false, count: false, save: false };
  const cases: Array<[string, SearchCommand['returnOptions'], string | null]> = [
    ['a SEARCH ALL', null, null],
    ['a SEARCH RETURN () ALL', { ...none, all: true }, null],
    ['a SEARCH RETURN (MIN MAX) ALL', { ...none, min: true, max: true }, null],
    ['a SEARCH return (count save all) ALL', { ...none, count: true, save: true, all: true }, null],
    ['a SEARCH CHARSET UTF-8 ALL', null, 'UTF-8'],
    ['a SEARCH CHARSET "us-ascii" ALL', null, 'US-ASCII'],
    ['a SEARCH RETURN (SAVE) CHARSET utf-8 ALL', { ...none, save: true }, 'UTF-8'],
  ];
  for (const [line, ret, charset] of cases) {
    const c = search(line);
    assert.deepEqual(c.returnOptions, ret, line);
    assert.equal(c.charset, charset, line);
  }
  assert.equal(search('a UID SEARCH UID 1:*').uid, true);
  // Charsets beyond UTF-8/US-ASCII go through the injected decoder; unknown ones are NO [BADCHARSET].
  const latin1: ParseOptions = {
    charsetDecoder: (cs) => (cs === 'ISO-8859-1' ? (b: Buffer) => b.toString('latin1') : null),
  };
  const c = parseCommand(
    rawCommandFrom(Buffer.concat([Buffer.from('a SEARCH CHARSET ISO-8859-1 SUBJECT {4}\r\n'), Buffer.from([0x47, 0x72, 0xfc, 0xdf])])),
    latin1,
  ) as SearchCommand;
  assert.deepEqual(c.criteria, { type: 'header', field: 'Subject', value: 'Grüß' });
  const e = searchError('a SEARCH CHARSET KOI8-R ALL', latin1);
  assert.equal(e.kind, 'NO');
  assert.equal(e.code, 'BADCHARSET');
  assert.equal(e.tag, 'a');
  assert.equal(searchError('a SEARCH CHARSET ISO-8859-1 ALL').code, 'BADCHARSET');
  // UTF-8 strings must be valid UTF-8.
  assert.match(
    searchError(Buffer.concat([Buffer.from('a SEARCH SUBJECT {1}\r\n'), Buffer.from([0xfc])])).message,
    /Invalid UTF-8/,
  );
});

test('search: malformed criteria', () => {
  const bad: Array<[string, RegExp]> = [
    ['a SEARCH', /Expected SP/],
    ['a SEARCH ', /search key/],
    ['a SEARCH ()', /search key/],
    ['a SEARCH (ALL', /"\)"/],
    ['a SEARCH ALL)', /should end/],
    ['a SEARCH ((ALL)', /"\)"/],
    ['a SEARCH ALL  SEEN', /search key/],
    ['a SEARCH BOGUS', /Unknown search key BOGUS/],
    ['a SEARCH FROM', /Expected SP/],
    ['a SEARCH HEADER Subject', /Expected SP/],
    ['a SEARCH OR SEEN', /Expected SP/],
    ['a SEARCH NOT', /Expected SP/],
    ['a SEARCH BEFORE 1-Foo-2000', /month/],
    ['a SEARCH BEFORE 32-Jan-2000', /day of month/],
    ['a SEARCH BEFORE 29-Feb-2023', /day of month/],
    ['a SEARCH BEFORE 001-Jan-2000', /day/],
    ['a SEARCH BEFORE 1-Jan-20', /year/],
    ['a SEARCH BEFORE "1-Jan-2000', /closing DQUOTE/],
    ['a SEARCH BEFORE 1-Jan-2000-', /should end/],
    ['a SEARCH LARGER x', /size/],
    ['a SEARCH LARGER -1', /size/],
    ['a SEARCH LARGER 99999999999999999999', /out of range/],
    ['a SEARCH UID', /Expected SP/],
    ['a SEARCH UID x', /UID set/],
    ['a SEARCH UID 0', /Invalid UID set/],
    ['a SEARCH UID 4294967296', /out of range/],
    ['a SEARCH 1:2:3', /Invalid sequence set/],
    ['a SEARCH 1,', /Invalid sequence set/],
    ['a SEARCH KEYWORD \\Seen', /keyword/],
    ['a SEARCH KEYWORD "x"', /keyword/],
    ['a SEARCH MODSEQ', /Expected SP/],
    ['a SEARCH MODSEQ x', /mod-sequence/],
    ['a SEARCH MODSEQ 9223372036854775808', /out of range/],
    ['a SEARCH MODSEQ "/flags/\\\\Seen" 5', /entry type/],
    ['a SEARCH MODSEQ "/flags/\\\\Seen" other 5', /entry type/],
    ['a SEARCH MODSEQ "/shared/x" all 5', /\/flags\//],
    ['a SEARCH MODSEQ "/flags/" all 5', /Invalid flag/],
    ['a SEARCH MODSEQ "/flags/a b" all 5', /Invalid flag/],
    ['a SEARCH SUBJECT "unterminated', /Unterminated/],
    ['a SEARCH SUBJECT f\u00f6o', /8-bit/],
    ['a SEARCH RETURN (BOGUS) ALL', /Unknown return option/],
    ['a SEARCH RETURN MIN ALL', /"\("/],
    ['a SEARCH RETURN (MIN)', /Expected SP/],
    ['a SEARCH CHARSET', /Expected SP/],
    ['a SEARCH CHARSET UTF-8', /Expected SP/],
    ['a SEARCH CHARSET (UTF-8) ALL', /charset/],
    ['a SEARCH ALL CHARSET UTF-8', /Unknown search key CHARSET/],
  ];
  for (const [line, re] of bad) {
    const e = searchError(line);
    assert.equal(e.tag, 'a', line);
    assert.equal(e.kind, 'BAD', line);
    assert.match(e.message, re, line);
  }
});

test('searchUsesSavedResult / searchUsesModSeq', () => {
  assert.equal(searchUsesSavedResult(key('ALL')), false);
  assert.equal(searchUsesSavedResult(key('$')), true);
  assert.equal(searchUsesSavedResult(key('OR SEEN NOT UID 1,$')), true);
  assert.equal(searchUsesModSeq(key('OR SEEN (NOT MODSEQ 5)')), true);
  assert.equal(searchUsesModSeq(key('UID 1:*')), false);
});
