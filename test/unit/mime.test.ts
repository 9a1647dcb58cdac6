/**
 * MIME offset parser, envelope, section addressing and IMAP formatting.
 * Fixture messages are in test/fixtures/mime/ (the Dovecot comparison is mime-dovecot.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatBodystructure, formatEnvelope, imapString, imapStringForHumans } from '../../src/lib/imap/format.js';
import {
  MAX_DEPTH,
  MAX_PARTS,
  type MimePart,
  buildEnvelope,
  decodeHeaderValue,
  decodedText,
  findSection,
  getHeaders,
  headerBlock,
  normalizeLineEndings,
  parseMessage,
  sectionBytes,
} from '../../src/lib/mime/parse.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/mime');
const fixture = (name: string): Buffer => readFileSync(join(dir, name));
const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const head = (raw: Buffer, p: MimePart): string => raw.toString('latin1', p.headerStart, p.bodyStart);
const body = (raw: Buffer, p: MimePart): string => raw.toString('latin1', p.bodyStart, p.end);

/** Every part in document order, embedded messages included. */
function allParts(p: MimePart, out: MimePart[] = []): MimePart[] {
  out.push(p);
  p.children?.forEach((c) => allParts(c, out));
  if (p.message) allParts(p.message.part, out);
  return out;
}

