import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapReader, sniffCommand, type ImapReaderOptions, type ReaderEvent } from '../../src/protocols/imap/reader.js';
import { ImapParseError, parseCommand } from '../../src/protocols/imap/parser.js';

/** A readable summary of events: commands as their segments and literals. */
function summarize(ev: ReaderEvent): unknown {
  switch (ev.type) {
    case 'command':
      return {
        command: ev.command.segments.map((s) => s.toString('latin1')),
        literals: ev.command.literals.map((l) => [l.data.toString('latin1'), l.synchronizing, l.binary]),
      };
    case 'line':
      return { line: ev.line.toString('latin1') };
    default:
      return ev;
  }
}

function drain(reader: ImapReader): unknown[] {
  const out: unknown[] = [];
  for (let ev = reader.next(); ev; ev = reader.next()) out.push(summarize(ev));
  return out;
}

/** Feed `input` in the given chunk sizes (cycled), pulling after each chunk. */
function run(input: string | Buffer, options: ImapReaderOptions = {}, chunk = Infinity): unknown[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const reader = new ImapReader(options);
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    reader.push(bytes.subarray(i, Math.min(bytes.length, i + chunk)));
    out.push(...drain(reader));
  }
  return out;
}

test('framing table: lines, literals, quoted braces, bare LF', () => {
  const cases: Array<[string, unknown[]]> = [
    ['a NOOP\r\n', [{ command: ['a NOOP'], literals: [] }]],
    ['a NOOP\n', [{ command: ['a NOOP'], literals: [] }]],
    ['a NOOP\r\nb LOGOUT\r\n', [{ command: ['a NOOP'], literals: [] }, { command: ['b LOGOUT'], literals: [] }]],
    ['\r\n', [{ command: [''], literals: [] }]],
    ['a NOOP', []],
    [
      'a LOGIN {3}\r\nbob {6+}\r\nsecret\r\n',
      [
        { type: 'continue', tag: 'a', size: 3 },
        { command: ['a LOGIN {3}', ' {6+}', ''], literals: [['bob', true, false], ['secret', false, false]] },
      ],
    ],
    [
      'a APPEND x ~{5+}\r\n\x00\r\n\r\n\r\n',
      [{ command: ['a APPEND x ~{5+}', ''], literals: [['\x00\r\n\r\n', false, true]] }],
    ],
    [
      // The literal's octets are never scanned for markers or line ends.
      'a APPEND x {12+}\r\nfoo {3}\r\nbar\r\n',
      [{ command: ['a APPEND x {12+}', ''], literals: [['foo {3}\r\nbar', false, false]] }],
    ],
    [
      'a APPEND x {0}\r\n\r\n',
      [{ type: 'continue', tag: 'a', size: 0 }, { command: ['a APPEND x {0}', ''], literals: [['', true, false]] }],
    ],
    // A "{n}" inside a quoted string (even one left open) is not a literal.
    ['a LOGIN "x {5}\r\nb NOOP\r\n', [{ command: ['a LOGIN "x {5}'], literals: [] }, { command: ['b NOOP'], literals: [] }]],
    ['a LOGIN "x\\" {5}\r\n', [{ command: ['a LOGIN "x\\" {5}'], literals: [] }]],
    ['a LOGIN "x\\\\" {1+}\r\nz\r\n', [{ command: ['a LOGIN "x\\\\" {1+}', ''], literals: [['z', false, false]] }]],
    ['a LOGIN x {}\r\n', [{ command: ['a LOGIN x {}'], literals: [] }]],
    ['a LOGIN x {a}\r\n', [{ command: ['a LOGIN x {a}'], literals: [] }]],
    ['a LOGIN x {+}\r\n', [{ command: ['a LOGIN x {+}'], literals: [] }]],
    ['a LOGIN x 5}\r\n', [{ command: ['a LOGIN x 5}'], literals: [] }]],
  ];
  for (const [input, expected] of cases) {
    for (const chunk of [Infinity, 1, 2, 3, 7]) {
      assert.deepEqual(run(input, {}, chunk), expected, `${JSON.stringify(input)} chunk ${chunk}`);
    }
  }
});

test('synchronizing literal: continuation comes before the octets are needed', () => {
  const reader = new ImapReader();
  reader.push(Buffer.from('a LOGIN {3}\r\n'));
  assert.deepEqual(reader.next(), { type: 'continue', tag: 'a', size: 3 });
  assert.equal(reader.next(), null);
  reader.push(Buffer.from('bo'));
  assert.equal(reader.next(), null);
  reader.push(Buffer.from('b {2}\r\n'));
  assert.deepEqual(reader.next(), { type: 'continue', tag: 'a', size: 2 });
  reader.push(Buffer.from('pw\r\n'));
  const ev = reader.next();
  assert.equal(ev?.type, 'command');
  const cmd = parseCommand((ev as Extract<ReaderEvent, { type: 'command' }>).command);
  assert.deepEqual(cmd, { name: 'LOGIN', tag: 'a', username: 'bob', password: 'pw' });
  assert.equal(reader.idle, true);
  assert.equal(reader.pendingBytes, 0);
});

