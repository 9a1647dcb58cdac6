/**
 * The selected mailbox as one session sees it (RFC 9051 7.5.1, RFC 7162 3.2.10):
 * - `uids` is the session's message list, ascending; sequence number = index + 1. It changes only at
 *   moments the session chooses: new messages are announced (EXISTS) after any command or during IDLE;
 *   expunges by other sessions are held in `pendingExpunges` and reported only when EXPUNGE/VANISHED may
 *   be sent (never during FETCH, STORE, SEARCH; RFC 9051 7.5.1), so sequence numbers stay stable meanwhile.
 * - flag changes by other sessions are reported as untagged FETCH FLAGS at the next opportunity.
 * - \Recent (IMAP4rev1 only): the UIDs in `recent` are recent for this session (claimed in storage, so each
 *   message is recent in one session only, RFC 3501 2.3.2).
 * Change events arrive from the ChangeBus synchronously (note*); the session calls takeUpdates().
 */
import { rangesHas, rangesUnion, sortedIndexSpans, type NumberRanges } from '../../lib/imap/sequence-set.js';
import type { Mailbox } from '../../storage/types.js';

export class MailboxView {
  uids: number[];
  /** A newer message may exist: look for UIDs above the last one at the next opportunity. */
  appendsPending = false;
  readonly pendingExpunges = new Set<number>();
  readonly pendingFlags = new Set<number>();
  /** MODSEQs produced by this session's own STORE: their flag events need no untagged FETCH. */
  readonly ownModseqs = new Set<number>();
  /** RFC 5182 SEARCHRES: the saved result, as UIDs. */
  saved: NumberRanges = [];
  /** Keywords announced in FLAGS (RFC 9051 7.3.5), lower-cased -> spelling shown; grows only (updates.ts). */
  readonly keywords = new Map<string, string>();

  constructor(
    public mailbox: Mailbox,
    readonly readOnly: boolean,
    uids: number[],
    public recent: NumberRanges,
    public highestModseq: number,
  ) {
    this.uids = uids;
  }

  isRecent(uid: number): boolean {
    return rangesHas(this.recent, uid);
  }

  addRecent(from: number, to: number): void {
    if (from <= to) this.recent = rangesUnion(this.recent, [[from, to]]);
  }

  get recentCount(): number {
    let n = 0;
    for (const [from, to] of sortedIndexSpans(this.uids, this.recent)) n += to - from;
    return n;
  }

  get id(): number {
    return this.mailbox.id;
  }

  get exists(): number {
    return this.uids.length;
  }

  get lastUid(): number {
    return this.uids.length ? this.uids[this.uids.length - 1]! : 0;
  }

  /** 1-based sequence number of a UID, or 0 when not in the view. */
  seqOf(uid: number): number {
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.uids[mid]!;
      if (v < uid) lo = mid + 1;
      else if (v > uid) hi = mid - 1;
      else return mid + 1;
    }
    return 0;
  }

  has(uid: number): boolean {
    return this.seqOf(uid) > 0;
  }

  /** UIDs of the members of sequence-number ranges (already clamped to 1..exists). */
  uidsOfSeqs(ranges: NumberRanges): number[] {
    const out: number[] = [];
    for (const [lo, hi] of ranges) for (let s = lo; s <= hi && s <= this.uids.length; s++) out.push(this.uids[s - 1]!);
    return out;
  }

  /** UIDs in the view that are members of UID ranges. */
  uidsIn(ranges: NumberRanges): number[] {
    const out: number[] = [];
    for (const [from, to] of sortedIndexSpans(this.uids, ranges)) for (let i = from; i < to; i++) out.push(this.uids[i]!);
    return out;
  }

  noteAppend(): void {
    this.appendsPending = true;
  }

  noteExpunge(uids: number[]): void {
    for (const u of uids) if (this.has(u)) this.pendingExpunges.add(u);
  }

  noteFlags(uids: number[], modseq: number): void {
    if (this.ownModseqs.has(modseq)) return;
    for (const u of uids) if (this.has(u) && !this.pendingExpunges.has(u)) this.pendingFlags.add(u);
  }

  /** Add announced new UIDs (all above lastUid). */
  addUids(uids: number[]): void {
    for (const u of uids) if (u > this.lastUid) this.uids.push(u);
  }

  /**
   * Removes UIDs from the view; returns their sequence numbers in the order EXPUNGE responses must be
   * sent (each number valid at the moment it is sent: descending order keeps the lower ones unchanged).
   */
  remove(uids: Iterable<number>): number[] {
    const seqs: number[] = [];
    for (const u of uids) {
      const s = this.seqOf(u);
      if (s) seqs.push(s);
      this.pendingExpunges.delete(u);
      this.pendingFlags.delete(u);
    }
    seqs.sort((a, b) => b - a);
    const drop = new Set(seqs);
    if (drop.size) this.uids = this.uids.filter((_, i) => !drop.has(i + 1));
    return seqs;
  }
}
