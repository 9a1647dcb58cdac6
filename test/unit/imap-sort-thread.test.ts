/** RFC 5256 base subject (2.1), SORT order (3), THREAD=REFERENCES and ORDEREDSUBJECT (3), response format (4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSubjectOfField, extractBaseSubject, formatThreads, sortMessages, threadOrderedSubject, threadReferences } from '../../src/protocols/imap/sort-thread.js';
import type { SortData } from '../../src/storage/types.js';

test('RFC 5256 2.1 base subject: every step as a table', () => {
  const table: Array<[string, string, boolean]> = [
    // [subject, base, reply-or-forward]
    ['hello', 'hello', false],
    // (1) tabs and continuations to space, runs collapsed
    ['hello\t  world', 'hello world', false],
    ['hello\r\n world', 'hello world', false],
    // (2) subj-trailer "(fwd)" / WSP, repeated
    ['hello (fwd)', 'hello', true],
    ['hello (FWD) (fwd)  ', 'hello', true],
    ['hello(fwd)', 'hello', true],
    // (3) subj-leader: re / fw / fwd, *WSP, optional blob, ":"
    ['Re: hello', 'hello', true],
    ['RE:hello', 'hello', true],
    ['Fw: hello', 'hello', true],
    ['FWD: hello', 'hello', true],
    ['re : hello', 'hello', true],
    ['Re[2]: hello', 'hello', true],
    ['Re [2] : hello', 'hello', true],
    ['Re: Re: Fwd: hello', 'hello', true],
    ['[list] Re: hello', 'hello', true],
    ['[a][b] Re: hello', 'hello', true],
    ['Reply: hello', 'Reply: hello', false],
    ['Ref: hello', 'Ref: hello', false],
    ['   hello', 'hello', false],
    // (4) subj-blob removed only when a non-empty subj-base remains
    ['[list] hello', 'hello', false],
    ['[list]hello', 'hello', false],
    ['[list]', '[list]', false],
    ['[a] [b]', '[b]', false],
    ['[list] [other] Re: hi', 'hi', true],
    ['[list]   ', '[list]', false],
    // (5) 3 and 4 repeated
    ['[x] Re: [y] Fwd: hello', 'hello', true],
    // (6) [fwd: ...] wrapper, then back to (2)
    ['[fwd: hello]', 'hello', true],
    ['[Fwd: Re: hello (fwd)]', 'hello', true],
    ['[fwd: [fwd: hello]]', 'hello', true],
    ['Re: [fwd: hello] ', 'hello', true],
    ['[fwd: hello', '[fwd: hello', false],
    ['[fwd:]', '', true],
    // not leaders
    ['hello re: world', 'hello re: world', false],
    ['', '', false],
    ['Re:', '', true],
  ];
  for (const [subject, base, rf] of table) {
    const got = extractBaseSubject(subject);
    assert.equal(got.base, base, JSON.stringify(subject));
    assert.equal(got.replyOrForward, rf, `${JSON.stringify(subject)} reply/forward`);
  }
});

test('RFC 5256 2.1 (1): RFC 2047 encoded-words decoded before extraction', () => {
  assert.deepEqual(baseSubjectOfField('=?UTF-8?Q?Re:_caf=C3=A9?='), { base: 'café', replyOrForward: true });
  assert.deepEqual(baseSubjectOfField('Re: =?ISO-8859-1?Q?Gr=FC=DFe?= (fwd)'), { base: 'Grüße', replyOrForward: true });
  assert.deepEqual(baseSubjectOfField('=?utf-8?b?W2xpc3RdIGhlbGxv?='), { base: 'hello', replyOrForward: false });
});

let nextUid = 1;
function msg(p: Partial<SortData> & { subject?: string }): SortData {
  return {
    uid: p.uid ?? nextUid++,
    internalDate: p.internalDate ?? 0,
    size: p.size ?? 100,
    sentDate: p.sentDate === undefined ? null : p.sentDate,
    subject: p.subject ?? '',
    sortFrom: p.sortFrom ?? '',
    sortTo: p.sortTo ?? '',
    sortCc: p.sortCc ?? '',
    messageId: p.messageId === undefined ? null : p.messageId,
    references: p.references ?? [],
  };
}

const uids = (list: SortData[]) => list.map((d) => d.uid);

test('RFC 5256 3 SORT: keys, REVERSE, sent date falls back to INTERNALDATE, ties in mailbox order, i;ascii-casemap', () => {
  const a = msg({ uid: 1, subject: 'Re: beta', sentDate: 3000, internalDate: 10, size: 30, sortFrom: 'zed@x', sortTo: 'b@x', sortCc: '' });
  const b = msg({ uid: 2, subject: 'alpha', sentDate: null, internalDate: 2000, size: 10, sortFrom: 'amy@x', sortTo: 'b@x', sortCc: 'c@x' });
  const c = msg({ uid: 3, subject: '[list] Beta', sentDate: 1000, internalDate: 5, size: 20, sortFrom: '_under@x', sortTo: 'a@x', sortCc: 'a@x' });
  const data = [a, b, c];
  assert.deepEqual(uids(sortMessages(data, [{ key: 'DATE', reverse: false }])), [3, 2, 1]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'ARRIVAL', reverse: false }])), [3, 1, 2]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'SIZE', reverse: true }])), [1, 3, 2]);
  // Base subjects "beta", "alpha", "Beta": casemap equal -> mailbox order among the two betas.
  assert.deepEqual(uids(sortMessages(data, [{ key: 'SUBJECT', reverse: false }])), [2, 1, 3]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'SUBJECT', reverse: false }, { key: 'DATE', reverse: true }])), [2, 1, 3]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'SUBJECT', reverse: false }, { key: 'DATE', reverse: false }])), [2, 3, 1]);
  // i;ascii-casemap compares upper-cased: "_" (0x5F) sorts after "Z" (0x5A).
  assert.deepEqual(uids(sortMessages(data, [{ key: 'FROM', reverse: false }])), [2, 1, 3]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'TO', reverse: false }, { key: 'SIZE', reverse: false }])), [3, 2, 1]);
  // Empty Cc sorts first (empty string).
  assert.deepEqual(uids(sortMessages(data, [{ key: 'CC', reverse: false }])), [1, 3, 2]);
  assert.deepEqual(uids(sortMessages(data, [{ key: 'CC', reverse: true }])), [2, 3, 1]);
});

function thread(data: SortData[], algo: 'REFERENCES' | 'ORDEREDSUBJECT' = 'REFERENCES'): string {
  const roots = algo === 'REFERENCES' ? threadReferences(data) : threadOrderedSubject(data);
  return formatThreads(roots, (d) => d.uid);
}

test('THREAD=REFERENCES step 1: parent/child from References, dummies for missing ids, chains and siblings', () => {
  const data = [
    msg({ uid: 1, messageId: '<a@x>', subject: 'one', sentDate: 1 }),
    msg({ uid: 2, messageId: '<b@x>', references: ['<a@x>'], subject: 'Re: one', sentDate: 2 }),
    msg({ uid: 3, messageId: '<c@x>', references: ['<a@x>', '<b@x>'], subject: 'Re: one', sentDate: 3 }),
    msg({ uid: 4, messageId: '<d@x>', references: ['<a@x>'], subject: 'Re: one', sentDate: 4 }),
    msg({ uid: 5, messageId: '<e@x>', subject: 'two', sentDate: 5 }),
  ];
  assert.equal(thread(data), '(1 (2 3)(4))(5)');
  // Message-ID comparison is case-sensitive: <A@x> is another message (a dummy, pruned).
  const d2 = [msg({ uid: 1, messageId: '<a@x>', subject: 's', sentDate: 1 }), msg({ uid: 2, messageId: '<b@x>', references: ['<A@x>'], subject: 't', sentDate: 2 })];
  assert.equal(thread(d2), '(1)(2)');
});

test('THREAD=REFERENCES step 1: duplicate Message-IDs, missing ids, loops, 1.B replaces a parent', () => {
  // The second message with <a@x> gets a unique id; the reply attaches to the first.
  const dup = [
    msg({ uid: 1, messageId: '<a@x>', subject: 'p', sentDate: 1 }),
    msg({ uid: 2, messageId: '<a@x>', subject: 'q', sentDate: 2 }),
    msg({ uid: 3, messageId: '<r@x>', references: ['<a@x>'], subject: 'r', sentDate: 3 }),
    msg({ uid: 4, messageId: null, subject: 'z', sentDate: 4 }),
  ];
  assert.equal(thread(dup), '(1 3)(2)(4)');
  // Loop: a references b, b references a -> no loop is created.
  const loop = [
    msg({ uid: 1, messageId: '<a@x>', references: ['<b@x>'], subject: 'a', sentDate: 1 }),
    msg({ uid: 2, messageId: '<b@x>', references: ['<a@x>'], subject: 'b', sentDate: 2 }),
  ];
  assert.equal(thread(loop), '(2 1)');
  // Self-reference is ignored.
  assert.equal(thread([msg({ uid: 1, messageId: '<s@x>', references: ['<s@x>'], subject: 's', sentDate: 1 })]), '(1)');
  // 1.B: a message without references has no parent even if another message's References put one above it.
  const b1 = [
    msg({ uid: 1, messageId: '<c@x>', references: ['<z@x>', '<a@x>', '<b@x>'], subject: 'c', sentDate: 3 }),
    msg({ uid: 2, messageId: '<a@x>', subject: 'a', sentDate: 1 }),
    msg({ uid: 3, messageId: '<b@x>', references: ['<a@x>'], subject: 'b', sentDate: 2 }),
  ];
  assert.equal(thread(b1), '(2 3 1)');
  // 1.B with a truncated References: the last reference wins over the link made by 1.A of an earlier message.
  const trunc = [
    msg({ uid: 1, messageId: '<p@x>', subject: 'p', sentDate: 1 }),
    msg({ uid: 2, messageId: '<q@x>', subject: 'q', sentDate: 2 }),
    msg({ uid: 3, messageId: '<x@x>', references: ['<p@x>', '<m@x>'], subject: 'x', sentDate: 3 }),
    msg({ uid: 4, messageId: '<m@x>', references: ['<q@x>'], subject: 'm', sentDate: 4 }),
  ];
  assert.equal(thread(trunc), '(1)(2 4 3)');
});

test('THREAD=REFERENCES step 3: dummies pruned; children promoted but not to the root unless only one', () => {
  // Two replies to a missing parent: a dummy root with two children.
  const two = [
    msg({ uid: 1, messageId: '<b@x>', references: ['<gone@x>'], subject: 'x', sentDate: 2 }),
    msg({ uid: 2, messageId: '<c@x>', references: ['<gone@x>'], subject: 'y', sentDate: 1 }),
  ];
  assert.equal(thread(two), '((2)(1))');
  // One reply to a missing parent: promoted to the root.
  assert.equal(thread([msg({ uid: 1, messageId: '<b@x>', references: ['<gone@x>'], subject: 'x' })]), '(1)');
  // A missing message in the middle of a chain: its children spliced in.
  const mid = [
    msg({ uid: 1, messageId: '<a@x>', subject: 'a', sentDate: 1 }),
    msg({ uid: 2, messageId: '<c@x>', references: ['<a@x>', '<gone@x>'], subject: 'c', sentDate: 2 }),
    msg({ uid: 3, messageId: '<d@x>', references: ['<a@x>', '<gone@x>'], subject: 'd', sentDate: 3 }),
  ];
  assert.equal(thread(mid), '(1 (2)(3))');
});

test('THREAD=REFERENCES step 5: threads with one base subject merged (reply/forward rules, dummies)', () => {
  // Non-reply first, reply thread later: the reply becomes a child of the original.
  const a = [
    msg({ uid: 1, messageId: '<1@x>', subject: 'Lunch', sentDate: 1 }),
    msg({ uid: 2, messageId: '<2@x>', subject: 'Re: lunch', sentDate: 2 }),
  ];
  assert.equal(thread(a), '(1 2)');
  // Reply first (older), original later: the table holds the non-reply, the reply becomes its child.
  const b = [
    msg({ uid: 1, messageId: '<1@x>', subject: 'Re: Lunch', sentDate: 1 }),
    msg({ uid: 2, messageId: '<2@x>', subject: 'lunch', sentDate: 2 }),
  ];
  assert.equal(thread(b), '(2 1)');
  // Two non-replies: a new dummy holds both.
  const c = [
    msg({ uid: 1, messageId: '<1@x>', subject: 'Lunch', sentDate: 1 }),
    msg({ uid: 2, messageId: '<2@x>', subject: '[list] lunch', sentDate: 2 }),
    msg({ uid: 3, messageId: '<3@x>', subject: 'Re: lunch', sentDate: 3 }),
  ];
  assert.equal(thread(c), '((1)(2)(3))');
  // A dummy root (two replies to a missing message) absorbs a thread with its subject.
  const d = [
    msg({ uid: 1, messageId: '<1@x>', references: ['<gone@x>'], subject: 'Re: plan', sentDate: 2 }),
    msg({ uid: 2, messageId: '<2@x>', references: ['<gone@x>'], subject: 'Re: plan', sentDate: 3 }),
    msg({ uid: 3, messageId: '<3@x>', subject: 'plan', sentDate: 1 }),
  ];
  assert.equal(thread(d), '((3)(1)(2))');
  // Two dummies with the same subject: children become siblings under one.
  const e = [
    msg({ uid: 1, messageId: '<1@x>', references: ['<g1@x>'], subject: 'Re: q', sentDate: 1 }),
    msg({ uid: 2, messageId: '<2@x>', references: ['<g1@x>'], subject: 'Re: q', sentDate: 2 }),
    msg({ uid: 3, messageId: '<3@x>', references: ['<g2@x>'], subject: 'Re: q', sentDate: 3 }),
    msg({ uid: 4, messageId: '<4@x>', references: ['<g2@x>'], subject: 'Re: q', sentDate: 4 }),
  ];
  assert.equal(thread(e), '((1)(2)(3)(4))');
  // Empty subjects are never merged.
  assert.equal(thread([msg({ uid: 1, messageId: '<1@x>', subject: '', sentDate: 1 }), msg({ uid: 2, messageId: '<2@x>', subject: 'Re:', sentDate: 2 })]), '(1)(2)');
});

test('THREAD=REFERENCES step 6: siblings by sent date (INTERNALDATE when no Date), ties by mailbox order', () => {
  const data = [
    msg({ uid: 1, messageId: '<r@x>', subject: 'root', sentDate: 1 }),
    msg({ uid: 2, messageId: '<c1@x>', references: ['<r@x>'], subject: 'x', sentDate: 50 }),
    msg({ uid: 3, messageId: '<c2@x>', references: ['<r@x>'], subject: 'y', sentDate: null, internalDate: 20 }),
    msg({ uid: 4, messageId: '<c3@x>', references: ['<r@x>'], subject: 'z', sentDate: 20 }),
    msg({ uid: 5, messageId: '<o@x>', subject: 'other', sentDate: 0 }),
  ];
  assert.equal(thread(data), '(5)(1 (3)(4)(2))');
});

test('THREAD=ORDEREDSUBJECT: grouped by base subject, children by date, threads by first date', () => {
  const data = [
    msg({ uid: 1, subject: 'b', sentDate: 5 }),
    msg({ uid: 2, subject: 'Re: a', sentDate: 3 }),
    msg({ uid: 3, subject: 'A', sentDate: 4 }),
    msg({ uid: 4, subject: 'Fwd: b', sentDate: 1 }),
    msg({ uid: 5, subject: 'a (fwd)', sentDate: 6 }),
    msg({ uid: 6, subject: 'c', sentDate: 2 }),
  ];
  assert.equal(thread(data, 'ORDEREDSUBJECT'), '(4 1)(6)(2 (3)(5))');
});