test('line too long: BAD event with tag, rest of the line dropped, next command fine', () => {
  const opts = { maxLineLength: 20 };
  const long = 'a1 LOGIN ' + 'x'.repeat(40);
  for (const chunk of [Infinity, 1, 5, 13]) {
    assert.deepEqual(
      run(`${long}\r\nb NOOP\r\n`, opts, chunk),
      [
        { type: 'line-too-long', tag: 'a1', command: 'LOGIN' },
        { command: ['b NOOP'], literals: [] },
      ],
      `chunk ${chunk}`,
    );
  }
  // Exactly at the limit is fine, with or without CR.
  assert.deepEqual(run(`${'a NOOP'.padEnd(20, 'x')}\r\n`, opts), [{ command: ['a NOOPxxxxxxxxxxxxxx'], literals: [] }]);
  assert.deepEqual(run(`${'a NOOP'.padEnd(20, 'x')}\n`, opts), [{ command: ['a NOOPxxxxxxxxxxxxxx'], literals: [] }]);
  assert.deepEqual(run(`${'a NOOP'.padEnd(21, 'x')}\r\n`, opts)[0], { type: 'line-too-long', tag: 'a', command: 'NOOPXXXXXXXXXXXXXXX' });
  // A continuation line (after a literal) that is too long drops the whole command.
  assert.deepEqual(run(`a LOGIN {1+}\r\nx ${'y'.repeat(30)}\r\nb NOOP\r\n`, opts), [
    { type: 'line-too-long', tag: 'a', command: 'LOGIN' },
    { command: ['b NOOP'], literals: [] },
  ]);
  // An unparseable tag gives tag null (the session answers "* BAD").
  assert.deepEqual(run(`${'+'.repeat(30)}\r\n`, opts), [{ type: 'line-too-long', tag: null, command: null }]);
});

test('a long line without LF is not buffered', () => {
  const reader = new ImapReader({ maxLineLength: 1000 });
  reader.push(Buffer.from('a1 SEARCH '));
  assert.equal(reader.next(), null);
  const junk = Buffer.alloc(64 * 1024, 0x61);
  reader.push(junk);
  assert.deepEqual(reader.next(), { type: 'line-too-long', tag: 'a1', command: 'SEARCH' });
  for (let i = 0; i < 100; i++) {
    reader.push(junk);
    assert.equal(reader.next(), null);
    assert.equal(reader.pendingBytes, 0);
  }
  reader.push(Buffer.from('\r\nb NOOP\r\n'));
  assert.deepEqual(summarize(reader.next()!), { command: ['b NOOP'], literals: [] });
});

test('literal too big: synchronizing (nothing follows), non-synchronizing (discarded), or close', () => {
  const opts: ImapReaderOptions = { maxLiteralSize: 10, maxDiscardSize: 100 };
  // RFC 9051 7.5: a refused synchronizing literal is never sent; the next line is a command.
  assert.deepEqual(run('a APPEND x {11}\r\nb NOOP\r\n', opts), [
    { type: 'literal-rejected', tag: 'a', command: 'APPEND', size: 11, synchronizing: true, binary: false, reason: 'too-big', action: 'none' },
    { command: ['b NOOP'], literals: [] },
  ]);
  assert.deepEqual(run('a APPEND x {99999999999999999999}\r\nb NOOP\r\n', opts)[0], {
    type: 'literal-rejected',
    tag: 'a',
    command: 'APPEND',
    size: Infinity,
    synchronizing: true,
    binary: false,
    reason: 'too-big',
    action: 'none',
  });
  // RFC 7888: a non-synchronizing literal is on its way; the reader drops it and the rest.
  for (const chunk of [Infinity, 1, 4]) {
    assert.deepEqual(
      run(`a APPEND x {20+}\r\n${'z'.repeat(20)} {3+}\r\nabc {5}\r\nb NOOP\r\n`, opts, chunk),
      [
        { type: 'literal-rejected', tag: 'a', command: 'APPEND', size: 20, synchronizing: false, binary: false, reason: 'too-big', action: 'discard' },
        { command: ['b NOOP'], literals: [] },
      ],
      `chunk ${chunk}`,
    );
  }
  assert.deepEqual(run(`a APPEND x ~{20+}\r\n${'\0'.repeat(20)}\r\nb NOOP\r\n`, opts)[1], { command: ['b NOOP'], literals: [] });
  // Too much to drop: close.
  const reader = new ImapReader(opts);
  reader.push(Buffer.from('a APPEND x {101+}\r\nmore data\r\nb NOOP\r\n'));
  assert.deepEqual(reader.next(), {
    type: 'literal-rejected',
    tag: 'a',
    command: 'APPEND',
    size: 101,
    synchronizing: false,
    binary: false,
    reason: 'too-big',
    action: 'close',
  });
  assert.equal(reader.closed, true);
  assert.equal(reader.next(), null);
  reader.push(Buffer.from('c NOOP\r\n'));
  assert.equal(reader.next(), null);
  assert.equal(reader.pendingBytes, 0);
});