describe('structure and offsets', () => {
  const cases: {
    name: string;
    raw: Buffer;
    /** [section path, type/subtype, exact header block, exact body]; null: not checked */
    parts: [string, string, string | null, string | null][];
  }[] = [
    {
      name: 'simple text, CRLF',
      raw: crlf('From: a@example.com\nSubject: hi\n\nHello\nWorld\n'),
      parts: [['1', 'text/plain', 'From: a@example.com\r\nSubject: hi\r\n\r\n', 'Hello\r\nWorld\r\n']],
    },
    {
      name: 'bare LF, folded header',
      raw: Buffer.from('Subject: a\n b\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\nContent-Type: text/html\n\n<b>\n--x--\n'),
      parts: [
        ['1', 'text/plain', '\n', 'one'],
        ['2', 'text/html', 'Content-Type: text/html\n\n', '<b>'],
      ],
    },
    {
      name: 'multipart/alternative in mixed, preamble and epilogue',
      raw: fixture('alt-in-mixed.eml'),
      parts: [
        ['1', 'multipart/alternative', 'Content-Type: multipart/alternative; boundary=inner\r\n\r\n',
          '--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 report\r\nline two\r\n--inner\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>Cafe report</p>\r\n--inner--\r\n'], // the close delimiter's line break is its own: the outer boundary follows
        ['1.1', 'text/plain', 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n', 'Caf=C3=A9 report\r\nline two'],
        ['1.2', 'text/html', 'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n', '<p>Cafe report</p>'],
        ['2', 'application/pdf', null, 'JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\neJzLSM3JyVcozy/KSQEAGgQEXQplbmRzdHJlYW0KZW5kb2JqCg=='],
      ],
    },
    {
      name: 'message/rfc822 attachment holding a multipart',
      raw: fixture('rfc822-attach.eml'),
      parts: [
        ['1', 'text/plain', 'Content-Type: text/plain; charset=us-ascii\r\n\r\n', 'see attached'],
        ['2', 'message/rfc822', 'Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n', null],
        ['2.1', 'text/plain', 'Content-Type: text/plain\r\n\r\n', 'inner plain'],
        ['2.2', 'text/html', 'Content-Type: text/html\r\n\r\n', '<b>inner html</b>'],
      ],
    },
    {
      name: 'no Content-Type',
      raw: fixture('no-content-type.eml'),
      parts: [['1', 'text/plain', 'From: nobody@example.com\r\nSubject: plain old message\r\n\r\n', 'Just text,\r\nno MIME at all.\r\n']],
    },
    {
      name: 'broken boundaries: prefix match, unterminated last part',
      raw: fixture('broken-boundary.eml'),
      parts: [
        ['1', 'text/plain', 'Content-Type: text/plain\r\n\r\n', 'first part'],
        ['2', 'text/html', 'Content-Type: text/html\r\n\r\n', '<p>second</p>'],
        ['3', 'text/plain', 'Content-Type: text/plain\r\n\r\n', 'third part, never closed\r\n'],
      ],
    },
    {
      name: 'empty multipart gets one empty text/plain part',
      raw: fixture('empty-multipart.eml'),
      parts: [['1', 'text/plain', '', '']],
    },
    {
      name: 'header cut short by a boundary: the line break goes with the boundary',
      raw: crlf('Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\n\nx\n--b--\n'),
      parts: [
        ['1', 'text/plain', 'Content-Type: text/plain', ''],
        ['2', 'text/plain', '\r\n', 'x'],
      ],
    },
    {
      name: '8-bit and binary parts',
      raw: fixture('binary-8bit.eml'),
      parts: [
        ['1', 'text/plain', 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n', Buffer.from('Grüße, Jörg').toString('latin1')],
        ['2', 'application/octet-stream', 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n', Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1')],
      ],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const root = parseMessage(c.raw);
      for (const [path, type, h, b] of c.parts) {
        const p = findSection(root, path.split('.').map(Number));
        assert.ok(p, path);
        assert.equal(`${p.type}/${p.subtype}`, type, path);
        if (h !== null) assert.equal(head(c.raw, p), h, `${path} header`);
        if (b !== null) assert.equal(body(c.raw, p), b, `${path} body`);
        assert.equal(p.size, p.end - p.bodyStart);
      }
    });
  }

  test('exact offsets of a simple message', () => {
    const raw = crlf('From: a@example.com\nSubject: hi\n\nHello\nWorld\n');
    const root = parseMessage(raw);
    assert.deepEqual([root.headerStart, root.bodyStart, root.end, root.size, root.lines], [0, 36, 50, 14, 2]);
    assert.equal(headerBlock(raw, root).toString(), 'From: a@example.com\r\nSubject: hi\r\n\r\n');
  });

  test('embedded message offsets are absolute and its envelope is parsed', () => {
    const raw = fixture('rfc822-attach.eml');
    const m = findSection(parseMessage(raw), [2]);
    assert.ok(m?.message);
    assert.equal(m.bodyStart, m.message.part.headerStart);
    assert.ok(body(raw, m).startsWith('From: Inner Sender <inner@example.org>\r\n'));
    assert.ok(body(raw, m).endsWith('--in-b--\r\n')); // the close delimiter line is the message's
    assert.equal(m.lines, 17);
    assert.equal(m.message.envelope.subject, 'Fwd: the inner one');
    assert.deepEqual(m.message.envelope.from, [{ name: 'Inner Sender', adl: null, mailbox: 'inner', host: 'example.org' }]);
  });

  test('Content-* fields: first wins, white space and comments ignored, case kept for IMAP', () => {
    const root = parseMessage(fixture('headers-edge.eml'));
    assert.equal(`${root.type}/${root.subtype}`, 'text/plain');
    assert.deepEqual(root.params, [['charset', 'utf-8']]);
    assert.equal(root.description, 'first description');
    assert.equal(root.encoding, 'QUOTED-PRINTABLE');
    assert.equal(root.id, '<cid@x>');
    assert.equal(root.lines, 3);
  });

  test('without MIME-Version or Content-Type, Content-* fields are ignored (RFC 2045 4)', () => {
    const root = parseMessage(crlf('From: a@b\nContent-Transfer-Encoding: base64\n\naGk=\n'));
    assert.equal(root.encoding, '7bit');
    const mime = parseMessage(crlf('From: a@b\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\naGk=\n'));
    assert.equal(mime.encoding, 'base64');
  });

  test('multipart/digest parts default to message/rfc822', () => {
    const root = parseMessage(fixture('digest.eml'));
    assert.equal(root.children?.[0].type + '/' + root.children?.[0].subtype, 'message/rfc822');
    assert.equal(root.children?.[0].message?.envelope.subject, 'first');
    assert.equal(root.children?.[1].subtype, 'plain');
  });

  test('nesting is capped at MAX_DEPTH', () => {
    const raw = fixture('deep-nesting.eml');
    const root = parseMessage(raw);
    let depth = 0;
    for (let p: MimePart | undefined = root; p?.children; p = p.children[0]) depth++;
    assert.equal(depth, MAX_DEPTH);
  });

  test('part count is capped; the last part runs to the end', () => {
    const n = MAX_PARTS + 50;
    const raw = Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n\r\nx\r\n'.repeat(n) + '--b--\r\n');
    const root = parseMessage(raw);
    assert.equal(allParts(root).length, MAX_PARTS);
    assert.equal(root.children?.at(-1)?.end, raw.length);
  });

  test('no input makes it throw', () => {
    for (const s of ['', '\r\n', '--', ':', 'Content-Type: multipart/mixed; boundary=""\n\n--\n--\n', 'Content-Type: message/rfc822\n\n']) {
      const root = parseMessage(Buffer.from(s));
      assert.ok(root.end <= s.length);
    }
    const empty = parseMessage(fixture('empty.eml'));
    assert.deepEqual([empty.headerStart, empty.bodyStart, empty.end, empty.type], [0, 0, 0, 'text']);
  });
});

