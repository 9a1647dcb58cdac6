/** Sequence sets against the selected view (RFC 9051 6.4.x; RFC 5182 `$`). Never expands `1:*` needlessly. */
import { clampRanges, resolveSequenceSet, SequenceSetError, type NumberRanges, type SequenceSet } from '../../lib/imap/sequence-set.js';
import { rangesFromNumbers } from '../../lib/imap/sequence-set.js';
import { ImapBad } from './errors.js';
import type { MailboxView } from './mailbox-view.js';

/** UIDs (ascending, in the view) named by a sequence set of message numbers or UIDs. */
export function resolveUids(view: MailboxView, set: SequenceSet, uid: boolean): number[] {
  try {
    if (uid) {
      const ranges = resolveSequenceSet(set, { star: view.lastUid, saved: view.saved });
      return view.uidsIn(ranges);
    }
    const saved = set.saved ? seqRangesOf(view, view.saved) : undefined;
    const ranges = clampRanges(resolveSequenceSet(set, { star: view.exists, saved }), view.exists);
    if (set.ranges.length === 0 && !set.saved) return [];
    // RFC 9051 6.4.x: a message number above EXISTS is an error (except `*`, already resolved above).
    for (const r of set.ranges) {
      for (const n of [r.start, r.end]) if (typeof n === 'number' && n > view.exists) throw new ImapBad('Invalid message sequence number');
    }
    return view.uidsOfSeqs(ranges);
  } catch (e) {
    if (e instanceof SequenceSetError) throw new ImapBad(e.message);
    throw e;
  }
}

/** Message-number ranges of UID ranges (members of the view only). */
export function seqRangesOf(view: MailboxView, uidRanges: NumberRanges): NumberRanges {
  return rangesFromNumbers(view.uidsIn(uidRanges).map((u) => view.seqOf(u)));
}
