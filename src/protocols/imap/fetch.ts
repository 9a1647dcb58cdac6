/**
 * FETCH (RFC 9051 6.4.5, 7.5.2; RFC 3501 6.4.5 RFC822.*; RFC 3516 BINARY; RFC 7162 CHANGEDSINCE, VANISHED,
 * MODSEQ). Metadata comes from one range query; ENVELOPE / BODYSTRUCTURE from the MIME tree stored at ingest;
 * sections are byte ranges of the stored message, never re-parsed. The stored message is prefix (headers the
 * server added at receipt) + blob; MIME offsets are relative to the blob, so top-level HEADER / [] / sizes
 * include the prefix and part offsets do not need shifting.
 * Non-PEEK body items set \Seen first (one STORE, one MODSEQ) and the response then carries FLAGS.
 */
import { buildEnvelope, findSection, sectionBytes, type Envelope, type MimePart } from '../../lib/mime/parse.js';
import { formatBodystructure, formatEnvelope } from '../../lib/imap/format.js';
import { formatRanges, rangesFromNumbers, MAX_UINT32 } from '../../lib/imap/sequence-set.js';
import { Flag, FLAG_NAMES, type MessageMeta } from '../../storage/types.js';
import { fetchItemSetsSeen, fetchResponseName, type FetchCommand, type FetchItem, type Section } from './parser.js';
import { ImapBad, ImapNo } from './errors.js';
import { resolveUids } from './sets.js';
import type { ImapSession, Done } from './session.js';

export function flagList(flags: number, keywords: string[], recent: boolean): string {
  const names: string[] = [];
  for (const [bit, name] of FLAG_NAMES) if (flags & bit) names.push(name);
  if (recent) names.push('\\Recent');
  return `(${[...names, ...keywords].join(' ')})`;
}