test('mutated fixtures: never throws, offsets nest, everything formats', () => {
  const seeds = ['alt-in-mixed.eml', 'rfc822-attach.eml', 'rfc2047-2231.eml', 'structure-edge.eml', 'group-addresses.eml'].map(fixture);
  const bits = ['\r\n', '\n', '--', '--out-b', '--=_b2231--', ':', ';', '"', '(', '\\', '=?x?q?y?=', '\r\n\r\n', '\0', '\xff', '*0*='];
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const check = (p: MimePart, lo: number, hi: number): void => {
    assert.ok(lo <= p.headerStart && p.headerStart <= p.bodyStart && p.bodyStart <= p.end && p.end <= hi);
    let prev = p.bodyStart;
    for (const c of p.children ?? []) {
      assert.ok(c.headerStart >= prev);
      check(c, p.bodyStart, p.end);
      prev = c.end;
    }
    if (p.message) check(p.message.part, p.bodyStart, p.end);
  };
  for (let i = 0; i < 2000; i++) {
    let b = seeds[rnd(seeds.length)];
    for (let k = 1 + rnd(6); k > 0; k--) {
      const at = rnd(b.length + 1);
      const cut = rnd(3) === 0 ? rnd(30) : 0;
      b = Buffer.concat([b.subarray(0, at), Buffer.from(bits[rnd(bits.length)], 'latin1'), b.subarray(Math.min(b.length, at + cut))]);
    }
    const root = parseMessage(b);
    check(root, 0, b.length);
    formatBodystructure(root, true);
    formatEnvelope(buildEnvelope(b, root));
    decodedText(b, root);
    findSection(root, [1 + rnd(3), 1 + rnd(3)]);
  }
});

describe('parameters and header decoding', () => {
  const root = parseMessage(fixture('rfc2047-2231.eml'));
  const [p1, p2, p3] = root.children!;

  test('RFC 2231 continuations and charsets decoded', () => {
    assert.deepEqual(p1.params, [['charset', 'iso-8859-1']]);
    assert.deepEqual(p2.params, [['name', '€ rates.txt']]);
    assert.deepEqual(p2.disposition, { type: 'attachment', params: [['size', '42'], ['filename', '€ very long file name.txt']] });
    // charset*=us-ascii'en' is an empty value in US-ASCII (RFC 2231 4)
    assert.deepEqual(p3.params, [['charset', ''], ['title', 'This is ***fun***']]);
  });

  test('RFC 2047 words in a parameter value are decoded', () => {
    assert.deepEqual(p3.disposition?.params, [['filename', 'élève.txt']]);
  });

  test('BODYSTRUCTURE keeps the parameters as sent (continuations joined)', () => {
    assert.deepEqual(p2.wire.params, [['name*', "utf-8''%E2%82%AC%20rates.txt"]]);
    assert.deepEqual(p2.wire.disposition?.params, [['size', '42'], ['filename*', "utf-8''%E2%82%AC%20very%20long%20file name.txt"]]);
  });

  test('decodeHeaderValue: RFC 2047, adjacent words joined, charsets', () => {
    const raw = fixture('rfc2047-2231.eml');
    const h = getHeaders(raw, root);
    const value = (n: string): Buffer => h.find((x) => x.name.toLowerCase() === n)!.value;
    assert.equal(decodeHeaderValue(value('subject')), 'Grüße aus Köln and more');
    assert.equal(decodeHeaderValue(value('from')), 'Keld Jørn Simonsen <keld@dkuug.dk>');
    assert.equal(decodeHeaderValue(value('to')), 'Привет <privet@example.ru>');
    assert.equal(decodeHeaderValue('no words here'), 'no words here');
  });

  test('getHeaders: unfolded values, duplicates kept, lines without a colon skipped', () => {
    const raw = fixture('headers-edge.eml');
    const h = getHeaders(raw, parseMessage(raw));
    assert.deepEqual(
      h.map((x) => x.name),
      ['Received', 'From', 'Subject', 'Content-Type', 'Content-Type', 'content-transfer-encoding', 'Content-Description', 'Content-Description', 'Content-ID', 'Message-ID', 'Date'],
    );
    assert.equal(h[2].value.toString(), 'folded\tsubject   with  spaces\t');
    assert.equal(h[9].value.toString(), ' <folded-id@example.com>');
  });
});

