/**
 * Untagged updates of the selected mailbox (RFC 9051 7.5.1, 7.4; RFC 7162 3.2.10 VANISHED with QRESYNC):
 * expunges first (only when allowed), then new messages (EXISTS, RECENT for IMAP4rev1), then flag changes
 * made by other sessions (FETCH with UID, FLAGS and, with CONDSTORE, MODSEQ).
 * A keyword not yet announced (set by any session, or on a new message) first produces an untagged FLAGS and,
 * read-write, PERMANENTFLAGS with the grown list (RFC 9051 7.3.5: FLAGS may be sent whenever it changes;
 * Dovecot does the same), so a client never sees a FETCH FLAGS with a keyword missing from FLAGS.
 */
import { formatRanges, rangesFromNumbers } from '../../lib/imap/sequence-set.js';
import { MAX_UINT32 } from '../../lib/imap/sequence-set.js';
import { flagList } from './fetch.js';
import type { ImapSession } from './session.js';
import type { MailboxView } from './mailbox-view.js';

export const SYSTEM_FLAGS = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';

/** The FLAGS and PERMANENTFLAGS responses for the view's announced keywords (RFC 9051 7.3.5, 7.1). */
export function sendFlagsResponses(s: ImapSession, v: MailboxView): void {
  const kw = [...v.keywords.values()];
  const list = [SYSTEM_FLAGS, ...kw].join(' ');
  s.send(`* FLAGS (${list})\r\n`);
  s.send(`* OK [PERMANENTFLAGS ${v.readOnly ? '()' : `(${list} \\*)`}] Flags permitted\r\n`);
}

/** Records keywords; true when one was not announced before. */
export function learnKeywords(v: MailboxView, keywords: Iterable<string>): boolean {
  let grew = false;
  for (const k of keywords) {
    const l = k.toLowerCase();
    if (v.keywords.has(l)) continue;
    v.keywords.set(l, k);
    grew = true;
  }
  return grew;
}

/** Sends FLAGS/PERMANENTFLAGS when `keywords` holds one not announced yet. */
export function announceKeywords(s: ImapSession, v: MailboxView, keywords: Iterable<string>): void {
  if (learnKeywords(v, keywords)) sendFlagsResponses(s, v);
}

export async function sendUpdates(s: ImapSession, allowExpunge: boolean): Promise<void> {
  const v = s.view;
  if (!v) return;
  const { messages, mailboxes } = s.deps;
  if (allowExpunge && v.pendingExpunges.size) {
    const uids = [...v.pendingExpunges];
    const seqs = v.remove(uids);
    if (s.qresync) s.send(`* VANISHED ${formatRanges(rangesFromNumbers(uids))}\r\n`);
    else for (const n of seqs) s.send(`* ${n} EXPUNGE\r\n`);
  }
  if (v.appendsPending) {
    v.appendsPending = false;
    const rows = await messages.fetch(v.id, [[v.lastUid + 1, MAX_UINT32]]);
    const fresh = rows.map((m) => m.uid);
    if (fresh.length) {
      announceKeywords(s, v, rows.flatMap((m) => m.keywords));
      const last = fresh[fresh.length - 1]!;
      if (!v.readOnly) {
        const first = await mailboxes.claimRecent(v.id, last + 1);
        v.addRecent(Math.max(first, fresh[0]!), last);
      }
      v.addUids(fresh);
      s.send(`* ${v.exists} EXISTS\r\n`);
      if (!s.rev2) s.send(`* ${v.recentCount} RECENT\r\n`);
    }
  }
  if (v.pendingFlags.size) {
    const uids = [...v.pendingFlags].sort((a, b) => a - b);
    v.pendingFlags.clear();
    const rows = await messages.fetch(v.id, rangesFromNumbers(uids));
    announceKeywords(s, v, rows.flatMap((m) => m.keywords));
    for (const m of rows) {
      const seq = v.seqOf(m.uid);
      if (!seq) continue;
      s.send(`* ${seq} FETCH (UID ${m.uid} FLAGS ${flagList(m.flags, m.keywords, !s.rev2 && v.isRecent(m.uid))}${s.condstore ? ` MODSEQ (${m.modseq})` : ''})\r\n`);
    }
  }
}
