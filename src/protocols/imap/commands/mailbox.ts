/**
 * Mailbox commands of the authenticated state (RFC 9051 6.3): SELECT/EXAMINE (with CONDSTORE/QRESYNC,
 * RFC 7162 3.1.8, 3.2.5), CREATE (CREATE-SPECIAL-USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, LIST (LIST-EXTENDED
 * RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE), LSUB, STATUS (STATUS=SIZE RFC 8438), APPEND (UIDPLUS RFC 4315,
 * MULTIAPPEND RFC 3502, APPENDLIMIT RFC 7889, quota RFC 9208).
 * Names are stored with "/" as the separator; INBOX is case-insensitive and always "INBOX".
 */
import { normalizeLineEndings } from '../../../lib/mime/parse.js';
import { formatRanges, iterateRanges, rangesCount, rangesFromNumbers, rangesIntersect, MAX_UINT32, type NumberRanges } from '../../../lib/imap/sequence-set.js';
import { Flag, type Mailbox, type SpecialUse } from '../../../storage/types.js';
import { ImapBad, ImapNo } from '../errors.js';
import { MailboxView } from '../mailbox-view.js';
import { flagList, parseFlags } from '../fetch.js';
import { learnKeywords, sendFlagsResponses } from '../updates.js';
import { mailboxNameProblem } from '../parser.js';
import type { AppendCommand, CreateCommand, DeleteCommand, ListCommand, LsubCommand, RenameCommand, SelectCommand, StatusCommand, StatusItem, SubscribeCommand } from '../parser.js';
import type { ImapSession, Done } from '../session.js';

const SEP = '/';
const SPECIAL: ReadonlySet<string> = new Set(['\\Drafts', '\\Sent', '\\Junk', '\\Trash', '\\Archive', '\\All', '\\Flagged']);

function cleanName(name: string): string {
  const n = name.endsWith(SEP) ? name.slice(0, -1) : name;
  const problem = mailboxNameProblem(n);
  if (problem || n.split(SEP).some((p) => p === '')) throw new ImapNo('CANNOT', problem ?? 'Invalid mailbox name');
  return n.toUpperCase() === 'INBOX' ? 'INBOX' : n;
}

async function mustGet(s: ImapSession, name: string): Promise<Mailbox> {
  const mb = await s.deps.mailboxes.get(s.account!.id, name);
  if (!mb) throw new ImapNo('NONEXISTENT', 'No such mailbox');
  return mb;
}

async function ensureParents(s: ImapSession, name: string): Promise<void> {
  const parts = name.split(SEP);
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join(SEP);
    if (!(await s.deps.mailboxes.get(s.account!.id, parent))) await s.deps.mailboxes.create(s.account!.id, parent, null);
  }
}