describe('envelope', () => {
  test('group addresses, routes, comments as names (RFC 5322 3.4)', () => {
    const raw = fixture('group-addresses.eml');
    const env = buildEnvelope(raw, parseMessage(raw));
    assert.deepEqual(env.to, [
      { name: null, adl: null, mailbox: 'A Group', host: null },
      { name: 'Ed Jones', adl: null, mailbox: 'c', host: 'a.test' },
      { name: null, adl: null, mailbox: 'joe', host: 'where.test' },
      { name: 'John', adl: null, mailbox: 'jdoe', host: 'one.test' },
      { name: null, adl: null, mailbox: null, host: null },
    ]);
    assert.deepEqual(env.cc, [
      { name: null, adl: null, mailbox: 'Undisclosed recipients', host: null },
      { name: null, adl: null, mailbox: null, host: null },
    ]);
    assert.deepEqual(env.bcc?.[0], { name: null, adl: '@route1,@route2', mailbox: 'user', host: 'host.example' });
    assert.equal(env.replyTo?.[0].name, 'Mary Smith: Personal Account');
    assert.equal(
      formatEnvelope(env),
      '("Fri, 04 Aug 2023 08:00:00 -0700" "groups" (("Joe Q. Public" NIL "john.q.public" "example.com")) ' +
        '(("Michael Jones" NIL "mjones" "machine.example")) (("Mary Smith: Personal Account" NIL "smith" "home.example")) ' +
        '((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)) ' +
        '((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)) ' +
        '((NIL "@route1,@route2" "user" "host.example")("Pete" NIL "pete" "silly.test")) NIL "<5678.21-Nov-1997@example.com>")',
    );
  });

  test('sender and reply-to default to from; raw (undecoded) values', () => {
    const raw = fixture('rfc2047-2231.eml');
    const env = buildEnvelope(raw, parseMessage(raw));
    assert.equal(env.subject, '=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_K=C3=B6ln?= and more');
    assert.deepEqual(env.sender, env.from);
    assert.deepEqual(env.replyTo, env.from);
    assert.equal(env.from?.[0].name, '=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=');
  });

  test('folded subject: kept with its line break, sent as a literal with white space collapsed', () => {
    const raw = fixture('bare-lf.eml');
    const env = buildEnvelope(raw, parseMessage(raw));
    assert.equal(env.subject, 'bare LF\n folded subject');
    assert.ok(formatEnvelope(env).startsWith('(NIL {22}\r\nbare LF folded subject ((NIL NIL "lf" "example.com"))'));
  });
});