test('command size limit counts lines and literals together', () => {
  const opts: ImapReaderOptions = { maxLiteralSize: 100, maxCommandSize: 50 };
  assert.deepEqual(run('a APPEND x {10+}\r\n0123456789 {10+}\r\n0123456789\r\n', opts), [
    { command: ['a APPEND x {10+}', ' {10+}', ''], literals: [['0123456789', false, false], ['0123456789', false, false]] },
  ]);
  const out = run('a APPEND x {30+}\r\n' + 'x'.repeat(30) + ' {30}\r\nb NOOP\r\n', opts);
  assert.deepEqual(out, [
    { type: 'literal-rejected', tag: 'a', command: 'APPEND', size: 30, synchronizing: true, binary: false, reason: 'command-too-big', action: 'none' },
    { command: ['b NOOP'], literals: [] },
  ]);
  // Many empty literals cannot grow a command without bound either.
  const many = 'a LOGIN ' + '{0+}\r\n'.repeat(20) + '\r\n';
  assert.equal((run(many, opts)[0] as { reason: string }).reason, 'command-too-big');
});

test('onLiteral hook: sees the command, may refuse before the continuation (e.g. over quota)', () => {
  const seen: unknown[] = [];
  const opts: ImapReaderOptions = {
    onLiteral: (r) => {
      seen.push({ tag: r.tag, command: r.command, size: r.size, sync: r.synchronizing, binary: r.binary, index: r.index, first: r.segments[0]?.toString() });
      return r.size > 5 ? { code: 'OVERQUOTA' } : undefined;
    },
  };
  assert.deepEqual(run('A1 APPEND INBOX {3}\r\nabc ~{4+}\r\nd\0ef {9}\r\nb uid fetch 1 BODY[]\r\n', opts), [
    { type: 'continue', tag: 'A1', size: 3 },
    {
      type: 'literal-rejected',
      tag: 'A1',
      command: 'APPEND',
      size: 9,
      synchronizing: true,
      binary: false,
      reason: 'hook',
      detail: { code: 'OVERQUOTA' },
      action: 'none',
    },
    { command: ['b uid fetch 1 BODY[]'], literals: [] },
  ]);
  assert.deepEqual(seen, [
    { tag: 'A1', command: 'APPEND', size: 3, sync: true, binary: false, index: 0, first: 'A1 APPEND INBOX {3}' },
    { tag: 'A1', command: 'APPEND', size: 4, sync: false, binary: true, index: 1, first: 'A1 APPEND INBOX {3}' },
    { tag: 'A1', command: 'APPEND', size: 9, sync: true, binary: false, index: 2, first: 'A1 APPEND INBOX {3}' },
  ]);
  // A refused non-synchronizing literal is discarded.
  assert.deepEqual(run('a APPEND x {6+}\r\nabcdef\r\nb NOOP\r\n', opts), [
    { type: 'literal-rejected', tag: 'a', command: 'APPEND', size: 6, synchronizing: false, binary: false, reason: 'hook', detail: { code: 'OVERQUOTA' }, action: 'discard' },
    { command: ['b NOOP'], literals: [] },
  ]);
});

test('raw line mode for IDLE and AUTHENTICATE, switched between events', () => {
  const reader = new ImapReader({ maxLineLength: 50 });
  reader.push(Buffer.from('a IDLE\r\nDONE\r\nb AUTHENTICATE PLAIN\r\nAGJvYgBwdw==\r\n*\r\n{5}\r\nc NOOP\r\n'));
  const events: unknown[] = [];
  for (let ev = reader.next(); ev; ev = reader.next()) {
    events.push(summarize(ev));
    if (ev.type === 'command') {
      const name = parseCommand(ev.command).name;
      if (name === 'IDLE' || name === 'AUTHENTICATE') reader.setRawLineMode(true);
    } else if (ev.type === 'line') {
      const text = ev.line.toString();
      if (text === 'DONE' || text === '{5}') reader.setRawLineMode(false);
    }
  }
  assert.deepEqual(events, [
    { command: ['a IDLE'], literals: [] },
    { line: 'DONE' },
    { command: ['b AUTHENTICATE PLAIN'], literals: [] },
    { line: 'AGJvYgBwdw==' },
    { line: '*' },
    { line: '{5}' }, // no literal processing in raw mode
    { command: ['c NOOP'], literals: [] },
  ]);
  // Raw lines are limited too, with no tag guessed from them.
  const r2 = new ImapReader({ maxLineLength: 10 });
  r2.setRawLineMode(true);
  assert.equal(r2.rawLineMode, true);
  r2.push(Buffer.from('x'.repeat(30) + '\r\nDONE\r\n'));
  assert.deepEqual(r2.next(), { type: 'line-too-long', tag: null, command: null });
  assert.deepEqual(summarize(r2.next()!), { line: 'DONE' });
});