export async function runSelect(s: ImapSession, cmd: SelectCommand): Promise<Done> {
  const { mailboxes, messages } = s.deps;
  if (cmd.qresync && !s.qresync) throw new ImapBad('QRESYNC is not enabled');
  const match = cmd.qresync?.seqMatch;
  if (match && rangesCount(match.seqs) !== rangesCount(match.uids)) throw new ImapBad('QRESYNC: known-sequence-set and known-uid-set differ in size');
  if (s.view) {
    s.selectView(null);
    // RFC 7162 3.2.11 / RFC 9051 7.1: the previous mailbox is closed.
    if (s.qresync || s.rev2) s.send('* OK [CLOSED] Previous mailbox closed\r\n');
  }
  const mb = await mustGet(s, cmd.mailbox);
  if (cmd.condstore || cmd.qresync) s.condstore = true;
  const readOnly = cmd.name === 'EXAMINE';
  const uids = await messages.uids(mb.id);
  const first = await mailboxes.claimRecent(mb.id, readOnly ? 0 : mb.uidNext, mb);
  const view = new MailboxView(mb, readOnly, uids, first < mb.uidNext ? [[first, MAX_UINT32]] : [], mb.highestModseq);
  // RFC 9051 6.3.2 / 7.3.5: FLAGS lists the system flags and the keywords in use; PERMANENTFLAGS adds \* (any new keyword).
  learnKeywords(view, await s.deps.extra.keywordsInUse(mb.id));
  sendFlagsResponses(s, view);
  s.send(`* ${uids.length} EXISTS\r\n`);
  if (!s.rev2) {
    s.send(`* ${view.recentCount} RECENT\r\n`);
    if (mb.unseenCount > 0) {
      // One index probe; the full search only when that message is not in this view (arrived meanwhile).
      let first = (await messages.firstUnseen?.(mb.id)) ?? null;
      if (first === null || !view.has(first)) {
        const hit = await messages.search(mb.id, { type: 'flag', mask: Flag.Seen, set: false });
        first = hit.find((h) => view.has(h.uid))?.uid ?? null;
      }
      if (first !== null) s.send(`* OK [UNSEEN ${view.seqOf(first)}] First unseen\r\n`);
    }
  }
  s.send(`* OK [UIDVALIDITY ${mb.uidValidity}] UIDs valid\r\n`);
  s.send(`* OK [UIDNEXT ${mb.uidNext}] Predicted next UID\r\n`);
  s.send(`* OK [HIGHESTMODSEQ ${mb.highestModseq}] Highest\r\n`);
  if (s.rev2) s.send(`* LIST () "${SEP}" ${s.mailboxName(mb.name)}\r\n`);
  if (cmd.qresync && cmd.qresync.uidValidity === mb.uidValidity) {
    // RFC 7162 3.2.5.2: VANISHED (EARLIER) then FETCH of what changed since the client's modseq.
    const q = cmd.qresync;
    const since = Number(q.modSeq);
    let known: NumberRanges = q.knownUids ?? [[1, MAX_UINT32]];
    if (q.seqMatch) {
      // RFC 7162 3.2.5.2: a (message number, UID) pair that still matches proves no message with a lower UID
      // was expunged since the client's cache: VANISHED (EARLIER) needs only UIDs above the last such UID.
      const upTo = matchedUid(view, q.seqMatch.seqs, q.seqMatch.uids);
      if (upTo > 0) known = rangesIntersect(known, [[upTo + 1, MAX_UINT32]]);
    }
    const gone = known.length ? await messages.vanished(mb.id, since, known as Array<[number, number]>) : [];
    if (gone.length) s.send(`* VANISHED (EARLIER) ${formatRanges(rangesFromNumbers(gone))}\r\n`);
    const changed = await messages.fetch(mb.id, known as Array<[number, number]>, { changedSince: since });
    for (const m of changed) {
      const seq = view.seqOf(m.uid);
      if (seq) s.send(`* ${seq} FETCH (UID ${m.uid} FLAGS ${flagList(m.flags, m.keywords, false)} MODSEQ (${m.modseq}))\r\n`);
    }
  }
  s.selectView(view);
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${cmd.name} completed` };
}

/**
 * RFC 7162 3.2.5.2 message sequence match data: walks the (message number, UID) pairs in order and returns the
 * UID of the last pair that matches the current mailbox before the first that does not (0: none matched).
 * The two sets must have as many members (BAD otherwise).
 */
export function matchedUid(view: MailboxView, seqs: NumberRanges, uids: NumberRanges): number {
  if (rangesCount(seqs) !== rangesCount(uids)) throw new ImapBad('QRESYNC: known-sequence-set and known-uid-set differ in size');
  const u = iterateRanges(uids);
  let last = 0;
  for (const seq of iterateRanges(seqs)) {
    const uid = u.next().value as number;
    if (seq > view.exists || view.uids[seq - 1] !== uid) break;
    last = uid;
  }
  return last;
}

export async function runCreate(s: ImapSession, cmd: CreateCommand): Promise<Done> {
  const name = cleanName(cmd.mailbox);
  if (name === 'INBOX') throw new ImapNo('ALREADYEXISTS', 'Mailbox exists');
  let use: SpecialUse | null = null;
  for (const u of cmd.specialUse) {
    if (!SPECIAL.has(u)) throw new ImapNo('USEATTR', `Unsupported special-use attribute ${u}`);
    if (use) throw new ImapNo('USEATTR', 'One special-use attribute per mailbox');
    use = u as SpecialUse;
  }
  if (await s.deps.mailboxes.get(s.account!.id, name)) throw new ImapNo('ALREADYEXISTS', 'Mailbox exists');
  await ensureParents(s, name);
  const mb = await s.deps.mailboxes.create(s.account!.id, name, use);
  if (!mb) throw new ImapNo('ALREADYEXISTS', 'Mailbox exists');
  return {};
}

export async function runDelete(s: ImapSession, cmd: DeleteCommand): Promise<Done> {
  if (cmd.mailbox === 'INBOX') throw new ImapNo('CANNOT', 'INBOX cannot be deleted');
  const mb = await mustGet(s, cmd.mailbox);
  const all = await s.deps.mailboxes.list(s.account!.id);
  if (all.some((m) => m.name.startsWith(mb.name + SEP))) throw new ImapNo('HASCHILDREN', 'Mailbox has children, delete them first');
  if (s.view?.id === mb.id) s.selectView(null);
  await s.deps.mailboxes.delete(mb.id);
  s.deps.changes.publish({ type: 'mailbox', accountId: s.account!.id, mailboxId: mb.id });
  return {};
}

export async function runRename(s: ImapSession, cmd: RenameCommand): Promise<Done> {
  const to = cleanName(cmd.to);
  await mustGet(s, cmd.from);
  if (to === 'INBOX' || (await s.deps.mailboxes.get(s.account!.id, to))) throw new ImapNo('ALREADYEXISTS', 'Target mailbox exists');
  if (cmd.from !== 'INBOX' && to.startsWith(cmd.from + SEP)) throw new ImapNo('CANNOT', 'Cannot move a mailbox into itself');
  await ensureParents(s, to);
  if (!(await s.deps.mailboxes.rename(s.account!.id, cmd.from, to))) throw new ImapNo('ALREADYEXISTS', 'Rename failed: a target name exists');
  return {};
}

export async function runSubscribe(s: ImapSession, cmd: SubscribeCommand): Promise<Done> {
  const mb = await mustGet(s, cmd.mailbox);
  await s.deps.mailboxes.setSubscribed(mb.id, cmd.name === 'SUBSCRIBE');
  return {};
}

/** RFC 9051 6.3.9: "*" matches anything, "%" anything but the separator. */
function patternRegex(ref: string, pattern: string): RegExp {
  const full = pattern.startsWith(SEP) || ref === '' ? pattern : ref.endsWith(SEP) ? ref + pattern : ref + pattern;
  let re = '';
  for (const ch of full) re += ch === '*' ? '.*' : ch === '%' ? '[^/]*' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // INBOX is case-insensitive (RFC 9051 5.1).
  return new RegExp(`^${re}$`, /^inbox/i.test(full) ? 'i' : '');
}

interface Entry {
  name: string;
  mb: Mailbox | null;
}

async function statusLine(s: ImapSession, mb: Mailbox, items: StatusItem[]): Promise<string> {
  const out: string[] = [];
  let deleted: number | null = null;
  let recent: number | null = null;
  for (const it of items) {
    switch (it) {
      case 'MESSAGES':
        out.push(`MESSAGES ${mb.messageCount}`);
        break;
      case 'UIDNEXT':
        out.push(`UIDNEXT ${mb.uidNext}`);
        break;
      case 'UIDVALIDITY':
        out.push(`UIDVALIDITY ${mb.uidValidity}`);
        break;
      case 'UNSEEN':
        out.push(`UNSEEN ${mb.unseenCount}`);
        break;
      case 'DELETED':
        deleted ??= (await s.deps.messages.search(mb.id, { type: 'flag', mask: Flag.Deleted, set: true })).length;
        out.push(`DELETED ${deleted}`);
        break;
      case 'SIZE':
        out.push(`SIZE ${mb.totalSize}`);
        break;
      case 'RECENT': {
        if (recent === null) {
          const first = await s.deps.mailboxes.claimRecent(mb.id, 0);
          recent = first < mb.uidNext ? (await s.deps.messages.search(mb.id, { type: 'uids', ranges: [[first, MAX_UINT32]] })).length : 0;
        }
        out.push(`RECENT ${recent}`);
        break;
      }
      case 'HIGHESTMODSEQ':
        s.condstore = true;
        out.push(`HIGHESTMODSEQ ${mb.highestModseq}`);
        break;
      case 'APPENDLIMIT':
        out.push(`APPENDLIMIT ${s.settings.maxLiteralSize}`);
        break;
    }
  }
  return `* STATUS ${s.mailboxName(mb.name)} (${out.join(' ')})\r\n`;
}

export async function runStatus(s: ImapSession, cmd: StatusCommand): Promise<Done> {
  const mb = await mustGet(s, cmd.mailbox);
  s.send(await statusLine(s, mb, cmd.items));
  return {};
}

export async function runList(s: ImapSession, cmd: ListCommand): Promise<Done> {
  const all = await s.deps.mailboxes.list(s.account!.id);
  if (!cmd.extended && cmd.patterns.length === 1 && cmd.patterns[0] === '') {
    // RFC 9051 6.3.9: the hierarchy delimiter and root.
    s.send(`* LIST (\\Noselect) "${SEP}" ""\r\n`);
    return {};
  }
  const names = new Map<string, Entry>();
  for (const mb of all) {
    names.set(mb.name, { name: mb.name, mb });
    const parts = mb.name.split(SEP);
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join(SEP);
      if (!names.has(p)) names.set(p, { name: p, mb: null });
    }
  }
  const res = cmd.patterns.map((p) => patternRegex(cmd.reference, p));
  const sel = cmd.selectOptions;
  const ret = cmd.returnOptions;
  const hasChildren = (n: string) => {
    for (const k of names.keys()) if (k.startsWith(n + SEP)) return true;
    return false;
  };
  const sorted = [...names.values()].sort((a, b) => (a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of sorted) {
    if (!res.some((r) => r.test(e.name))) continue;
    const mb = e.mb;
    const attrs: string[] = [];
    let childInfo = false;
    if (sel.subscribed) {
      if (!mb?.subscribed) {
        // RFC 5258 3.5 RECURSIVEMATCH: a parent of subscribed children is shown with CHILDINFO.
        if (sel.recursiveMatch && all.some((m) => m.subscribed && m.name.startsWith(e.name + SEP))) childInfo = true;
        else continue;
      }
    }
    if (sel.specialUse && !mb?.specialUse) continue;
    if (!mb) attrs.push('\\NonExistent');
    attrs.push(hasChildren(e.name) ? '\\HasChildren' : '\\HasNoChildren');
    if (mb?.specialUse && mb.specialUse !== '\\Inbox' && (ret.specialUse || sel.specialUse || !cmd.extended || true)) attrs.push(mb.specialUse);
    if ((sel.subscribed || ret.subscribed) && mb?.subscribed) attrs.push('\\Subscribed');
    if (childInfo && !mb?.subscribed) {
      /* CHILDINFO extended data below */
    }
    let line = `* LIST (${attrs.join(' ')}) "${SEP}" ${s.mailboxName(e.name)}`;
    if (childInfo) line += ' ("CHILDINFO" ("SUBSCRIBED"))';
    s.send(line + '\r\n');
    if (ret.status && mb) s.send(await statusLine(s, mb, ret.status));
  }
  return {};
}

export async function runLsub(s: ImapSession, cmd: LsubCommand): Promise<Done> {
  const all = await s.deps.mailboxes.list(s.account!.id);
  const re = patternRegex(cmd.reference, cmd.pattern);
  for (const mb of all) if (mb.subscribed && re.test(mb.name)) s.send(`* LSUB () "${SEP}" ${s.mailboxName(mb.name)}\r\n`);
  return {};
}

export async function runAppend(s: ImapSession, cmd: AppendCommand): Promise<Done> {
  const mb = await s.deps.mailboxes.get(s.account!.id, cmd.mailbox);
  if (!mb) throw new ImapNo('TRYCREATE', 'No such mailbox');
  const uids: number[] = [];
  let uidValidity = mb.uidValidity;
  for (const m of cmd.messages) {
    if (m.data.length === 0) throw new ImapNo('CANNOT', 'Empty message');
    if (m.data.length > s.settings.maxLiteralSize) throw new ImapNo('TOOBIG', 'Message too large');
    const { mask, keywords } = parseFlags(m.flags);
    const [outcome] = await s.deps.ingest.ingest({
      raw: normalizeLineEndings(m.data),
      targets: [{ mailboxId: mb.id, flags: mask, keywords, internalDate: m.internalDate ? m.internalDate.date.getTime() : undefined, ignoreQuota: false }],
    });
    if (!outcome || !outcome.ok) {
      // RFC 3502 6: MULTIAPPEND is all or nothing: take back what this command already added.
      if (uids.length) {
        const r = await s.deps.messages.expunge(mb.id, uids);
        s.deps.changes.publish({ type: 'expunge', accountId: s.account!.id, mailboxId: mb.id, uids: r.uids, modseq: r.modseq });
      }
      if (outcome && outcome.reason === 'over-quota') throw new ImapNo('OVERQUOTA', 'Quota exceeded');
      throw new ImapNo('TRYCREATE', 'No such mailbox');
    }
    uidValidity = outcome.uidValidity;
    uids.push(outcome.message.uid);
  }
  return { code: `APPENDUID ${uidValidity} ${formatRanges(rangesFromNumbers(uids))}`, text: 'APPEND completed' };
}