describe('BODY and BODYSTRUCTURE (RFC 9051 7.5.2)', () => {
  test('the RFC 9051 7.5.2 example (Dovecot prints a plain text top part in lower case)', () => {
    const root = parseMessage(fixture('rfc9051-example.eml'));
    const rfc = '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)';
    assert.equal(formatBodystructure(root, false).toUpperCase(), rfc);
    assert.equal(formatBodystructure(root, true), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3028 92 NIL NIL NIL NIL)');
  });

  test('case as in the message otherwise', () => {
    const root = parseMessage(normalizeLineEndings(fixture('top-upper-utf8.eml')));
    assert.equal(formatBodystructure(root, false), '("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "8BIT" 4 1)');
  });

  test('multipart with extension data; single parts with md5, disposition, language, location', () => {
    const root = parseMessage(fixture('alt-in-mixed.eml'));
    assert.equal(
      formatBodystructure(root, false),
      '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 26 1)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0) "alternative")' +
        '("application" "pdf" ("name" "report.pdf") "<part3@example.com>" "The report" "base64" 118) "mixed")',
    );
    assert.equal(
      formatBodystructure(root, true),
      '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 26 1 NIL NIL NIL NIL)' +
        '("text" "html" ("charset" "utf-8") NIL NIL "7bit" 18 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)' +
        '("application" "pdf" ("name" "report.pdf") "<part3@example.com>" "The report" "base64" 118 "Q2hlY2sgSW50ZWdyaXR5IQ==" ' +
        '("attachment" ("filename" "report.pdf")) ("en" "de-CH") "http://example.com/report.pdf") "mixed" ("boundary" "outer") NIL NIL NIL)',
    );
  });

  test('message/rfc822: envelope, body, lines', () => {
    const root = parseMessage(fixture('rfc822-attach.eml'));
    assert.equal(
      formatBodystructure(root.children![1], true),
      '("message" "rfc822" NIL NIL NIL "7bit" 352 ("Wed, 02 Aug 2023 11:00:00 +0200" "Fwd: the inner one" ' +
        '(("Inner Sender" NIL "inner" "example.org")) (("Inner Sender" NIL "inner" "example.org")) (("Inner Sender" NIL "inner" "example.org")) ' +
        '((NIL NIL "outer" "example.com")) NIL NIL NIL "<inner@example.org>") ' +
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 17 0 NIL NIL NIL NIL) ' +
        '"alternative" ("boundary" "in-b") NIL NIL NIL) 17 NIL ("inline" NIL) NIL NIL)',
    );
  });

  test('empty multipart', () => {
    const root = parseMessage(fixture('empty-multipart.eml'));
    assert.equal(formatBodystructure(root, false), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")');
  });

  test('message/global: a basic part for IMAP4rev1, a message for IMAP4rev2', () => {
    const raw = normalizeLineEndings(fixture('case-edge.eml'));
    const root = parseMessage(raw);
    const g = root.children![2];
    assert.equal(formatBodystructure(g, false), '("message" "global" NIL NIL NIL "7bit" 25)');
    assert.equal(
      formatBodystructure(g, false, { messageGlobal: true }),
      '("message" "global" NIL NIL NIL "7bit" 25 (NIL "g" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0) 2)',
    );
    assert.equal(sectionBytes(raw, root, [3, 1])?.toString(), 'Subject: g\r\n\r\nglobal body');
    assert.equal(sectionBytes(raw, root, [3, 1], '', { messageGlobal: true })?.toString(), 'global body');
  });
});

describe('section addressing (RFC 9051 6.4.5)', () => {
  const raw = fixture('rfc822-attach.eml');
  const root = parseMessage(raw);
  const text = (path: number[], spec: '' | 'MIME' | 'HEADER' | 'TEXT' = ''): string | undefined =>
    sectionBytes(raw, root, path, spec)?.toString('latin1');

  test('parts of a multipart, into an embedded message, MIME/HEADER/TEXT', () => {
    assert.equal(text([1]), 'see attached');
    assert.equal(text([1, 1]), 'see attached'); // ".1" of a leaf in a multipart is itself
    assert.equal(text([2, 1]), 'inner plain');
    assert.equal(text([2, 2, 1]), '<b>inner html</b>');
    assert.equal(text([2], 'MIME'), 'Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n');
    assert.ok(text([2], 'HEADER')?.startsWith('From: Inner Sender'));
    assert.ok(text([2], 'TEXT')?.startsWith('--in-b\r\n'));
    assert.equal(text([1], 'HEADER'), undefined); // not a message
    assert.equal(text([3]), undefined);
    assert.equal(text([0]), undefined);
    assert.equal(text([], 'HEADER'), raw.toString('latin1', 0, root.bodyStart));
  });

  test('a single-part message has part 1 and nothing below it', () => {
    const r = fixture('simple-text.eml');
    const p = parseMessage(r);
    assert.equal(findSection(p, [1]), p);
    assert.equal(findSection(p, [1, 1]), null);
    assert.equal(findSection(p, [2]), null);
  });

  test('top-level message/rfc822: part 1 is the embedded message, 1.1 its body', () => {
    const r = fixture('rfc822-top.eml');
    const p = parseMessage(r);
    assert.ok(sectionBytes(r, p, [1])?.toString().startsWith('From: inner@example.com'));
    assert.equal(sectionBytes(r, p, [1, 1])?.toString(), 'inner body\r\n');
    assert.equal(sectionBytes(r, p, [1, 1, 1]), null);
  });
});

