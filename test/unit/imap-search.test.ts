/**
 * SEARCH evaluation (src/protocols/imap/search.ts toQuery + the SQLite store's query compiler): every key of
 * RFC 9051 6.4.4, CHARSET, OR/NOT nesting, dates (INTERNALDATE by UTC day; SENT* by the Date: header's own day,
 * whatever its zone), sizes, MODSEQ (RFC 7162 3.1.5), sequence sets with "*" and "$" (RFC 5182).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Flag, type Mailbox } from '../../src/storage/types.js';
import { parseMessage } from '../../src/lib/mime/parse.js';
import { messageIndexData } from '../../src/core/message-index.js';
import { parseCommand, ImapParseError, type SearchCommand } from '../../src/protocols/imap/parser.js';
import { rawCommandFrom } from '../../src/protocols/imap/reader.js';
import { toQuery } from '../../src/protocols/imap/search.js';
import { MailboxView } from '../../src/protocols/imap/mailbox-view.js';
import { searchCharsetDecoder } from '../../src/protocols/imap/charsets.js';
import { MAX_UINT32 } from '../../src/lib/imap/sequence-set.js';

let dir: string;
let store: SqliteStore;
let mb: Mailbox;
let view: MailboxView;
let flagModseq = 0;

const MESSAGES: Array<{ raw: string; flags: number; keywords: string[]; internal: string }> = [
  {
    raw:
      'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nCc: carol@example.com\r\nBcc: dave@example.com\r\n' +
      'Subject: Quarterly report\r\nDate: Mon, 7 Feb 1994 23:30:00 -0800\r\nMessage-ID: <1@x>\r\n\r\nthe numbers are in\r\n',
    flags: Flag.Seen | Flag.Answered,
    keywords: ['$Important'],
    internal: '1994-02-07T12:00:00Z',
  },
  {
    raw:
      'From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\r\nTo: bob@example.net\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n' +
      'Date: Tue, 8 Feb 1994 00:30:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCafé au lait\r\n',
    flags: Flag.Flagged | Flag.Draft,
    keywords: [],
    internal: '1994-02-08T00:00:00Z',
  },
  {
    raw: 'From: alice@example.org\r\nTo: bob@example.net\r\nSubject: Re: Quarterly report\r\n\r\n' + 'padding line of text\r\n'.repeat(250),
    flags: Flag.Deleted,
    keywords: ['later'],
    internal: '1994-02-09T23:59:59Z',
  },
  {
    raw: 'From: zed@example.org\r\nTo: bob@example.net\r\nSubject: misc\r\nX-Custom: Hello-World\r\nDate: Thu, 10 Feb 1994 10:00:00 +0000\r\n\r\nab\r\n',
    flags: 0,
    keywords: [],
    internal: '1994-02-10T00:00:00Z',
  },
];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'postern-search-'));
  store = new SqliteStore({ dataDir: dir });
  const acc = (await store.directory.createAccount({ address: 's@postern.test', domain: 'postern.test', passwordHash: 'x', quotaBytes: 0 }, [{ name: 'INBOX', specialUse: null }]))!;
  mb = (await store.mailboxes.get(acc.id, 'INBOX'))!;
  for (const m of MESSAGES) {
    const raw = Buffer.from(m.raw, 'utf8');
    const blob = await store.blobs.put(raw);
    const [out] = await store.messages.appendMany([
      { mailboxId: mb.id, blobId: blob.id, blobSize: raw.length, prefix: Buffer.alloc(0), flags: m.flags, keywords: m.keywords, internalDate: Date.parse(m.internal), mime: parseMessage(raw), index: messageIndexData(raw, parseMessage(raw)) },
    ]);
    assert.ok(out?.ok);
  }
  // A later flag change: only message 2 has the highest MODSEQ.
  await store.messages.storeFlags(mb.id, [2], 'add', Flag.Seen, []);
  await store.messages.storeFlags(mb.id, [2], 'remove', Flag.Seen, []);
  flagModseq = (await store.messages.get(mb.id, 2))!.modseq;
  mb = (await store.mailboxes.get(acc.id, 'INBOX'))!;
  // Messages 3 and 4 are \Recent for this session.
  view = new MailboxView(mb, false, await store.messages.uids(mb.id), [[3, MAX_UINT32]], mb.highestModseq);
});

after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function parse(criteria: string | Buffer): SearchCommand {
  const line = typeof criteria === 'string' ? `a SEARCH ${criteria}` : Buffer.concat([Buffer.from('a SEARCH '), criteria]);
  return parseCommand(rawCommandFrom(line), { charsetDecoder: searchCharsetDecoder }) as SearchCommand;
}

async function search(criteria: string | Buffer): Promise<number[]> {
  const hits = await store.messages.search(mb.id, toQuery(parse(criteria).criteria, view, false));
  return hits.filter((h) => view.has(h.uid)).map((h) => h.uid);
}

test('flag keys and their negations', async () => {
  const table: Array<[string, number[]]> = [
    ['ALL', [1, 2, 3, 4]],
    ['ANSWERED', [1]],
    ['UNANSWERED', [2, 3, 4]],
    ['SEEN', [1]],
    ['UNSEEN', [2, 3, 4]],
    ['FLAGGED', [2]],
    ['UNFLAGGED', [1, 3, 4]],
    ['DELETED', [3]],
    ['UNDELETED', [1, 2, 4]],
    ['DRAFT', [2]],
    ['UNDRAFT', [1, 3, 4]],
    ['KEYWORD $important', [1]],
    ['KEYWORD later', [3]],
    ['KEYWORD nothing', []],
    ['UNKEYWORD $Important', [2, 3, 4]],
    ['RECENT', [3, 4]],
    ['NEW', [3, 4]],
    ['OLD', [1, 2]],
  ];
  for (const [q, want] of table) assert.deepEqual(await search(q), want, q);
});

test('address, subject, header, body and text keys (decoded, case-insensitive substrings)', async () => {
  const table: Array<[string, number[]]> = [
    ['FROM alice', [1, 3]],
    ['FROM "Jürgen"', [2]],
    ['FROM "jürgen"', [2]],
    ['TO bob@example.net', [1, 2, 3, 4]],
    ['CC carol', [1]],
    ['BCC dave', [1]],
    ['SUBJECT quarterly', [1, 3]],
    ['SUBJECT "Re: Quarterly"', [3]],
    ['SUBJECT "grüße aus"', [2]],
    ['SUBJECT "köln"', [2]],
    ['HEADER X-Custom hello', [4]],
    ['HEADER x-custom ""', [4]],
    ['HEADER Message-ID "<1@x>"', [1]],
    ['HEADER X-Missing ""', []],
    ['BODY numbers', [1]],
    ['BODY "café"', [2]],
    ['BODY "CAFÉ"', [2]],
    ['BODY quarterly', []],
    ['BODY ab', [4]],
    ['TEXT quarterly', [1, 3]],
    ['TEXT numbers', [1]],
    ['TEXT "padding line"', [3]],
    ['BODY ""', [1, 2, 3, 4]],
  ];
  for (const [q, want] of table) assert.deepEqual(await search(q), want, q);
});

test('CHARSET: UTF-8, US-ASCII, ISO-8859-1 literals decoded; unknown charset NO [BADCHARSET]', async () => {
  assert.deepEqual(await search('CHARSET UTF-8 SUBJECT "grüße"'), [2]);
  assert.deepEqual(await search('CHARSET US-ASCII SUBJECT report'), [1, 3]);
  const latin1 = Buffer.from('Grüße', 'latin1');
  assert.deepEqual(await search(Buffer.concat([Buffer.from(`CHARSET ISO-8859-1 SUBJECT {${latin1.length}}\r\n`), latin1])), [2]);
  const cafe = Buffer.from('café', 'latin1');
  assert.deepEqual(await search(Buffer.concat([Buffer.from(`CHARSET windows-1252 BODY {${cafe.length}}\r\n`), cafe])), [2]);
  assert.throws(
    () => parse('CHARSET X-NO-SUCH-CHARSET SUBJECT a'),
    (e: unknown) => e instanceof ImapParseError && e.kind === 'NO' && e.code === 'BADCHARSET',
  );
});

test('dates: INTERNALDATE by UTC day; SENT* by the Date: header as written (time and zone disregarded)', async () => {
  const table: Array<[string, number[]]> = [
    ['BEFORE 8-Feb-1994', [1]],
    ['ON 8-Feb-1994', [2]],
    ['ON 9-Feb-1994', [3]],
    ['SINCE 9-Feb-1994', [3, 4]],
    ['SINCE 1-Jan-2000', []],
    ['BEFORE 1-Jan-1990', []],
    // Message 1: 7 Feb 23:30 -0800 (8 Feb in UTC) is sent ON 7 Feb; message 2: 8 Feb 00:30 +0100 (7 Feb in UTC) ON 8 Feb.
    ['SENTON 7-Feb-1994', [1]],
    ['SENTON 8-Feb-1994', [2]],
    ['SENTBEFORE 8-Feb-1994', [1]],
    ['SENTSINCE 8-Feb-1994', [2, 4]],
    // No Date: header (message 3): no SENT* key matches it.
    ['SENTSINCE 1-Jan-1900', [1, 2, 4]],
    ['NOT SENTSINCE 1-Jan-1900', [3]],
  ];
  for (const [q, want] of table) assert.deepEqual(await search(q), want, q);
});

test('sizes (RFC822.SIZE, strict comparisons)', async () => {
  const sizes = (await store.messages.list(mb.id)).map((m) => m.size);
  const s3 = sizes[2]!;
  assert.deepEqual(await search('LARGER 4000'), [3]);
  assert.deepEqual(await search('SMALLER 4000'), [1, 2, 4]);
  assert.deepEqual(await search(`LARGER ${s3}`), []);
  assert.deepEqual(await search(`SMALLER ${s3}`), [1, 2, 4]);
  assert.deepEqual(await search(`LARGER ${s3 - 1}`), [3]);
  assert.deepEqual(await search(`SMALLER ${s3 + 1}`), [1, 2, 3, 4]);
});

test('OR / NOT nesting and implicit AND', async () => {
  const table: Array<[string, number[]]> = [
    ['OR SEEN FLAGGED', [1, 2]],
    ['NOT OR SEEN FLAGGED', [3, 4]],
    ['NOT NOT SEEN', [1]],
    ['OR (SEEN DELETED) (NOT OR DRAFT LARGER 4000)', [1, 4]],
    ['OR OR SEEN DRAFT DELETED', [1, 2, 3]],
    ['FROM alice NOT SUBJECT "re:"', [1]],
    ['FROM alice NOT SUBJECT re', []], // "re" is a substring of "report"
    ['(FROM alice) (UNSEEN)', [3]],
    ['NOT (FROM alice OR TO nobody CC carol)', [2, 3, 4]],
    ['OR NOT KEYWORD later UID 3', [1, 2, 3, 4]],
    ['NOT ALL', []],
  ];
  for (const [q, want] of table) assert.deepEqual(await search(q), want, q);
});

test('MODSEQ (RFC 7162 3.1.5): messages whose mod-sequence is at least the value', async () => {
  assert.deepEqual(await search(`MODSEQ ${flagModseq}`), [2]);
  assert.deepEqual(await search(`MODSEQ ${flagModseq + 1}`), []);
  assert.deepEqual(await search('MODSEQ 1'), [1, 2, 3, 4]);
  assert.deepEqual(await search(`MODSEQ "/flags/\\\\seen" all ${flagModseq}`), [2]);
});

test('sequence sets with "*" and "$", message numbers and UIDs', async () => {
  const table: Array<[string, number[]]> = [
    ['1', [1]],
    ['2:*', [2, 3, 4]],
    ['*', [4]],
    ['*:3', [3, 4]],
    ['4:2', [2, 3, 4]],
    ['1,3', [1, 3]],
    ['1:2,4', [1, 2, 4]],
    ['UID 3:*', [3, 4]],
    ['UID *', [4]],
    ['UID 10:*', [4]],
    ['UID 5:9', []],
    ['NOT UID 2:3', [1, 4]],
  ];
  for (const [q, want] of table) assert.deepEqual(await search(q), want, q);
  // "$" (RFC 5182): the saved result, as message numbers or UIDs; empty saved result matches nothing.
  view.saved = [[1, 1], [3, 3]];
  assert.deepEqual(await search('$'), [1, 3]);
  assert.deepEqual(await search('UID $'), [1, 3]);
  assert.deepEqual(await search('NOT $'), [2, 4]);
  assert.deepEqual(await search('OR $ FLAGGED'), [1, 2, 3]);
  view.saved = [];
  assert.deepEqual(await search('$'), []);
  // Message numbers follow the session's view: a message the view has not announced is not a member.
  const saved = view.uids;
  view.uids = [1, 2, 4];
  try {
    assert.deepEqual(await search('3'), [4]);
    assert.deepEqual(await search('*'), [4]);
    assert.deepEqual(await search('ALL'), [1, 2, 4]);
  } finally {
    view.uids = saved;
  }
});
