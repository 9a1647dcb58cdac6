/**
 * Selected-state commands (RFC 9051 6.4): CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE / UID EXPUNGE
 * (RFC 4315), STORE (with UNCHANGEDSINCE, RFC 7162 3.1.3), COPY / MOVE (COPYUID, RFC 4315 / RFC 6851).
 * Every write publishes its change after commit, so other sessions on the mailbox learn of it.
 */
import { formatRanges, rangesFromNumbers } from '../../../lib/imap/sequence-set.js';
import { Flag } from '../../../storage/types.js';
import { ImapNo } from '../errors.js';
import { flagList, parseFlags } from '../fetch.js';
import { resolveUids } from '../sets.js';
import { announceKeywords } from '../updates.js';
import type { CopyCommand, ExpungeCommand, StoreCommand } from '../parser.js';
import type { ImapSession, Done } from '../session.js';

export async function runCheck(): Promise<Done> {
  return {};
}

/** Expunges `uids` (already in the view) and reports them (EXPUNGE, or VANISHED with QRESYNC). */
async function expungeAndReport(s: ImapSession, uids: number[], report: boolean): Promise<void> {
  const view = s.view!;
  if (!uids.length) return;
  const r = await s.deps.messages.expunge(view.id, uids);
  if (r.uids.length) s.deps.changes.publish({ type: 'expunge', accountId: s.account!.id, mailboxId: view.id, uids: r.uids, modseq: r.modseq });
  const seqs = view.remove(r.uids);
  if (!report) return;
  if (s.qresync) s.send(`* VANISHED ${formatRanges(rangesFromNumbers(r.uids))}\r\n`);
  else for (const n of seqs) s.send(`* ${n} EXPUNGE\r\n`);
}

async function deletedUids(s: ImapSession): Promise<number[]> {
  const view = s.view!;
  const hits = await s.deps.messages.search(view.id, { type: 'flag', mask: Flag.Deleted, set: true });
  return hits.map((h) => h.uid).filter((u) => view.has(u));
}

export async function runClose(s: ImapSession): Promise<Done> {
  if (!s.view!.readOnly) await expungeAndReport(s, await deletedUids(s), false); // RFC 9051 6.4.1: silently
  s.selectView(null);
  return {};
}

export async function runUnselect(s: ImapSession): Promise<Done> {
  s.selectView(null);
  return {};
}

export async function runExpunge(s: ImapSession, cmd: ExpungeCommand): Promise<Done> {
  const view = s.view!;
  if (view.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
  let uids = await deletedUids(s);
  if (cmd.uid && cmd.uidSet) {
    const wanted = new Set(resolveUids(view, cmd.uidSet, true));
    uids = uids.filter((u) => wanted.has(u));
  }
  await expungeAndReport(s, uids, true);
  return {};
}

export async function runStore(s: ImapSession, cmd: StoreCommand): Promise<Done> {
  const view = s.view!;
  if (view.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
  if (cmd.unchangedSince !== null) s.condstore = true;
  const uids = resolveUids(view, cmd.sequence, cmd.uid);
  const { mask, keywords } = parseFlags(cmd.flags);
  const res = await s.deps.messages.storeFlags(view.id, uids, cmd.operation, mask, keywords, cmd.unchangedSince !== null ? { unchangedSince: Number(cmd.unchangedSince) } : {});
  if (res.updated.length) {
    view.ownModseqs.add(res.modseq);
    s.deps.changes.publish({ type: 'flags', accountId: s.account!.id, mailboxId: view.id, uids: res.updated.map((u) => u.uid), modseq: res.modseq });
  }
  // A keyword new to the mailbox: FLAGS (and PERMANENTFLAGS) before the FETCH that shows it (RFC 9051 7.3.5).
  announceKeywords(s, view, res.updated.flatMap((u) => u.keywords));
  // RFC 9051 6.4.6: the new flags unless .SILENT; RFC 7162 3.1.3: with CONDSTORE, MODSEQ too (even .SILENT).
  const report = [...res.updated, ...(cmd.unchangedSince !== null ? [] : res.unchanged)].sort((a, b) => a.uid - b.uid);
  const changed = new Set(res.updated.map((u) => u.uid));
  for (const u of report) {
    if (cmd.silent && !(s.condstore && changed.has(u.uid))) continue;
    const seq = view.seqOf(u.uid);
    const items: string[] = [];
    if (!cmd.silent) items.push(`FLAGS ${flagList(u.flags, u.keywords, !s.rev2 && view.isRecent(u.uid))}`);
    if (cmd.uid || s.qresync) items.unshift(`UID ${u.uid}`);
    if (s.condstore) items.push(`MODSEQ (${u.modseq})`);
    s.send(`* ${seq} FETCH (${items.join(' ')})\r\n`);
  }
  if (res.failed.length) {
    const nums = cmd.uid ? res.failed : res.failed.map((u) => view.seqOf(u));
    return { code: `MODIFIED ${formatRanges(rangesFromNumbers(nums))}`, text: 'Conditional STORE failed for some messages' };
  }
  return {};
}

export async function runCopy(s: ImapSession, cmd: CopyCommand): Promise<Done> {
  const view = s.view!;
  const move = cmd.name === 'MOVE';
  if (move && view.readOnly) throw new ImapNo('READ-ONLY', 'Mailbox is read-only');
  const dst = await s.deps.mailboxes.get(s.account!.id, cmd.mailbox);
  if (!dst) throw new ImapNo('TRYCREATE', 'No such mailbox');
  const uids = resolveUids(view, cmd.sequence, cmd.uid);
  if (!uids.length) return { text: `${cmd.name} completed, nothing to do` };
  const r = await s.deps.messages.copy(view.id, uids, dst.id, { move });
  if (!r.ok) throw r.reason === 'over-quota' ? new ImapNo('OVERQUOTA', 'Quota exceeded') : new ImapNo('TRYCREATE', 'No such mailbox');
  const acc = s.account!.id;
  if (r.pairs.length) {
    s.deps.changes.publish({ type: 'append', accountId: acc, mailboxId: dst.id, uid: r.pairs[r.pairs.length - 1]![1], modseq: r.modseq });
    // For server-wide consumers (spam learning on moves into/out of Junk); views use append/expunge.
    s.deps.changes.publish({ type: 'move', accountId: acc, mailboxId: dst.id, fromMailboxId: view.id, toMailboxId: dst.id, uids: r.pairs.map((p) => p[0]), newUids: r.pairs.map((p) => p[1]), modseq: r.modseq, copy: !move });
  }
  // RFC 4315 3: source and destination UID sets in corresponding order.
  const code = r.pairs.length ? `COPYUID ${r.uidValidity} ${r.pairs.map((p) => p[0]).join(',')} ${r.pairs.map((p) => p[1]).join(',')}` : undefined;
  if (!move) return { code, text: 'COPY completed' };
  const moved = r.pairs.map((p) => p[0]);
  if (moved.length && r.expungeModseq) s.deps.changes.publish({ type: 'expunge', accountId: acc, mailboxId: view.id, uids: moved, modseq: r.expungeModseq });
  // RFC 6851 4.3: COPYUID in an untagged OK before the expunges.
  if (code) s.send(`* OK [${code}] Moved\r\n`);
  const seqs = view.remove(moved);
  if (s.qresync) s.send(`* VANISHED ${formatRanges(rangesFromNumbers(moved))}\r\n`);
  else for (const n of seqs) s.send(`* ${n} EXPUNGE\r\n`);
  return { text: 'MOVE completed' };
}