test('pendingBytes reflects unpulled input (for back-pressure)', () => {
  const reader = new ImapReader();
  reader.push(Buffer.from('a NOOP\r\nb NOOP\r\n'));
  assert.equal(reader.pendingBytes, 16);
  reader.next();
  assert.equal(reader.pendingBytes, 8);
  reader.next();
  assert.equal(reader.pendingBytes, 0);
  assert.equal(reader.next(), null);
});

test('sniffCommand', () => {
  const cases: Array<[string, string | null, string | null]> = [
    ['a1 FETCH 1 FLAGS', 'a1', 'FETCH'],
    ['a1 uid fetch 1', 'a1', 'UID FETCH'],
    ['a1', 'a1', null],
    ['+ x', null, null],
    ['', null, null],
    ['(x NOOP', null, null],
  ];
  for (const [line, tag, command] of cases) assert.deepEqual(sniffCommand(Buffer.from(line)), { tag, command }, line);
});

test('empty line and garbage: parse errors, never crashes', () => {
  const [empty] = run('\r\n') as Array<{ command: string[] }>;
  assert.deepEqual(empty, { command: [''], literals: [] });
  const reader = new ImapReader();
  reader.push(Buffer.from('\r\n'));
  const ev = reader.next() as Extract<ReaderEvent, { type: 'command' }>;
  assert.throws(
    () => parseCommand(ev.command),
    (e: unknown) => e instanceof ImapParseError && e.tag === undefined && /Empty/.test(e.message),
  );
});

test('fuzz: chunking never changes events; parser only throws ImapParseError', () => {
  const corpus = [
    'a LOGIN {3}\r\nbob {4+}\r\npass\r\n',
    'b FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10>) (CHANGEDSINCE 5)\r\n',
    'c SEARCH OR (FROM "x" SINCE 1-Feb-2020) NOT UID 5:* MODSEQ 7\r\n',
    'd APPEND INBOX (\\Seen) "14-Jul-2020 02:44:25 -0700" ~{5+}\r\nhe\0lo UTF8 ({2+}\r\nab)\r\n',
    'e LIST (SUBSCRIBED) "" ("a" %) RETURN (STATUS (MESSAGES))\r\n',
    'f STORE 1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Deleted)\r\n',
    'g SELECT INBOX (QRESYNC (1 2 1:5 (1:2 3:4)))\r\n',
  ];
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const opts: ImapReaderOptions = { maxLineLength: 200, maxLiteralSize: 50, maxDiscardSize: 60 };
  for (let iter = 0; iter < 400; iter++) {
    let bytes = Buffer.from(corpus.map((c) => c).sort(() => rnd(3) - 1).join(''), 'latin1');
    // Mutate: flip, delete or insert a few bytes.
    const copy = Array.from(bytes);
    for (let m = rnd(4); m > 0; m--) {
      const at = rnd(copy.length);
      const op = rnd(3);
      const interesting = [0x7b, 0x7d, 0x2b, 0x0d, 0x0a, 0x22, 0x5c, 0x28, 0x29, 0x20, 0x00, 0xff, 0x7e, 0x30 + rnd(10)];
      if (op === 0) copy[at] = interesting[rnd(interesting.length)]!;
      else if (op === 1) copy.splice(at, 1);
      else copy.splice(at, 0, interesting[rnd(interesting.length)]!);
    }
    bytes = Buffer.from(copy);
    const reference = run(bytes, opts);
    const chunked = run(bytes, opts, 1 + rnd(9));
    assert.deepEqual(chunked, reference, `iteration ${iter}`);
    const reader = new ImapReader(opts);
    reader.push(bytes);
    for (let ev = reader.next(); ev; ev = reader.next()) {
      if (ev.type !== 'command') continue;
      try {
        parseCommand(ev.command);
      } catch (e) {
        assert.ok(e instanceof ImapParseError, `iteration ${iter}: ${e}`);
      }
    }
  }
});