/** Flags of STORE/APPEND -> bitmask + keywords. \Recent cannot be set (RFC 3501 2.3.2). */
export function parseFlags(list: string[]): { mask: number; keywords: string[] } {
  let mask = 0;
  const keywords: string[] = [];
  for (const f of list) {
    const sys = FLAG_NAMES.find(([, n]) => n.toLowerCase() === f.toLowerCase());
    if (sys) mask |= sys[0];
    else if (f.startsWith('\\')) {
      if (f.toLowerCase() !== '\\recent') throw new ImapBad(`Unknown system flag ${f}`);
    } else keywords.push(f);
  }
  return { mask, keywords };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');
/** RFC 9051 date-time, in UTC: "17-Jul-1996 09:44:25 +0000". */
export function internalDate(ms: number): string {
  const d = new Date(ms);
  return `"${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000"`;
}

const literal = (b: Buffer, binary = false): Buffer[] => [Buffer.from(`${binary ? '~' : ''}{${b.length}}\r\n`), b];

/** NUL cannot go in a non-binary literal (RFC 9051 4.3): sent as 0x80, as Dovecot does; BINARY[] has literal8. */
const noNul = (b: Buffer): Buffer => (b.includes(0) ? Buffer.from(b.map((c) => (c === 0 ? 0x80 : c))) : b);

/** Per-message lazy loading: the stored MIME tree, the blob, the prefix. */
class Loaded {
  private mimeP: Promise<MimePart> | null = null;
  private blobP: Promise<Buffer> | null = null;
  private prefixP: Promise<Buffer> | null = null;
  constructor(
    private readonly s: ImapSession,
    readonly m: MessageMeta,
  ) {}
  mime(): Promise<MimePart> {
    return (this.mimeP ??= this.s.deps.messages.mime(this.m.id, this.m.blobId || undefined).then((x) => x as MimePart));
  }
  blob(): Promise<Buffer> {
    return (this.blobP ??= this.s.deps.blobs.get(this.m.blobId));
  }
  prefix(): Promise<Buffer> {
    return (this.prefixP ??= this.m.prefixLength ? this.s.deps.messages.prefix(this.m.id) : Promise.resolve(Buffer.alloc(0)));
  }
  async header(): Promise<Buffer> {
    const mime = await this.mime();
    return this.s.deps.blobs.read(this.m.blobId, mime.headerStart, mime.bodyStart);
  }
}

/** Header fields (with continuation lines) of a header block, filtered; ends with the blank line. */
export function filterHeader(block: Buffer, fields: string[], not: boolean): Buffer {
  const want = new Set(fields.map((f) => f.toLowerCase()));
  const text = block.toString('latin1');
  const out: string[] = [];
  let keep = false;
  for (const line of text.split(/(?<=\n)/)) {
    if (line === '\r\n' || line === '\n') break;
    if (line[0] !== ' ' && line[0] !== '\t') {
      const colon = line.indexOf(':');
      const name = (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase();
      keep = want.has(name) !== not;
    }
    if (keep) out.push(line.endsWith('\n') ? line : line + '\r\n');
  }
  out.push('\r\n');
  return Buffer.from(out.join(''), 'latin1');
}

function decodeTransfer(body: Buffer, encoding: string): Buffer | null {
  switch (encoding.toLowerCase()) {
    case '7bit':
    case '8bit':
    case 'binary':
      return body;
    case 'base64':
      return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
    case 'quoted-printable': {
      const s = body.toString('latin1').replace(/=\r?\n/g, '');
      const out = Buffer.alloc(s.length);
      let o = 0;
      for (let i = 0; i < s.length; i++) {
        if (s[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
          out[o++] = parseInt(s.slice(i + 1, i + 3), 16);
          i += 2;
        } else out[o++] = s.charCodeAt(i);
      }
      return out.subarray(0, o);
    }
    default:
      return null;
  }
}

async function sectionData(s: ImapSession, l: Loaded, section: Section): Promise<Buffer> {
  const mg = { messageGlobal: s.rev2 };
  const text = section.text;
  if (section.part.length === 0) {
    if (text === null) return Buffer.concat([await l.prefix(), await l.blob()]);
    if (text === 'TEXT') {
      const mime = await l.mime();
      return s.deps.blobs.read(l.m.blobId, mime.bodyStart, mime.end);
    }
    const header = Buffer.concat([await l.prefix(), await l.header()]);
    if (text === 'HEADER') return header;
    if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') return filterHeader(header, section.fields ?? [], text === 'HEADER.FIELDS.NOT');
    return Buffer.alloc(0);
  }
  const blob = await l.blob();
  const mime = await l.mime();
  if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
    const h = sectionBytes(blob, mime, section.part, 'HEADER', mg);
    return h ? filterHeader(h, section.fields ?? [], text === 'HEADER.FIELDS.NOT') : Buffer.alloc(0);
  }
  return sectionBytes(blob, mime, section.part, (text ?? '') as '' | 'MIME' | 'HEADER' | 'TEXT', mg) ?? Buffer.alloc(0);
}

function partial(b: Buffer, p: { offset: number; length: number } | null): Buffer {
  if (!p) return b;
  return b.subarray(Math.min(p.offset, b.length), Math.min(p.offset + p.length, b.length));
}

async function binaryPart(s: ImapSession, l: Loaded, part: number[]): Promise<Buffer> {
  const blob = await l.blob();
  const mime = await l.mime();
  if (part.length === 0) return Buffer.concat([await l.prefix(), blob]);
  const p = findSection(mime, part, { messageGlobal: s.rev2 });
  if (!p) throw new ImapNo('NONEXISTENT', 'No such part');
  if (p.children) throw new ImapNo('UNKNOWN-CTE', 'BINARY of a multipart'); // RFC 3516 4.2: not a leaf
  const decoded = decodeTransfer(blob.subarray(p.bodyStart, p.end), p.encoding);
  if (!decoded) throw new ImapNo('UNKNOWN-CTE', `Unknown Content-Transfer-Encoding ${p.encoding}`);
  return decoded;
}

/** Items answered from the metadata row alone (no MIME tree, no blob). */
const META_ITEMS = new Set<FetchItem['type']>(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'MODSEQ']);

function metaItem(s: ImapSession, m: MessageMeta, type: FetchItem['type']): string {
  switch (type) {
    case 'UID':
      return `UID ${m.uid}`;
    case 'FLAGS':
      return `FLAGS ${flagList(m.flags, m.keywords, !s.rev2 && !!s.view?.isRecent(m.uid))}`;
    case 'INTERNALDATE':
      return `INTERNALDATE ${internalDate(m.internalDate)}`;
    case 'RFC822.SIZE':
      return `RFC822.SIZE ${m.size}`;
    default:
      return `MODSEQ (${m.modseq})`;
  }
}

/**
 * ENVELOPE text by stored envelope object and format options: the envelope lives in the store's parsed-MIME
 * cache (content-addressed by blob, so never stale), and a client listing a mailbox fetches the same ENVELOPEs
 * again and again; formatting them was ~6% of the event loop in the IMAP mix.
 */
const envelopeTexts = new WeakMap<Envelope, string[]>();
function cachedEnvelope(env: Envelope, opts: { utf8: boolean; messageGlobal: boolean }): string {
  let texts = envelopeTexts.get(env);
  if (!texts) envelopeTexts.set(env, (texts = []));
  return (texts[(opts.utf8 ? 1 : 0) + (opts.messageGlobal ? 2 : 0)] ??= formatEnvelope(env, opts));
}

/**
 * BODY / BODYSTRUCTURE texts, likewise per stored structure (SqliteMessages caches the parsed structure by blob, so
 * the object is the same each time while cached): a client opening a mailbox asks for the same ones again.
 */
const structureTexts = new WeakMap<MimePart, string[]>();
function cachedBodystructure(mime: MimePart, extended: boolean, opts: { utf8: boolean; messageGlobal: boolean }): string {
  let texts = structureTexts.get(mime);
  if (!texts) structureTexts.set(mime, (texts = []));
  return (texts[(extended ? 1 : 0) + (opts.utf8 ? 2 : 0) + (opts.messageGlobal ? 4 : 0)] ??= formatBodystructure(mime, extended, opts));
}

/** One FETCH response's items. */
async function renderItem(s: ImapSession, l: Loaded, item: FetchItem, out: (string | Buffer)[]): Promise<void> {
  const m = l.m;
  const opts = { utf8: s.utf8, messageGlobal: s.rev2 };
  switch (item.type) {
    case 'UID':
    case 'FLAGS':
    case 'INTERNALDATE':
    case 'RFC822.SIZE':
    case 'MODSEQ':
      out.push(metaItem(s, m, item.type));
      return;
    case 'ENVELOPE': {
      const mime = await l.mime();
      // Precomputed at ingest (core/ingest.ts) from the same header bytes: no blob read.
      const stored = (mime as MimePart & { rootEnvelope?: Envelope }).rootEnvelope;
      if (stored) {
        out.push(`ENVELOPE ${cachedEnvelope(stored, opts)}`);
        return;
      }
      const header = await l.header();
      // buildEnvelope takes offsets relative to its buffer: rebase the root onto the header bytes.
      out.push(`ENVELOPE ${formatEnvelope(buildEnvelope(header, { ...mime, headerStart: 0, bodyStart: header.length }), opts)}`);
      return;
    }
    case 'BODY':
    case 'BODYSTRUCTURE':
      out.push(`${item.type} ${cachedBodystructure(await l.mime(), item.type === 'BODYSTRUCTURE', opts)}`);
      return;
    case 'RFC822':
    case 'RFC822.HEADER':
    case 'RFC822.TEXT': {
      const text = item.type === 'RFC822' ? null : item.type === 'RFC822.HEADER' ? 'HEADER' : 'TEXT';
      out.push(`${item.type} `, ...literal(noNul(await sectionData(s, l, { part: [], text, fields: null }))));
      return;
    }
    case 'BODY[]':
      out.push(`${fetchResponseName(item)} `, ...literal(noNul(partial(await sectionData(s, l, item.section), item.partial))));
      return;
    case 'BINARY[]': {
      const data = partial(await binaryPart(s, l, item.part), item.partial);
      out.push(`${fetchResponseName(item)} `, ...literal(data, data.includes(0)));
      return;
    }
    case 'BINARY.SIZE[]':
      out.push(`${fetchResponseName(item)} ${(await binaryPart(s, l, item.part)).length}`);
      return;
  }
}

export async function runFetch(s: ImapSession, cmd: FetchCommand): Promise<Done> {
  const view = s.view!;
  const { messages } = s.deps;
  if (cmd.vanished && (!cmd.uid || cmd.changedSince === null)) throw new ImapBad('VANISHED needs UID FETCH with CHANGEDSINCE');
  if (cmd.vanished && !s.qresync) throw new ImapBad('QRESYNC is not enabled');
  if (cmd.changedSince !== null || cmd.items.some((i) => i.type === 'MODSEQ')) s.condstore = true;
  const uids = resolveUids(view, cmd.sequence, cmd.uid);
  const ranges = rangesFromNumbers(uids);
  if (cmd.vanished && cmd.changedSince !== null) {
    const gone = await messages.vanished(view.id, Number(cmd.changedSince), cmd.uid ? rangesFromRequest(view, cmd) : ranges);
    if (gone.length) s.send(`* VANISHED (EARLIER) ${formatRanges(rangesFromNumbers(gone))}\r\n`);
  }
  const items = [...cmd.items];
  if (cmd.uid && !items.some((i) => i.type === 'UID')) items.unshift({ type: 'UID' });
  if (cmd.changedSince !== null && !items.some((i) => i.type === 'MODSEQ')) items.push({ type: 'MODSEQ' });
  const setsSeen = !view.readOnly && items.some(fetchItemSetsSeen);
  const metaOnly = items.every((i) => META_ITEMS.has(i.type));
  let rows = await messages.fetch(view.id, ranges, cmd.changedSince !== null ? { changedSince: Number(cmd.changedSince) } : { flagsOnly: metaOnly });
  rows = rows.filter((r) => view.has(r.uid));
  const flagged = new Set<number>();
  if (setsSeen) {
    const unseen = rows.filter((r) => !(r.flags & Flag.Seen)).map((r) => r.uid);
    if (unseen.length) {
      const res = await messages.storeFlags(view.id, unseen, 'add', Flag.Seen, []);
      view.ownModseqs.add(res.modseq);
      const byUid = new Map(res.updated.map((u) => [u.uid, u]));
      rows = rows.map((r) => {
        const u = byUid.get(r.uid);
        if (!u) return r;
        flagged.add(r.uid);
        return { ...r, flags: u.flags, modseq: u.modseq };
      });
      if (res.updated.length) s.deps.changes.publish({ type: 'flags', accountId: s.account!.id, mailboxId: view.id, uids: res.updated.map((u) => u.uid), modseq: res.modseq });
    }
  }
  const hasFlags = items.some((i) => i.type === 'FLAGS');
  if (flagged.size === 0 && metaOnly) {
    // Metadata only (`UID FETCH 1:* (FLAGS)` of a whole mailbox): one string per ~64 KB of responses, written
    // with back-pressure, instead of several writes and awaits per message.
    const types = items.map((i) => i.type);
    let chunk = '';
    for (const m of rows) {
      let line = `* ${view.seqOf(m.uid)} FETCH (`;
      for (let i = 0; i < types.length; i++) line += (i ? ' ' : '') + metaItem(s, m, types[i]!);
      chunk += line + ')\r\n';
      if (chunk.length >= 65536) {
        s.send(chunk);
        chunk = '';
        await s.out.maybeFlush();
      }
    }
    if (chunk) s.send(chunk);
    return {};
  }
  for (const m of rows) {
    const l = new Loaded(s, m);
    const parts: (string | Buffer)[] = [];
    let missing = false;
    for (const item of items) {
      const before = parts.length;
      try {
        await renderItem(s, l, item, parts);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          missing = true; // expunged and collected meanwhile (RFC 2180 4.1)
          break;
        }
        throw e;
      }
      if (parts.length > before) parts.splice(before, 0, ' ');
    }
    if (missing) continue;
    if (flagged.has(m.uid) && !hasFlags) parts.push(` FLAGS ${flagList(m.flags, m.keywords, !s.rev2 && view.isRecent(m.uid))}`);
    const seq = view.seqOf(m.uid);
    s.send(`* ${seq} FETCH (`);
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      s.send(i === 0 && typeof p === 'string' ? p.replace(/^ /, '') : p);
    }
    s.send(')\r\n');
    await s.out.maybeFlush();
  }
  return {};
}

/** For UID FETCH ... VANISHED: the UID ranges as the client sent them (RFC 7162 3.2.6 reports UIDs not in the view). */
function rangesFromRequest(view: { lastUid: number }, cmd: FetchCommand): Array<[number, number]> {
  return cmd.sequence.ranges.map((r) => {
    // `*`: as far as UIDs go, so expunged UIDs above the last one still present are reported too.
    const a = r.start === '*' ? MAX_UINT32 : r.start;
    const b = r.end === '*' ? MAX_UINT32 : r.end;
    return [Math.min(a, b), Math.max(a, b)] as [number, number];
  });
}
