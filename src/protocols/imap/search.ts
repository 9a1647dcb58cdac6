/**
 * SEARCH evaluation (RFC 9051 6.4.4; RFC 4731 ESEARCH; RFC 5182 SEARCHRES; RFC 7162 3.1.5 MODSEQ).
 * The SearchKey AST becomes a backend-neutral MessageQuery: message numbers and `$` are turned into UIDs here
 * (they belong to this session's view), everything else is evaluated by the store over indexes and the
 * full-text index. Results are intersected with the view (messages not yet announced are not reported).
 */
import { formatRanges, rangesFromNumbers, resolveSequenceSet, clampRanges, SequenceSetError, type NumberRanges } from '../../lib/imap/sequence-set.js';
import type { ImapDate } from '../../lib/imap/syntax.js';
import { Flag, type MessageQuery, type SearchHit } from '../../storage/types.js';
import type { SearchKey, SearchCommand, SearchReturnOptions } from './parser.js';
import { ImapBad } from './errors.js';
import type { MailboxView } from './mailbox-view.js';
import type { ImapSession, Done } from './session.js';

const FLAG_BITS: Record<string, number> = { '\\Answered': Flag.Answered, '\\Deleted': Flag.Deleted, '\\Draft': Flag.Draft, '\\Flagged': Flag.Flagged, '\\Seen': Flag.Seen };
const DAY = 86_400_000;
const utcDay = (d: ImapDate) => Date.UTC(d.year, d.month - 1, d.day);
const ymd = (d: ImapDate) => d.year * 10000 + d.month * 100 + d.day;

export function toQuery(key: SearchKey, view: MailboxView, rev2: boolean): MessageQuery {
  const recent = (): MessageQuery => ({ type: 'uids', ranges: view.recent });
  switch (key.type) {
    case 'all':
      return { type: 'all' };
    case 'and':
      return { type: 'and', keys: key.keys.map((k) => toQuery(k, view, rev2)) };
    case 'or':
      return { type: 'or', left: toQuery(key.left, view, rev2), right: toQuery(key.right, view, rev2) };
    case 'not':
      return { type: 'not', key: toQuery(key.key, view, rev2) };
    case 'flag':
      return { type: 'flag', mask: FLAG_BITS[key.flag]!, set: key.set };
    case 'keyword':
      return { type: 'keyword', keyword: key.keyword, set: key.set };
    case 'recent':
      return recent();
    case 'new':
      return { type: 'and', keys: [recent(), { type: 'flag', mask: Flag.Seen, set: false }] };
    case 'old':
      return { type: 'not', key: recent() };
    case 'header':
      return { type: 'header', field: key.field, value: key.value };
    case 'body':
      return { type: 'body', value: key.value };
    case 'text':
      return { type: 'text', value: key.value };
    case 'date': {
      if (key.field === 'internal') {
        const t = utcDay(key.date);
        if (key.op === 'before') return { type: 'date', field: 'internal', from: null, to: t };
        if (key.op === 'on') return { type: 'date', field: 'internal', from: t, to: t + DAY };
        return { type: 'date', field: 'internal', from: t, to: null };
      }
      const d = ymd(key.date);
      if (key.op === 'before') return { type: 'date', field: 'sent', from: null, to: d };
      if (key.op === 'on') return { type: 'date', field: 'sent', from: d, to: d + 1 };
      return { type: 'date', field: 'sent', from: d, to: null };
    }
    case 'size':
      return { type: 'size', op: key.op, size: key.size };
    case 'seq': {
      try {
        const saved = key.set.saved ? rangesFromNumbers(view.uidsIn(view.saved).map((u) => view.seqOf(u))) : undefined;
        const seqs = clampRanges(resolveSequenceSet(key.set, { star: view.exists, saved }), view.exists);
        return { type: 'uids', ranges: rangesFromNumbers(view.uidsOfSeqs(seqs)) };
      } catch (e) {
        if (e instanceof SequenceSetError) throw new ImapBad(e.message);
        throw e;
      }
    }
    case 'uid':
      try {
        return { type: 'uids', ranges: resolveSequenceSet(key.set, { star: view.lastUid, saved: view.saved }) };
      } catch (e) {
        if (e instanceof SequenceSetError) throw new ImapBad(e.message);
        throw e;
      }
    case 'modseq':
      return { type: 'modseq', modseq: Number(key.modseq) };
  }
}