describe('decodedText', () => {
  test('quoted-printable and charsets; alternative uses text/plain', () => {
    const raw = fixture('alt-in-mixed.eml');
    assert.equal(decodedText(raw, parseMessage(raw)), 'Café report\r\nline two');
  });

  test('latin-1 quoted-printable, base64, 8bit, embedded messages', () => {
    const r1 = fixture('rfc2047-2231.eml');
    assert.equal(decodedText(r1, parseMessage(r1)), 'Grüße\nabc');
    const r2 = crlf('Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n5+nr\n');
    assert.equal(decodedText(r2, parseMessage(r2)), 'çéë');
    const r3 = fixture('binary-8bit.eml');
    assert.equal(decodedText(r3, parseMessage(r3)), 'Grüße, Jörg');
    const r4 = fixture('rfc822-attach.eml');
    assert.equal(decodedText(r4, parseMessage(r4)), 'see attached\ninner plain');
  });
});

describe('IMAP strings', () => {
  const cases: [string | null, string, { utf8?: boolean }?][] = [
    [null, 'NIL'],
    ['', '""'],
    ['plain', '"plain"'],
    ['a "quoted" \\ word', '"a \\"quoted\\" \\\\ word"'],
    ['""""""', '{6}\r\n""""""'], // more than four quoted-specials: a literal (Dovecot)
    ['two\r\nlines', '{10}\r\ntwo\r\nlines'],
    ['nul\0', '{4}\r\nnul\0'],
    ['Grüße', '{7}\r\nGrüße'],
    ['Grüße', '"Grüße"', { utf8: true }],
    ['x'.repeat(1001), `{1001}\r\n${'x'.repeat(1001)}`],
    ['x'.repeat(1000), `"${'x'.repeat(1000)}"`],
    ['é'.repeat(501), `{1002}\r\n${'é'.repeat(501)}`, { utf8: true }], // 1002 octets
  ];
  for (const [input, want, opts] of cases) {
    test(`imapString ${JSON.stringify(input).slice(0, 30)}${opts ? ' utf8' : ''}`, () => {
      assert.equal(imapString(input, opts), want);
    });
  }
  test('a Buffer is taken as UTF-8', () => assert.equal(imapString(Buffer.from('ok')), '"ok"'));
  test('strings for humans', () => {
    assert.equal(imapStringForHumans('Hello world'), '"Hello world"');
    assert.equal(imapStringForHumans('  '), '""');
    assert.equal(imapStringForHumans('a\n\tb  c '), '{5}\r\na b c');
    assert.equal(imapStringForHumans('say "hi"'), '{8}\r\nsay "hi"');
  });
});

describe('line endings and size', () => {
  test('normalizeLineEndings', () => {
    assert.equal(normalizeLineEndings(Buffer.from('a\nb\r\nc\rd\n')).toString(), 'a\r\nb\r\nc\rd\r\n');
    assert.equal(normalizeLineEndings(Buffer.from('\n\n')).toString(), '\r\n\r\n');
    const same = Buffer.from('a\r\n');
    assert.equal(normalizeLineEndings(same), same);
  });

  test('a 25 MB message parses in well under a second', () => {
    const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n';
    const big = Buffer.alloc(25 * 1024 * 1024, line);
    const text = Buffer.concat([crlf('From: a@b\nSubject: big\n\n'), big]);
    const b64 = Buffer.alloc(25 * 1024 * 1024, 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n');
    const mixed = Buffer.concat([
      crlf('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n--x\nContent-Transfer-Encoding: base64\n\n'),
      b64,
      crlf('\n--x--\n'),
    ]);
    const dashes = Buffer.concat([
      crlf('Content-Type: multipart/mixed; boundary=x\n\n--x\n\n'),
      Buffer.alloc(25 * 1024 * 1024, '--y\r\n'),
      crlf('--x--\n'),
    ]);
    for (const raw of [text, mixed, dashes]) {
      const t0 = performance.now();
      const root = parseMessage(raw);
      const ms = performance.now() - t0;
      assert.ok(ms < 800, `took ${ms.toFixed(0)} ms`);
      assert.equal(allParts(root).at(-1)!.end > 25 * 1024 * 1024, true);
    }
  });
});
