/**
 * Search/sort data of a message, extracted once at ingest (the text is what SEARCH BODY/TEXT finds through
 * the full-text index; RFC 9051 6.4.4, RFC 5256 sort keys and THREAD references).
 * Never throws: a message we cannot read well is indexed with what could be read.
 */
import { decodeHeaderValue, decodedText, getHeaders, type MimePart } from '../lib/mime/parse.js';
import { parseAddressList } from '../lib/mime/address.js';
import type { MessageIndexData } from '../storage/types.js';

/** Bound the indexed text per message: enough for search, bounded index growth. */
const MAX_BODY_CHARS = 1_000_000;
const MONTHS: Record<string, number> = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };

/** YYYYMMDD of an RFC 5322 date as written (its own zone), or null. */
export function dayOf(date: string): number | null {
  const m = /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(date);
  if (!m) return null;
  const month = MONTHS[m[2]!.toLowerCase()];
  if (!month) return null;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900; // RFC 5322 4.3 obsolete two-digit years
  const day = Number(m[1]);
  if (day < 1 || day > 31) return null;
  return year * 10000 + month * 100 + day;
}

function firstMailbox(value: Buffer | undefined): string {
  if (!value) return '';
  try {
    const a = parseAddressList(value.toString('latin1')).find((x) => x.mailbox !== null && x.host !== null);
    return a ? `${a.mailbox}@${a.host}`.toLowerCase() : '';
  } catch {
    return '';
  }
}

const MSGID = /<[^<>\s]+>/g;

export function messageIndexData(raw: Buffer, root: MimePart): MessageIndexData {
  const headers = getHeaders(raw, root);
  const byName = new Map<string, Buffer>();
  const lines: string[] = [];
  for (const h of headers) {
    const name = h.name.toLowerCase();
    if (!byName.has(name)) byName.set(name, h.value);
    lines.push(`${h.name}: ${decodeHeaderValue(h.value).replace(/[\r\n]+/g, ' ')}`);
  }
  const dateText = byName.get('date')?.toString('latin1') ?? null;
  const parsed = dateText ? Date.parse(dateText.replace(/\([^)]*\)/g, '').trim()) : NaN;
  // RFC 5256 3 step 1: References; without one (or without a valid id in it), the FIRST id of In-Reply-To only.
  const refs = byName.get('references')?.toString('latin1').match(MSGID) ?? byName.get('in-reply-to')?.toString('latin1').match(MSGID)?.slice(0, 1) ?? [];
  let body = '';
  try {
    body = decodedText(raw, root);
  } catch {
    body = '';
  }
  if (body.length > MAX_BODY_CHARS) body = body.slice(0, MAX_BODY_CHARS);
  return {
    sentDate: Number.isFinite(parsed) ? parsed : null,
    sentDay: dateText ? dayOf(dateText) : null,
    subject: byName.has('subject') ? decodeHeaderValue(byName.get('subject')!).replace(/[\r\n]+/g, '') : '',
    sortFrom: firstMailbox(byName.get('from')),
    sortTo: firstMailbox(byName.get('to')),
    sortCc: firstMailbox(byName.get('cc')),
    messageId: byName.get('message-id')?.toString('latin1').match(MSGID)?.[0] ?? null,
    references: refs,
    headers: lines.join('\n'),
    body,
  };
}
