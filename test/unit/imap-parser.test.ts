import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ImapParseError,
  KNOWN_COMMANDS,
  mailboxNameProblem,
  parseCommand,
  type Command,
  type ParseOptions,
} from '../../src/protocols/imap/parser.js';
import { rawCommandFrom } from '../../src/protocols/imap/reader.js';

function parse(line: string | Buffer, options?: ParseOptions): Command {
  return parseCommand(rawCommandFrom(line), options);
}

/** Strip the tag so tables stay short. */
function args(line: string | Buffer, options?: ParseOptions): Record<string, unknown> {
  const { tag: _tag, ...rest } = parse(line, options) as Command & Record<string, unknown>;
  return rest;
}

function parseError(line: string | Buffer, options?: ParseOptions): ImapParseError {
  try {
    parse(line, options);
  } catch (e) {
    assert.ok(e instanceof ImapParseError, `expected ImapParseError for ${JSON.stringify(line.toString())}, got ${e}`);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(line.toString())} to be rejected`);
}

test('no-argument commands, case-insensitive names', () => {
  const names = ['CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'NAMESPACE', 'IDLE', 'CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE'];
  for (const n of names) {
    assert.equal(parse(`a1 ${n}`).name, n);
    assert.equal(parse(`a1 ${n.toLowerCase()}`).name, n);
    const err = parseError(`a1 ${n} extra`);
    assert.equal(err.tag, 'a1');
    assert.equal(err.kind, 'BAD');
  }
  assert.deepEqual(parse('x EXPUNGE'), { name: 'EXPUNGE', tag: 'x', uid: false, uidSet: null });
});

test('tags (RFC 9051 section 9: 1*<ASTRING-CHAR except "+">)', () => {
  const good = ['A001', 'a', '1', 'tag]x', '$tag', "a'b", 'a.b-c_d', '~x'];
  for (const tag of good) assert.equal(parse(`${tag} NOOP`).tag, tag, tag);
  // Unreadable tags: the server must answer "* BAD".
  const bad = ['+ NOOP', '* NOOP', '(a NOOP', '"a" NOOP', 'a+b NOOP', 'a{1 NOOP', 'a%b NOOP', 'a\\b NOOP', '\u00e9 NOOP', ' NOOP'];
  for (const line of bad) assert.equal(parseError(line).tag, undefined, line);
  assert.equal(parseError('').message, 'Empty command line');
  assert.equal(parseError('a1').tag, 'a1');
  assert.equal(parseError('a1 ').tag, 'a1');
  assert.equal(parseError('a1  NOOP').tag, 'a1'); // double SP
  const unknown = parseError('a1 FROB x');
  assert.equal(unknown.tag, 'a1');
  assert.match(unknown.message, /Unknown command FROB/);
  assert.match(parseError('a1 UID LOGIN x y').message, /Unknown UID command/);
  assert.match(parseError('a1 UID').message, /Expected SP/);
});

test('LOGIN: astring forms (atom, quoted with escapes, literals, UTF-8)', () => {
  const cases: Array<[string, string, string]> = [
    ['a LOGIN bob secret', 'bob', 'secret'],
    ['a LOGIN "bob" "sec ret"', 'bob', 'sec ret'],
    ['a LOGIN bob "a\\"b\\\\c"', 'bob', 'a"b\\c'],
    ['a LOGIN {3}\r\nbob {6}\r\nsecret', 'bob', 'secret'],
    ['a LOGIN {3+}\r\nbob "x"', 'bob', 'x'],
    ['a LOGIN "jörg" "pässwörd"', 'jörg', 'pässwörd'],
    ['a LOGIN bob ""', 'bob', ''],
    ['a LOGIN bob {0}\r\n', 'bob', ''],
    ['a LOGIN user]x p]w', 'user]x', 'p]w'], // "]" is an ASTRING-CHAR
    ['a LOGIN bob {4}\r\n\u00e9\u00e9', 'bob', 'éé'],
  ];
  for (const [line, username, password] of cases) {
    assert.deepEqual(args(line), { name: 'LOGIN', username, password }, line);
  }
});

test('LOGIN: malformed strings', () => {
  const cases: Array<[string, RegExp]> = [
    ['a LOGIN bob "secret', /Unterminated quoted string/],
    ['a LOGIN bob "sec\\ret"', /Invalid escape/],
    ['a LOGIN bob', /Expected SP/],
    ['a LOGIN bob pass extra', /should end/],
    ['a LOGIN b\u00f6b pass', /8-bit octet/],
    ['a LOGIN (bob) pass', /Expected user name/],
    ['a LOGIN bob pa%ss', /should end/],
    ['a LOGIN bob pa*ss', /should end/],
    ['a LOGIN bob {3}\r\nab\u0000', /NUL octet/],
    ['a LOGIN bob NIL\u0001', /should end/],
  ];
  for (const [line, re] of cases) {
    const e = parseError(line);
    assert.equal(e.tag, 'a');
    assert.match(e.message, re, line);
  }
  // Invalid UTF-8 in a quoted string, bare CR in a line.
  assert.match(parseError(Buffer.from('a LOGIN bob "\xff"', 'latin1')).message, /Invalid UTF-8/);
  assert.match(parseError(Buffer.from('a LOGIN bob "a\rb"', 'latin1')).message, /Invalid octet 0x0d/);
  assert.match(parseError(Buffer.from('a LOGIN bob "a\x00b"', 'latin1')).message, /Invalid octet 0x00/);
});

test('AUTHENTICATE with SASL-IR (RFC 4959)', () => {
  assert.deepEqual(args('a AUTHENTICATE plain'), { name: 'AUTHENTICATE', mechanism: 'PLAIN', initialResponse: null });
  assert.deepEqual(args('a AUTHENTICATE PLAIN ='), {
    name: 'AUTHENTICATE',
    mechanism: 'PLAIN',
    initialResponse: Buffer.alloc(0),
  });
  assert.deepEqual(args('a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ='), {
    name: 'AUTHENTICATE',
    mechanism: 'PLAIN',
    initialResponse: Buffer.from('\0bob\0secret'),
  });
  assert.equal((args('a AUTHENTICATE SCRAM-SHA-256 biws') as { mechanism: string }).mechanism, 'SCRAM-SHA-256');
  for (const line of ['a AUTHENTICATE', 'a AUTHENTICATE PLAIN abc', 'a AUTHENTICATE PLAIN ab=c', 'a AUTHENTICATE PLAIN a===', 'a AUTHENTICATE PLAIN "AGJv"', 'a AUTHENTICATE PLAIN AGJv AGJv']) {
    assert.equal(parseError(line).tag, 'a', line);
  }
});

test('ENABLE, ID, COMPRESS', () => {
  assert.deepEqual(args('a ENABLE condstore utf8=accept QRESYNC'), {
    name: 'ENABLE',
    capabilities: ['CONDSTORE', 'UTF8=ACCEPT', 'QRESYNC'],
  });
  assert.deepEqual(args('a ID NIL'), { name: 'ID', params: null });
  assert.deepEqual(args('a ID nil'), { name: 'ID', params: null });
  assert.deepEqual(args('a ID ()'), { name: 'ID', params: [] });
  assert.deepEqual(args('a ID ("name" "Thunderbird" "version" "115.0" "os" NIL)'), {
    name: 'ID',
    params: [
      ['name', 'Thunderbird'],
      ['version', '115.0'],
      ['os', null],
    ],
  });
  assert.deepEqual(args('a ID ({4}\r\nname {2}\r\nTB)'), { name: 'ID', params: [['name', 'TB']] });
  assert.deepEqual(args('a COMPRESS deflate'), { name: 'COMPRESS', algorithm: 'DEFLATE' });
  const badLines = [
    'a ENABLE',
    'a ENABLE ',
    'a ID',
    'a ID (name "x")', // field must be a string
    'a ID ("name")',
    'a ID ("name" "x"',
    'a ID NILX',
    `a ID ("${'f'.repeat(31)}" "x")`,
    `a ID ("f" "${'v'.repeat(1025)}")`,
    `a ID (${Array.from({ length: 31 }, (_, i) => `"f${i}" "v"`).join(' ')})`,
    'a COMPRESS',
    'a COMPRESS DEFLATE X',
  ];
  for (const line of badLines) assert.equal(parseError(line).tag, 'a', line);
});

test('SELECT / EXAMINE with CONDSTORE and QRESYNC (RFC 7162)', () => {
  assert.deepEqual(args('a SELECT inbox'), { name: 'SELECT', mailbox: 'INBOX', condstore: false, qresync: null });
  assert.deepEqual(args('a EXAMINE "Sent Items" (CONDSTORE)'), {
    name: 'EXAMINE',
    mailbox: 'Sent Items',
    condstore: true,
    qresync: null,
  });
  assert.deepEqual(args('a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))'), {
    name: 'SELECT',
    mailbox: 'INBOX',
    condstore: false,
    qresync: {
      uidValidity: 67890007,
      modSeq: 20050715194045000n,
      knownUids: [
        [41, 41],
        [43, 211],
        [214, 541],
      ],
      seqMatch: null,
    },
  });
  const q = args('a SELECT INBOX (CONDSTORE QRESYNC (1 9223372036854775807 1:100 (1,5 10,50)))') as {
    qresync: unknown;
  };
  assert.deepEqual(q.qresync, {
    uidValidity: 1,
    modSeq: 9223372036854775807n,
    knownUids: [[1, 100]],
    seqMatch: {
      seqs: [
        [1, 1],
        [5, 5],
      ],
      uids: [
        [10, 10],
        [50, 50],
      ],
    },
  });
  assert.deepEqual((args('a SELECT INBOX (QRESYNC (1 2 (1 10)))') as { qresync: unknown }).qresync, {
    uidValidity: 1,
    modSeq: 2n,
    knownUids: null,
    seqMatch: { seqs: [[1, 1]], uids: [[10, 10]] },
  });
  const badLines = [
    'a SELECT',
    'a SELECT INBOX ()',
    'a SELECT INBOX (FOO)',
    'a SELECT INBOX (CONDSTORE CONDSTORE)',
    'a SELECT INBOX (CONDSTORE',
    'a SELECT INBOX (QRESYNC)',
    'a SELECT INBOX (QRESYNC (0 1))', // uidvalidity is nz-number
    'a SELECT INBOX (QRESYNC (1 0))', // mod-sequence-value is >= 1
    'a SELECT INBOX (QRESYNC (4294967296 1))',
    'a SELECT INBOX (QRESYNC (1 9223372036854775808))', // > 2^63-1
    'a SELECT INBOX (QRESYNC (1 2 1:*))', // * not allowed in known-uids
    'a SELECT INBOX (QRESYNC (1 2 $))',
    'a SELECT INBOX (QRESYNC (1 2 1:5 (1:2)))',
    'a SELECT INBOX (QRESYNC (1 2 1:5 ))',
    'a SELECT INBOX (QRESYNC (1 2 1:5(1 2)))',
    'a SELECT INBOX extra',
  ];
  for (const line of badLines) assert.equal(parseError(line).tag, 'a', line);
});

test('mailbox names: INBOX folding, quoting, literals, UTF-8 and modified UTF-7', () => {
  const cases: Array<[string, string]> = [
    ['a DELETE inbox', 'INBOX'],
    ['a DELETE "InBoX"', 'INBOX'],
    ['a DELETE {5}\r\niNbOx', 'INBOX'],
    ['a DELETE INBOX.Sub', 'INBOX.Sub'],
    ['a DELETE inbox/sub', 'inbox/sub'],
    ['a DELETE "Entwürfe"', 'Entwürfe'],
    ['a DELETE Entw&APw-rfe', 'Entw&APw-rfe'], // not decoded unless asked
    ['a DELETE ""', ''],
    ['a DELETE Folder]x', 'Folder]x'],
  ];
  for (const [line, mailbox] of cases) assert.equal((args(line) as { mailbox: string }).mailbox, mailbox, line);
  const utf7 = { utf7Mailboxes: true };
  assert.equal((args('a DELETE Entw&APw-rfe', utf7) as { mailbox: string }).mailbox, 'Entwürfe');
  assert.equal((args('a SUBSCRIBE "a&-b"', utf7) as { mailbox: string }).mailbox, 'a&b');
  assert.match(parseError('a DELETE "&AGE-"', utf7).message, /Invalid mailbox name/);
  assert.match(parseError('a DELETE "Entwürfe"', utf7).message, /Invalid mailbox name/);
  assert.deepEqual(args('a RENAME "Old Box" New/Box'), { name: 'RENAME', from: 'Old Box', to: 'New/Box' });
  assert.deepEqual(args('a SUBSCRIBE x'), { name: 'SUBSCRIBE', mailbox: 'x' });
  assert.deepEqual(args('a UNSUBSCRIBE x'), { name: 'UNSUBSCRIBE', mailbox: 'x' });
  for (const line of ['a DELETE', 'a DELETE a b', 'a RENAME a', 'a DELETE a*', 'a DELETE %', 'a DELETE (x)', 'a DELETE {2}\r\na\u0000']) {
    assert.equal(parseError(line).tag, 'a', line);
  }
  assert.match(parseError(Buffer.from('a DELETE {1}\r\n\xff', 'latin1')).message, /Invalid UTF-8/);
});

test('CREATE with USE (RFC 6154)', () => {
  assert.deepEqual(args('a CREATE foo'), { name: 'CREATE', mailbox: 'foo', specialUse: [] });
  assert.deepEqual(args('a CREATE MyDrafts (USE (\\drafts))'), { name: 'CREATE', mailbox: 'MyDrafts', specialUse: ['\\Drafts'] });
  assert.deepEqual(args('a CREATE x (USE (\\Sent \\Archive \\X-Custom))'), {
    name: 'CREATE',
    mailbox: 'x',
    specialUse: ['\\Sent', '\\Archive', '\\X-Custom'],
  });
  assert.deepEqual(args('a CREATE x (USE ())'), { name: 'CREATE', mailbox: 'x', specialUse: [] });
  for (const line of ['a CREATE', 'a CREATE x ()', 'a CREATE x (USE)', 'a CREATE x (USE \\Sent)', 'a CREATE x (USE (Sent))', 'a CREATE x (FOO (\\Sent))', 'a CREATE x (USE (\\Sent) USE (\\Trash))']) {
    assert.equal(parseError(line).tag, 'a', line);
  }
});

test('LIST: basic and extended (RFC 9051 6.3.9, RFC 5258, RFC 5819, RFC 6154)', () => {
  const none = { subscribed: false, remote: false, recursiveMatch: false, specialUse: false };
  const noReturn = { subscribed: false, children: false, specialUse: false, status: null };
  assert.deepEqual(args('a LIST "" *'), {
    name: 'LIST',
    reference: '',
    patterns: ['*'],
    selectOptions: none,
    returnOptions: noReturn,
    extended: false,
  });
  assert.deepEqual(args('a LIST ~/Mail/ %/x*'), {
    name: 'LIST',
    reference: '~/Mail/',
    patterns: ['%/x*'],
    selectOptions: none,
    returnOptions: noReturn,
    extended: false,
  });
  assert.deepEqual((args('a LIST "" ""') as { patterns: string[] }).patterns, ['']);
  assert.deepEqual((args('a LIST "" inbox') as { patterns: string[] }).patterns, ['inbox']);
  assert.deepEqual((args('a LIST "" foo]bar') as { patterns: string[] }).patterns, ['foo]bar']);
  assert.deepEqual((args('a LIST "" {3}\r\na*b') as { patterns: string[] }).patterns, ['a*b']);
  assert.deepEqual(args('a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" %/foo) RETURN (CHILDREN STATUS (MESSAGES SIZE))'), {
    name: 'LIST',
    reference: '',
    patterns: ['INBOX', '%/foo'],
    selectOptions: { ...none, subscribed: true, recursiveMatch: true },
    returnOptions: { ...noReturn, children: true, status: ['MESSAGES', 'SIZE'] },
    extended: true,
  });
  assert.deepEqual(args('a list (special-use remote) "" % return (special-use subscribed)'), {
    name: 'LIST',
    reference: '',
    patterns: ['%'],
    selectOptions: { ...none, specialUse: true, remote: true },
    returnOptions: { ...noReturn, specialUse: true, subscribed: true },
    extended: true,
  });
  assert.equal((args('a LIST () "" %') as { extended: boolean }).extended, true);
  assert.equal((args('a LIST "" % RETURN ()') as { extended: boolean }).extended, true);
  assert.deepEqual(
    (args('a LIST "" "*" RETURN (STATUS (UIDNEXT UIDVALIDITY UNSEEN DELETED RECENT HIGHESTMODSEQ APPENDLIMIT MESSAGES))') as {
      returnOptions: { status: string[] };
    }).returnOptions.status,
    ['UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'RECENT', 'HIGHESTMODSEQ', 'APPENDLIMIT', 'MESSAGES'],
  );
  assert.deepEqual(
    (args('a LIST "" &ZeVnLIqe-/*', { utf7Mailboxes: true }) as { patterns: string[] }).patterns,
    ['日本語/*'],
  );
  const badLines = [
    'a LIST',
    'a LIST ""',
    'a LIST "" ',
    'a LIST * *', // reference is a mailbox (astring): no wildcards
    'a LIST "" ()',
    'a LIST "" (a',
    'a LIST (RECURSIVEMATCH) "" %', // RFC 5258 3.1
    'a LIST (REMOTE RECURSIVEMATCH) "" %',
    'a LIST (FOO) "" %',
    'a LIST (SUBSCRIBED "" %',
    'a LIST "" % (CHILDREN)',
    'a LIST "" % RETURN',
    'a LIST "" % RETURN (FOO)',
    'a LIST "" % RETURN (STATUS)',
    'a LIST "" % RETURN (STATUS ())',
    'a LIST "" % RETURN (STATUS (BOGUS))',
    'a LIST "" % RETURN (STATUS (MESSAGES) STATUS (UIDNEXT))',
    'a LIST "" a(b',
  ];
  for (const line of badLines) assert.equal(parseError(line).tag, 'a', line);
});

test('LSUB, NAMESPACE, STATUS', () => {
  assert.deepEqual(args('a LSUB "#news." comp.mail.*'), { name: 'LSUB', reference: '#news.', pattern: 'comp.mail.*' });
  assert.deepEqual(args('a STATUS blurdybloop (UIDNEXT MESSAGES)'), {
    name: 'STATUS',
    mailbox: 'blurdybloop',
    items: ['UIDNEXT', 'MESSAGES'],
  });
  assert.deepEqual(args('a STATUS inbox (messages size highestmodseq appendlimit deleted recent unseen uidvalidity)'), {
    name: 'STATUS',
    mailbox: 'INBOX',
    items: ['MESSAGES', 'SIZE', 'HIGHESTMODSEQ', 'APPENDLIMIT', 'DELETED', 'RECENT', 'UNSEEN', 'UIDVALIDITY'],
  });
  assert.deepEqual((args('a STATUS x (MESSAGES MESSAGES)') as { items: string[] }).items, ['MESSAGES']);
  for (const line of ['a LSUB ""', 'a STATUS x', 'a STATUS x ()', 'a STATUS x (FOO)', 'a STATUS x MESSAGES', 'a STATUS x (MESSAGES', 'a STATUS x (MESSAGES  UIDNEXT)', 'a NAMESPACE x']) {
    assert.equal(parseError(line).tag, 'a', line);
  }
});

test('APPEND: flags, date-time, literals, MULTIAPPEND, literal8, UTF8', () => {
  assert.deepEqual(args('a APPEND saved-messages (\\Seen) {5}\r\nhello'), {
    name: 'APPEND',
    mailbox: 'saved-messages',
    messages: [{ flags: ['\\Seen'], internalDate: null, data: Buffer.from('hello'), binary: false, utf8: false }],
  });
  const dated = args('a APPEND inbox (\\SEEN $Junk \\Custom) "14-Jul-2020 02:44:25 -0700" {3+}\r\nabc') as {
    messages: Array<{ flags: string[]; internalDate: { date: Date; offsetMinutes: number } }>;
  };
  assert.deepEqual(dated.messages[0]!.flags, ['\\Seen', '$Junk', '\\Custom']);
  assert.equal(dated.messages[0]!.internalDate.date.toISOString(), '2020-07-14T09:44:25.000Z');
  assert.equal(dated.messages[0]!.internalDate.offsetMinutes, -420);
  const multi = args('a APPEND x {1}\r\nA () " 1-Jan-2000 00:00:00 +0000" {1+}\r\nB ~{2}\r\nC\u0000 UTF8 (~{1+}\r\nD) UTF8 ({1}\r\nE)') as {
    messages: Array<{ data: Buffer; binary: boolean; utf8: boolean; internalDate: unknown }>;
  };
  assert.deepEqual(
    multi.messages.map((m) => [m.data.toString('latin1'), m.binary, m.utf8]),
    [
      ['A', false, false],
      ['B', false, false],
      ['C\u0000', true, false],
      ['D', true, true],
      ['E', false, true],
    ],
  );
  assert.equal((multi.messages[1]!.internalDate as { date: Date }).date.toISOString(), '2000-01-01T00:00:00.000Z');
  assert.deepEqual((args('a APPEND x {0}\r\n') as { messages: Array<{ data: Buffer }> }).messages[0]!.data, Buffer.alloc(0));
  const badLines: Array<[string, RegExp]> = [
    ['a APPEND x "hello"', /literal/],
    ['a APPEND x hello', /Expected message literal/],
    ['a APPEND x', /Expected SP/],
    ['a APPEND x (\\Seen)', /Expected SP/],
    ['a APPEND x (\\Seen {1}\r\na', /Expected flag/],
    ['a APPEND x (\\*) {1}\r\na', /not a valid flag/],
    ['a APPEND x "14-Jul-2020 02:44:25" {1}\r\na', /SP before zone/],
    ['a APPEND x "14-Jul-2020 2:44:25 -0700" {1}\r\na', /hour/],
    ['a APPEND x "4-Jul-2020 02:44:25 -0700" {1}\r\na', /day/],
    ['a APPEND x "31-Feb-2020 02:44:25 -0700" {1}\r\na', /day of month/],
    ['a APPEND x "14-Jux-2020 02:44:25 -0700" {1}\r\na', /month/],
    ['a APPEND x "14-Jul-2020 24:00:00 -0700" {1}\r\na', /Invalid time/],
    ['a APPEND x "14-Jul-2020 02:44:25 -07000" {1}\r\na', /zone/],
    ['a APPEND x "14-Jul-2020 02:44:25 -0760" {1}\r\na', /zone/],
    ['a APPEND x "14-Jul-20 02:44:25 -0700" {1}\r\na', /year/],
    ['a APPEND x UTF8 {1}\r\na', /"\("/],
    ['a APPEND x UTF8 (~{1}\r\na', /"\)"/],
    ['a APPEND x {1}\r\na ', /Expected message literal/],
    ['a APPEND x {1}\r\na extra', /Expected message literal/],
    ['a APPEND x {2}\r\na\u0000', /NUL/],
    ['a APPEND x (\\Seen) (\\Draft) {1}\r\na', /Expected message literal/],
  ];
  for (const [line, re] of badLines) assert.match(parseError(line).message, re, line);
});

test('COPY, MOVE, UID EXPUNGE, STORE', () => {
  assert.deepEqual(args('a COPY 2:4 MEETING'), {
    name: 'COPY',
    uid: false,
    sequence: { ranges: [{ start: 2, end: 4 }], saved: false },
    mailbox: 'MEETING',
  });
  assert.deepEqual(args('a uid move $ inbox'), {
    name: 'MOVE',
    uid: true,
    sequence: { ranges: [], saved: true },
    mailbox: 'INBOX',
  });
  assert.deepEqual(args('a UID EXPUNGE 3000:3002,*'), {
    name: 'EXPUNGE',
    uid: true,
    uidSet: {
      ranges: [
        { start: 3000, end: 3002 },
        { start: '*', end: '*' },
      ],
      saved: false,
    },
  });
  const seq = { ranges: [{ start: 2, end: 4 }], saved: false };
  const storeCases: Array<[string, string, boolean, string[], bigint | null]> = [
    ['a STORE 2:4 +FLAGS (\\Deleted)', 'add', false, ['\\Deleted'], null],
    ['a STORE 2:4 -FLAGS.SILENT \\seen \\Flagged', 'remove', true, ['\\Seen', '\\Flagged'], null],
    ['a STORE 2:4 FLAGS ()', 'replace', false, [], null],
    ['a STORE 2:4 flags.silent ($Forwarded Custom)', 'replace', true, ['$Forwarded', 'Custom'], null],
    ['a STORE 2:4 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)', 'add', true, ['\\Deleted'], 12121230045n],
    ['a STORE 2:4 (unchangedsince 0) FLAGS x', 'replace', false, ['x'], 0n],
  ];
  for (const [line, operation, silent, flags, unchangedSince] of storeCases) {
    assert.deepEqual(args(line), { name: 'STORE', uid: false, sequence: seq, operation, silent, flags, unchangedSince }, line);
  }
  assert.equal((args('a UID STORE 1 +FLAGS x') as { uid: boolean }).uid, true);
  const badLines = [
    'a COPY 1:2',
    'a COPY 0 x',
    'a COPY 1:4294967296 x',
    'a COPY 1, x',
    'a COPY x y',
    'a COPY 1:2x y',
    'a EXPUNGE 1:2',
    'a UID EXPUNGE',
    'a MOVE 1 "x',
    'a STORE 1 FLAGS',
    'a STORE 1 +FLAGS (',
    'a STORE 1 +FLAGS (\\Seen',
    'a STORE 1 +FLAGS ((\\Seen))',
    'a STORE 1 *FLAGS x',
    'a STORE 1 FLAGS.LOUD x',
    'a STORE 1 +FLAGS \\*',
    'a STORE 1 +FLAGS "x"',
    'a STORE 1 +FLAGS x  y',
    'a STORE 1 (UNCHANGEDSINCE) FLAGS x',
    'a STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS x',
    'a STORE 1 (FOO 1) FLAGS x',
    'a STORE 1 (UNCHANGEDSINCE -1) FLAGS x',
    'a STORE 1 (UNCHANGEDSINCE 99999999999999999999) FLAGS x',
    'a STORE 1 +FLAGS fl\u00e4g',
  ];
  for (const line of badLines) assert.equal(parseError(line).tag, 'a', line);
});

test('quota (RFC 9208)', () => {
  assert.deepEqual(args('a GETQUOTA ""'), { name: 'GETQUOTA', root: '' });
  assert.deepEqual(args('a GETQUOTAROOT inbox'), { name: 'GETQUOTAROOT', mailbox: 'INBOX' });
  assert.deepEqual(args('a SETQUOTA "" (storage 512 MESSAGE 1000)'), {
    name: 'SETQUOTA',
    root: '',
    limits: [
      { resource: 'STORAGE', limit: 512 },
      { resource: 'MESSAGE', limit: 1000 },
    ],
  });
  assert.deepEqual(args('a SETQUOTA x ()'), { name: 'SETQUOTA', root: 'x', limits: [] });
  assert.deepEqual(args('a SETQUOTA x (STORAGE 9007199254740991)'), {
    name: 'SETQUOTA',
    root: 'x',
    limits: [{ resource: 'STORAGE', limit: 9007199254740991 }],
  });
  for (const line of ['a GETQUOTA', 'a SETQUOTA x', 'a SETQUOTA x (STORAGE)', 'a SETQUOTA x (STORAGE x)', 'a SETQUOTA x (STORAGE 1 STORAGE 2)', 'a SETQUOTA x (STORAGE 99999999999999999999)', 'a SETQUOTA x STORAGE 1']) {
    assert.equal(parseError(line).tag, 'a', line);
  }
});

test('SORT and THREAD (RFC 5256, RFC 5267)', () => {
  assert.deepEqual(args('a SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994'), {
    name: 'SORT',
    uid: false,
    criteria: [{ key: 'SUBJECT', reverse: false }],
    charset: 'UTF-8',
    returnOptions: null,
    search: { type: 'date', field: 'internal', op: 'since', date: { year: 1994, month: 2, day: 1 } },
  });
  assert.deepEqual(args('a UID SORT RETURN (MIN COUNT) (REVERSE ARRIVAL cc DATE from SIZE to) us-ascii ALL UNDELETED'), {
    name: 'SORT',
    uid: true,
    criteria: [
      { key: 'ARRIVAL', reverse: true },
      { key: 'CC', reverse: false },
      { key: 'DATE', reverse: false },
      { key: 'FROM', reverse: false },
      { key: 'SIZE', reverse: false },
      { key: 'TO', reverse: false },
    ],
    charset: 'US-ASCII',
    returnOptions: { min: true, max: false, all: false, count: true, save: false },
    search: {
      type: 'and',
      keys: [{ type: 'all' }, { type: 'flag', flag: '\\Deleted', set: false }],
    },
  });
  assert.deepEqual(args('a THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000'), {
    name: 'THREAD',
    uid: false,
    algorithm: 'ORDEREDSUBJECT',
    charset: 'UTF-8',
    search: { type: 'date', field: 'internal', op: 'since', date: { year: 2000, month: 3, day: 5 } },
  });
  assert.equal((args('a UID THREAD references "UTF-8" ALL') as { algorithm: string }).algorithm, 'REFERENCES');
  const badLines = [
    'a SORT',
    'a SORT () UTF-8 ALL',
    'a SORT (SUBJECT) ALL',
    'a SORT (SUBJECT) UTF-8',
    'a SORT (BOGUS) UTF-8 ALL',
    'a SORT (REVERSE) UTF-8 ALL',
    'a SORT (REVERSE REVERSE DATE) UTF-8 ALL',
    'a SORT SUBJECT UTF-8 ALL',
    'a SORT RETURN (BOGUS) (DATE) UTF-8 ALL',
    'a THREAD REFS UTF-8 ALL',
    'a THREAD REFERENCES UTF-8',
    'a THREAD REFERENCES',
  ];
  for (const line of badLines) assert.equal(parseError(line).tag, 'a', line);
  const e = parseError('a THREAD REFERENCES KOI8-R ALL');
  assert.equal(e.kind, 'NO');
  assert.equal(e.code, 'BADCHARSET');
});

test('every known command has at least one accepted form here', () => {
  const seen = new Set<string>();
  const samples = [
    'a CAPABILITY', 'a NOOP', 'a LOGOUT', 'a STARTTLS', 'a NAMESPACE', 'a IDLE', 'a CHECK', 'a CLOSE', 'a UNSELECT',
    'a ID NIL', 'a AUTHENTICATE PLAIN', 'a LOGIN u p', 'a ENABLE X', 'a SELECT x', 'a EXAMINE x', 'a CREATE x',
    'a DELETE x', 'a RENAME x y', 'a SUBSCRIBE x', 'a UNSUBSCRIBE x', 'a LIST "" *', 'a LSUB "" *',
    'a STATUS x (MESSAGES)', 'a APPEND x {1+}\r\nm', 'a GETQUOTA x', 'a GETQUOTAROOT x', 'a SETQUOTA x ()',
    'a COMPRESS DEFLATE', 'a EXPUNGE', 'a SEARCH ALL', 'a FETCH 1 UID', 'a STORE 1 FLAGS x', 'a COPY 1 x',
    'a MOVE 1 x', 'a SORT (DATE) UTF-8 ALL', 'a THREAD REFERENCES UTF-8 ALL',
  ];
  for (const s of samples) {
    const line = s.split(' ')[1]!.replace(/\r\n.*/, '');
    seen.add(line);
    parse(s);
  }
  for (const name of KNOWN_COMMANDS) assert.ok(seen.has(name), name);
});

test('mailboxNameProblem (RFC 9051 section 5.1)', () => {
  const cases: Array<[string, boolean]> = [
    ['INBOX', true],
    ['Entwürfe/2024', true],
    ['日本語 😀', true],
    ['', false],
    ['a\tb', false],
    ['a\r\nb', false],
    ['a\u0000', false],
    ['a\u007f', false],
    ['a\u0085', false],
    ['a\u2028b', false],
    ['a\u2029b', false],
    ['a\ud800', false],
  ];
  for (const [name, ok] of cases) assert.equal(mailboxNameProblem(name) === null, ok, JSON.stringify(name));
  // The grammar itself accepts such names (a literal may carry anything but NUL).
  assert.equal((args('a CREATE {3}\r\na\tb') as { mailbox: string }).mailbox, 'a\tb');
});