/** Header and text keys are answered from the full-text index (its rows are written after the commit). */
function usesText(key: SearchKey): boolean {
  switch (key.type) {
    case 'header':
    case 'body':
    case 'text':
      return true;
    case 'and':
      return key.keys.some(usesText);
    case 'or':
      return usesText(key.left) || usesText(key.right);
    case 'not':
      return usesText(key.key);
    default:
      return false;
  }
}

/** Matching messages of the view, ascending by UID. */
export async function searchView(s: ImapSession, key: SearchKey): Promise<SearchHit[]> {
  // Messages committed but not yet in the text index are indexed first: SEARCH sees every message.
  if (usesText(key)) await s.deps.ingest.textIndexed();
  const view = s.view!;
  const hits = await s.deps.messages.search(view.id, toQuery(key, view, s.rev2));
  return hits.filter((h) => view.has(h.uid));
}

function usesModseq(key: SearchKey): boolean {
  switch (key.type) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(usesModseq);
    case 'or':
      return usesModseq(key.left) || usesModseq(key.right);
    case 'not':
      return usesModseq(key.key);
    default:
      return false;
  }
}

/** Writes the SEARCH / ESEARCH answer for `numbers` (UIDs or message numbers, ascending). */
export function answerSearch(
  s: ImapSession,
  tag: string,
  uid: boolean,
  numbers: number[],
  ret: SearchReturnOptions | null,
  modseq: number | null,
  uidsForSave: number[],
  verb = 'SEARCH',
): void {
  const view = s.view!;
  const esearch = ret !== null || s.rev2;
  const r: SearchReturnOptions = ret ?? { min: false, max: false, all: true, count: false, save: false };
  if (r.save) {
    // RFC 5182 2.4: with MIN/MAX only, only those are saved.
    let save = uidsForSave;
    if ((r.min || r.max) && !r.all && !r.count) save = [...(r.min && save.length ? [save[0]!] : []), ...(r.max && save.length ? [save[save.length - 1]!] : [])];
    view.saved = rangesFromNumbers(save);
  }
  if (!esearch) {
    s.send(`* ${verb}${numbers.length ? ' ' + numbers.join(' ') : ''}${modseq !== null && numbers.length ? ` (MODSEQ ${modseq})` : ''}\r\n`);
    return;
  }
  const onlySave = r.save && !r.min && !r.max && !r.all && !r.count;
  if (onlySave) return;
  const parts = [`* ESEARCH (TAG ${JSON.stringify(tag)})`];
  if (uid) parts.push('UID');
  if (numbers.length) {
    if (r.min) parts.push(`MIN ${numbers[0]}`);
    if (r.max) parts.push(`MAX ${numbers[numbers.length - 1]}`);
    if (r.all) parts.push(`ALL ${formatRanges(rangesFromNumbers(numbers))}`);
  }
  if (r.count) parts.push(`COUNT ${numbers.length}`);
  if (modseq !== null && numbers.length) parts.push(`MODSEQ ${modseq}`);
  s.send(parts.join(' ') + '\r\n');
}

export async function runSearch(s: ImapSession, cmd: SearchCommand): Promise<Done> {
  const view = s.view!;
  const withModseq = usesModseq(cmd.criteria);
  if (withModseq) s.condstore = true;
  const hits = await searchView(s, cmd.criteria);
  const numbers = cmd.uid ? hits.map((h) => h.uid) : hits.map((h) => view.seqOf(h.uid));
  let modseq: number | null = null;
  if (withModseq) modseq = hits.reduce((m, h) => Math.max(m, h.modseq), 0);
  answerSearch(s, cmd.tag, cmd.uid, numbers, cmd.returnOptions, modseq, hits.map((h) => h.uid));
  return {};
}

export type { NumberRanges };
