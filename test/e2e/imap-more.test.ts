/**
 * IMAP gaps closed after the first cut: keywords in FLAGS/PERMANENTFLAGS and untagged FLAGS updates
 * (RFC 9051 6.3.2, 7.3.5), QRESYNC message sequence match data (RFC 7162 3.2.5.2), SORT/THREAD with RFC 2047
 * subjects (RFC 5256), and client flows (Thunderbird-style LIST RETURN, CHANGEDSINCE, IDLE; imapflow; imaplib).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { TestServer } from '../harness/server.js';
import { ImapClient, message } from '../harness/imap-client.js';
import { python } from '../harness/py.js';

let srv: TestServer;
const PW = 'more-secret-456';
let n = 0;

async function account(): Promise<string> {
  const addr = `m${++n}@postern.test`;
  await srv.addAccount(addr, PW);
  return addr;
}

async function session(user: string): Promise<ImapClient> {
  const c = await ImapClient.connect(srv.ports.imaps, { tls: true });
  await c.login(user, PW);
  return c;
}

before(async () => {
  srv = await TestServer.create({ listeners: ['smtp', 'imap', 'imaps'] });
  await srv.start();
});
after(async () => {
  await srv.stop();
  srv.cleanup();
});

const SYS = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';

test('FLAGS lists keywords in use; a new keyword sends FLAGS + PERMANENTFLAGS to every session (RFC 9051 7.3.5)', async () => {
  const user = await account();
  const a = await session(user);
  const b = await session(user);
  await a.append('INBOX', message({ subject: 'k1' }), '$Label1 \\Seen');
  await a.append('INBOX', message({ subject: 'k2' }), '$label1');
  let sel = await a.ok('SELECT INBOX');
  assert.ok(sel.includes(`* FLAGS (${SYS} $Label1)`), sel.join('\n'));
  assert.ok(sel.includes(`* OK [PERMANENTFLAGS (${SYS} $Label1 \\*)] Flags permitted`), sel.join('\n'));
  sel = await b.ok('EXAMINE INBOX');
  assert.ok(sel.includes(`* FLAGS (${SYS} $Label1)`));
  assert.ok(sel.includes('* OK [PERMANENTFLAGS ()] Flags permitted'));
  // A's own STORE: FLAGS first, then the FETCH.
  const st = await a.ok('STORE 1 +FLAGS (Work)');
  const fi = st.findIndex((l) => l === `* FLAGS (${SYS} $Label1 Work)`);
  assert.ok(fi >= 0, st.join('\n'));
  assert.ok(st.includes(`* OK [PERMANENTFLAGS (${SYS} $Label1 Work \\*)] Flags permitted`));
  assert.ok(st.findIndex((l) => /^\* 1 FETCH \(FLAGS \(.*Work/.test(l)) > fi);
  // No FLAGS again for a keyword already announced (any case).
  assert.ok(!(await a.ok('STORE 2 +FLAGS (WORK)')).some((l) => l.startsWith('* FLAGS')));
  // B (read-only) learns it at its next command, FLAGS before the FETCH.
  const up = await b.ok('NOOP');
  const bi = up.findIndex((l) => l.startsWith('* FLAGS'));
  assert.equal(up[bi], `* FLAGS (${SYS} $Label1 Work)`);
  assert.ok(up.findIndex((l) => /^\* 1 FETCH .*Work/.test(l)) > bi, up.join('\n'));
  // A new message with a new keyword, appended by A, reaches B in IDLE with FLAGS before EXISTS.
  const tag = await b.idle();
  await a.append('INBOX', message({ subject: 'k3' }), 'Urgent');
  const f = await b.waitFor((l) => l.startsWith('* FLAGS'));
  assert.equal(f, `* FLAGS (${SYS} $Label1 Work Urgent)`);
  await b.waitFor((l) => l === '* 3 EXISTS');
  await b.done(tag);
  // After re-SELECT the keywords come from storage.
  sel = await b.ok('SELECT INBOX');
  assert.ok(sel.includes(`* FLAGS (${SYS} $Label1 Work Urgent)`) || sel.some((l) => l.startsWith('* FLAGS') && ['$Label1', 'Work', 'Urgent'].every((k) => l.includes(k))), sel.join('\n'));
  a.close();
  b.close();
});

test('\\Recent: the first session to SELECT claims new messages, EXAMINE claims none, later arrivals go to a selected session (RFC 3501 2.3.2)', async () => {
  const user = await account();
  const a = await session(user);
  const b = await session(user);
  const c = await session(user);
  const recent = (lines: string[]) => Number(/^\* (\d+) RECENT$/m.exec(lines.join('\n'))![1]);
  for (let i = 0; i < 2; i++) assert.equal((await c.append('INBOX', message())).status, 'OK');
  assert.equal(recent(await b.ok('EXAMINE INBOX')), 2, 'EXAMINE sees them as \\Recent');
  assert.equal(recent(await a.ok('SELECT INBOX')), 2, 'EXAMINE did not claim them');
  assert.equal(recent(await b.ok('SELECT INBOX')), 0, 'claimed by the first SELECT');
  assert.equal(recent(await a.ok('SELECT INBOX')), 0, 'a session does not claim twice');
  // A message arriving while two sessions have the mailbox selected is \Recent in one of them only.
  assert.equal((await c.append('INBOX', message())).status, 'OK');
  const seen = [...(await a.ok('NOOP')), ...(await b.ok('NOOP'))].filter((l) => /^\* \d+ RECENT$/.test(l));
  assert.deepEqual(seen.map((l) => Number(l.split(' ')[1])).sort(), [0, 1], seen.join('|'));
  assert.equal(recent(await c.ok('SELECT INBOX')), 0, 'nothing left to claim');
  for (const x of [a, b, c]) x.close();
});

test('QRESYNC message sequence match data narrows VANISHED (EARLIER) (RFC 7162 3.2.5.2)', async () => {
  const user = await account();
  const c = await session(user);
  await c.ok('CREATE Q');
  for (let i = 1; i <= 10; i++) await c.append('Q', message({ subject: `q${i}` }));
  await c.ok('ENABLE QRESYNC');
  let sel = await c.ok('SELECT Q');
  const uv = /UIDVALIDITY (\d+)/.exec(sel.join('\n'))![1];
  const ms = /HIGHESTMODSEQ (\d+)/.exec(sel.join('\n'))![1];
  await c.ok('UID STORE 2,8 +FLAGS.SILENT (\\Deleted)');
  await c.ok('EXPUNGE');
  await c.ok('UNSELECT');
  // The client saw UID 2 go (its cache maps 1->1, 2->3, 4->5) but kept the older MODSEQ.
  sel = await c.ok(`SELECT Q (QRESYNC (${uv} ${ms} 1:10 (1,2,4 1,3,5)))`);
  assert.ok(sel.includes('* VANISHED (EARLIER) 8'), sel.join('\n'));
  await c.ok('UNSELECT');
  // Without match data both are reported.
  sel = await c.ok(`SELECT Q (QRESYNC (${uv} ${ms} 1:10))`);
  assert.ok(sel.includes('* VANISHED (EARLIER) 2,8'), sel.join('\n'));
  await c.ok('UNSELECT');
  // A pair that does not match (seq 2 is now UID 3, not 2): nothing narrowed from there on.
  sel = await c.ok(`SELECT Q (QRESYNC (${uv} ${ms} 1:10 (1,2 1,2)))`);
  assert.ok(sel.includes('* VANISHED (EARLIER) 2,8'), sel.join('\n'));
  await c.ok('UNSELECT');
  // Everything matched up to UID 10: nothing vanished is reported.
  sel = await c.ok(`SELECT Q (QRESYNC (${uv} ${ms} 1:10 (8 10)))`);
  assert.ok(!sel.some((l) => l.startsWith('* VANISHED')), sel.join('\n'));
  await c.ok('UNSELECT');
  // Sets of different sizes: BAD.
  const r = await c.cmd(`SELECT Q (QRESYNC (${uv} ${ms} 1:10 (1:3 1,2)))`);
  assert.equal(r.status, 'BAD');
  c.close();
});

test('SORT SUBJECT and THREAD=REFERENCES over real messages with encoded-word subjects (RFC 5256)', async () => {
  const user = await account();
  const c = await session(user);
  await c.ok('CREATE T');
  const msgs = [
    message({ subject: 'Zebra', messageId: '<z1@x>', date: 'Mon, 7 Feb 1994 10:00:00 +0000' }),
    message({ subject: '=?UTF-8?Q?Re:_=5Blist=5D_apple?=', messageId: '<a2@x>', date: 'Mon, 7 Feb 1994 12:00:00 +0000', extra: 'References: <a1@x>\r\n' }),
    message({ subject: '[list] Apple', messageId: '<a1@x>', date: 'Mon, 7 Feb 1994 11:00:00 +0000' }),
    message({ subject: '[Fwd: mango]', messageId: '<m1@x>', date: 'Mon, 7 Feb 1994 09:00:00 +0000' }),
    message({ subject: 'Re: mango', messageId: '<m2@x>', date: 'Mon, 7 Feb 1994 13:00:00 +0000', extra: 'In-Reply-To: <nothere@x> (message from <z1@x>)\r\n' }),
  ];
  for (const m of msgs) await c.append('T', m);
  await c.ok('SELECT T');
  assert.deepEqual(await c.ok('SORT (SUBJECT) UTF-8 ALL'), ['* SORT 2 3 4 5 1']);
  assert.deepEqual(await c.ok('SORT (REVERSE DATE) UTF-8 ALL'), ['* SORT 5 2 3 1 4']);
  // a1 <- a2 by References; the two mango messages merge by subject (both replies/forwards -> a dummy);
  // In-Reply-To uses only its first message-id.
  assert.deepEqual(await c.ok('THREAD REFERENCES UTF-8 ALL'), ['* THREAD ((4)(5))(1)(3 2)']);
  assert.deepEqual(await c.ok('THREAD ORDEREDSUBJECT UTF-8 ALL'), ['* THREAD (4 5)(1)(3 2)']);
  c.close();
});

test('Thunderbird-style flow: LIST RETURN (SPECIAL-USE STATUS), CHANGEDSINCE, IDLE; ID, NAMESPACE, QUOTA, STATUS=SIZE, ESEARCH/SEARCHRES, BINARY', async () => {
  const user = await account();
  const c = await session(user);
  assert.match((await c.ok('ID ("name" "Thunderbird" "version" "128.0")'))[0]!, /^\* ID \(/);
  assert.deepEqual(await c.ok('NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL']);
  await c.append('INBOX', message({ subject: 'tb1' }), '\\Seen');
  await c.append('INBOX', message({ subject: 'tb2', body: 'Zm9v\r\n', extra: 'MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n' }));
  const list = await c.ok('LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))');
  assert.ok(list.includes('* STATUS "INBOX" (MESSAGES 2 UNSEEN 1)'), list.join('\n'));
  const sent = list.find((l) => /^\* LIST \([^)]*\\Sent[^)]*\) "\/" "?Sent"?$/.test(l));
  assert.ok(sent, list.join('\n'));
  // LIST-STATUS: STATUS right after its LIST line.
  const i = list.findIndex((l) => /^\* LIST .* "?INBOX"?$/.test(l));
  assert.match(list[i + 1]!, /^\* STATUS "?INBOX"? /);
  // SPECIAL-USE selection option: only special-use mailboxes.
  const su = await c.ok('LIST (SPECIAL-USE) "" "*"');
  assert.ok(su.length >= 1 && su.every((l) => /\\(Sent|Drafts|Trash|Junk|Archive|All|Flagged)/.test(l)), su.join('\n'));
  assert.match((await c.ok('STATUS INBOX (SIZE MESSAGES HIGHESTMODSEQ)'))[0]!, /^\* STATUS "?INBOX"? \(SIZE \d+ MESSAGES 2 HIGHESTMODSEQ \d+\)$/);
  const q = await c.ok('GETQUOTAROOT INBOX');
  assert.match(q[0]!, /^\* QUOTAROOT "?INBOX"? ""$/);
  assert.match(q[1]!, /^\* QUOTA "" \(/);
  await c.ok('ENABLE CONDSTORE');
  const sel = await c.ok('SELECT INBOX (CONDSTORE)');
  const ms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.join('\n'))![1]);
  await c.ok('STORE 2 +FLAGS.SILENT (\\Flagged)');
  const changed = await c.ok(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${ms})`);
  assert.equal(changed.length, 1, changed.join('\n'));
  assert.match(changed[0]!, /^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \(\d+\)\)$/);
  // ESEARCH with SAVE, then $ in FETCH (RFC 4731, RFC 5182).
  assert.deepEqual(await c.ok('UID SEARCH RETURN (SAVE MIN COUNT) UNSEEN'), ['* ESEARCH (TAG "A' + (c as unknown as { n: number }).n + '") UID MIN 2 COUNT 1']);
  assert.match((await c.ok('UID FETCH $ (UID)'))[0]!, /^\* 2 FETCH \(UID 2\)$/);
  // BINARY (RFC 3516): the decoded content, BINARY.SIZE of the decoded octets.
  const bin = await c.ok('FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])');
  assert.match(bin.join('\n'), /BINARY\.SIZE\[1\] 3/);
  assert.match(bin.join('\n'), /BINARY\[1\] (\{3\}\r\n|"|~\{3\}\r\n)foo/);
  // IDLE: another session's STORE arrives as FETCH.
  const other = await session(user);
  await other.ok('SELECT INBOX');
  const tag = await c.idle();
  await other.ok('STORE 1 +FLAGS (\\Answered)');
  assert.match(await c.waitFor((l) => / FETCH /.test(l)), /^\* 1 FETCH \(UID 1 FLAGS \(.*\\Answered.*\) MODSEQ \(\d+\)\)$/);
  await c.done(tag);
  other.close();
  c.close();
});

test('mailbox names: modified UTF-7 for IMAP4rev1, UTF-8 after ENABLE UTF8=ACCEPT; RENAME INBOX moves its messages', async () => {
  const user = await account();
  const c = await session(user);
  await c.ok('CREATE "Entw&APw-rfe/K&APY-ln"');
  let list = await c.ok('LIST "" "Entw*"');
  assert.ok(list.includes('* LIST (\\HasChildren) "/" "Entw&APw-rfe"'), list.join('\n'));
  assert.ok(list.includes('* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/K&APY-ln"'), list.join('\n'));
  const d = await c.ok('ENABLE UTF8=ACCEPT');
  assert.deepEqual(d, ['* ENABLED UTF8=ACCEPT']);
  list = await c.ok('LIST "" "Entw*"');
  assert.ok(list.includes('* LIST (\\HasNoChildren) "/" "Entwürfe/Köln"'), list.join('\n'));
  await c.ok('SELECT "Entwürfe/Köln"');
  await c.ok('UNSELECT');
  assert.match((await c.ok('STATUS "Entwürfe" (MESSAGES)'))[0]!, /^\* STATUS "Entwürfe" \(MESSAGES 0\)$/);
  // RENAME INBOX (RFC 9051 6.3.6): messages move to the new mailbox, INBOX stays and is empty.
  await c.append('INBOX', message({ subject: 'old inbox' }));
  await c.ok('RENAME INBOX "Old Inbox"');
  assert.match((await c.ok('STATUS INBOX (MESSAGES)'))[0]!, /MESSAGES 0/);
  assert.match((await c.ok('STATUS "Old Inbox" (MESSAGES)'))[0]!, /MESSAGES 1/);
  // CREATE-SPECIAL-USE (RFC 6154 3): the attribute shows in LIST.
  await c.ok('CREATE "Later" (USE (\\Archive))');
  assert.ok((await c.ok('LIST "" "Later"')).some((l) => l.includes('\\Archive')));
  c.close();
});

test('imapflow: LIST-STATUS, SPECIAL-USE create, QUOTA, STATUS SIZE, CONDSTORE changedSince, keywords in FLAGS', async () => {
  const user = await account();
  const client = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { rejectUnauthorized: false }, auth: { user, pass: PW }, logger: false });
  await client.connect();
  try {
    const list = await client.list({ statusQuery: { messages: true, unseen: true, highestModseq: true } });
    const inbox = list.find((m) => m.path === 'INBOX');
    assert.equal(inbox?.status?.messages, 0);
    assert.ok(list.some((m) => m.specialUse === '\\Trash'));
    const created = await client.mailboxCreate('Projects');
    assert.equal(created.path, 'Projects');
    await client.append('INBOX', message({ subject: 'flow kw' }), ['$Forwarded', 'Custom1']);
    const st = await client.status('INBOX', { messages: true, size: true } as never);
    assert.equal(st.messages, 1);
    const quota = await client.getQuota('INBOX');
    assert.ok(quota && typeof quota === 'object');
    const mbox = await client.mailboxOpen('INBOX');
    assert.ok(mbox.flags.has('$Forwarded') && mbox.flags.has('Custom1'), [...mbox.flags].join(' '));
    assert.ok(mbox.permanentFlags?.has('\\*'));
    const start = mbox.highestModseq!;
    assert.ok(await client.messageFlagsAdd('1', ['Another'], { uid: true }));
    const seen: number[] = [];
    for await (const m of client.fetch('1:*', { flags: true, uid: true }, { uid: true, changedSince: start })) seen.push(m.uid);
    assert.deepEqual(seen, [1]);
  } finally {
    await client.logout();
  }
});

test('IMAP4rev1 SELECT reports the first unseen message ([UNSEEN n], RFC 3501 7.1)', async () => {
  const user = await account();
  const a = await session(user);
  await a.append('INBOX', message({ subject: 'u1' }), '\\Seen');
  await a.append('INBOX', message({ subject: 'u2' }), '\\Seen');
  await a.append('INBOX', message({ subject: 'u3' }), '');
  await a.append('INBOX', message({ subject: 'u4' }), '');
  let sel = await a.ok('SELECT INBOX');
  assert.ok(sel.includes('* OK [UNSEEN 3] First unseen'), sel.join('\n'));
  await a.ok('STORE 3 +FLAGS.SILENT (\\Seen)');
  sel = await a.ok('SELECT INBOX');
  assert.ok(sel.includes('* OK [UNSEEN 4] First unseen'), sel.join('\n'));
  await a.ok('STORE 4 +FLAGS.SILENT (\\Seen)');
  sel = await a.ok('SELECT INBOX');
  assert.ok(!sel.some((l) => l.includes('[UNSEEN')), 'no UNSEEN code when everything is seen');
});
