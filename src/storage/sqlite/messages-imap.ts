/**
 * The IMAP side of the SQLite message repository: flags, copy/move, VANISHED, SEARCH compiled to SQL over
 * indexed columns and the trigram FTS5 text index, SORT/THREAD data.
 *
 * Invariants: every write runs in one IMMEDIATE transaction; a flag change, copy or move takes ONE new
 * MODSEQ for the whole command (RFC 7162 allows several messages to share one); unseen_count, total_size,
 * message_count and the account's used_bytes change in the same transaction as the rows.
 */
import { rangesHas } from '../../lib/imap/sequence-set.js';
import type Database from 'better-sqlite3';
import { Flag, type CopyOutcome, type FlagOperation, type FlagUpdate, type MessageIndexData, type MessageQuery, type SearchHit, type SortData } from '../types.js';
import type { Row } from './rows.js';
import { pruneRows } from './schema.js';

/** `headers` holds "Name: value" lines; true when one line of field `field` contains `value` (any case). */
function headerMatch(headers: unknown, field: unknown, value: unknown): number {
  if (typeof headers !== 'string' || typeof field !== 'string' || typeof value !== 'string') return 0;
  const f = field.toLowerCase() + ':';
  const v = value.toLowerCase();
  for (const line of headers.split('\n')) {
    if (line.length >= f.length && line.slice(0, f.length).toLowerCase() === f) {
      if (v === '' || line.slice(f.length).toLowerCase().includes(v)) return 1;
    }
  }
  return 0;
}

/**
 * A STORE operation on one message: its new flags and keywords, or null when they stay as they are (keywords
 * compare without regard to case, RFC 9051 2.3.2).
 */
function flagOperation(op: FlagOperation, flags: number, keywords: string[]): (oldFlags: number, oldKw: string[]) => [number, string[]] | null {
  const kwLower = new Set(keywords.map((k) => k.toLowerCase()));
  return (oldFlags, oldKw) => {
    let nf: number;
    let nk: string[];
    if (op === 'replace') {
      nf = flags;
      nk = dedupe(keywords);
    } else if (op === 'add') {
      nf = oldFlags | flags;
      nk = dedupe([...oldKw, ...keywords]);
    } else {
      nf = oldFlags & ~flags;
      nk = oldKw.filter((k) => !kwLower.has(k.toLowerCase()));
    }
    return nf === oldFlags && sameKeywords(nk, oldKw) ? null : [nf, nk];
  };
}

type StoreOptions = { unchangedSince?: number };
type StoreResult = { updated: FlagUpdate[]; unchanged: FlagUpdate[]; failed: number[]; modseq: number };

/** An FTS5 phrase: the value quoted, quotes doubled (trigram tokenizer: substring match). */
const phrase = (s: string) => `"${s.replace(/"/g, '""')}"`;

export class ImapMessageStore {
  private readonly stmts;
  /** Range sets of the running query, referenced from SQL by number (see imap_uid_in). */
  private readonly rangeSets = new Map<number, Array<[number, number]>>();
  private rangeSeq = 0;
  private readonly searchStmts = new Map<string, Database.Statement>();
  private textInsert: Database.Statement | undefined;

  constructor(private readonly db: Database.Database) {
    db.function('imap_header', { deterministic: true }, headerMatch);
    db.function('imap_uid_in', { deterministic: true }, (uid: unknown, set: unknown) => (rangesHas(this.rangeSets.get(Number(set)) ?? [], Number(uid)) ? 1 : 0));
    this.stmts = {
      uids: db.prepare('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck(),
      row: db.prepare('SELECT * FROM messages WHERE mailbox_id = ? AND uid = ?'),
      mailbox: db.prepare('SELECT b.*, a.quota_bytes, a.used_bytes FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE b.id = ?'),
      setFlags: db.prepare('UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?'),
      mbFlags: db.prepare('UPDATE mailboxes SET highestmodseq = ?, unseen_count = unseen_count + ? WHERE id = ?'),
      vanished: db.prepare('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').pluck(),
      insertCopy: db.prepare(
        `INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id, prefix, mime, sent_date, sent_day, subject, sort_from, sort_to, sort_cc, message_id, refs, text_id)
         SELECT ?, ?, ?, flags, keywords, internal_date, size, blob_id, prefix, NULL, sent_date, sent_day, subject, sort_from, sort_to, sort_cc, message_id, refs, text_id FROM messages WHERE id = ?`,
      ),
      blobRef: db.prepare('UPDATE blobs SET refs = refs + 1 WHERE id = ?'),
      mbAdd: db.prepare('UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, message_count = message_count + ?, unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?'),
      accAdd: db.prepare('UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE id = ?'),
      textId: db.prepare('SELECT id FROM blob_text WHERE blob_id = ?').pluck(),
      textPending: db.prepare('INSERT OR IGNORE INTO blob_text(blob_id, pending) VALUES (?, 1)'),
      // As SqliteMessages.pendingRows: only texts of bodies a message still references.
      textDone: db.prepare('UPDATE blob_text SET pending = 0 WHERE blob_id = ? AND pending = 1 AND EXISTS (SELECT 1 FROM blobs b WHERE b.id = blob_text.blob_id AND b.refs > 0) RETURNING id').pluck(),
      pendingList: db.prepare(
        'SELECT t.id AS row, t.blob_id AS blobId FROM blob_text t WHERE t.pending = 1 AND t.id > ? AND EXISTS (SELECT 1 FROM blobs b WHERE b.id = t.blob_id AND b.refs > 0) ORDER BY t.id LIMIT ?',
      ),
      sortRow: db.prepare('SELECT uid, internal_date, size, sent_date, subject, sort_from, sort_to, sort_cc, message_id, refs FROM messages WHERE mailbox_id = ? AND uid = ?'),
    };
  }

  /** Index columns for a new message row (messages.ts INSERT), in the column order used there. */
  static indexColumns(ix: MessageIndexData | undefined): unknown[] {
    if (!ix) return [null, null, null, null, null, null, null, null];
    return [ix.sentDate, ix.sentDay, ix.subject, ix.sortFrom, ix.sortTo, ix.sortCc, ix.messageId, ix.references.length ? ix.references.join(' ') : null];
  }


  /** The blob's full-text row id (messages.text_id), or null when it has none. */
  textIdOf(blobId: string): number | null {
    return (this.stmts.textId.get(blobId) as number | undefined) ?? null;
  }

  /** Marks a blob's text as owed to the index (in the message's transaction); a blob already known is left as is. */
  markTextPending(blobId: string): void {
    this.stmts.textPending.run(blobId);
  }

  /** SqliteMessages.pruneTextIndex without the text index thread (this connection has the text database). */
  pruneTextIndex(limit: number, after: number): { deleted: number; last: number } {
    return pruneRows(this.db, 'fts.text_index', 'main', limit, after);
  }

  /**
   * Inserts the text of blobs still pending and clears their marker, in one transaction, without an fsync
   * (derived data; the next group commit's WAL sync makes it durable, and the marker goes with it).
   */
  indexTexts(texts: Array<{ blobId: string; headers: string; body: string }>): void {
    const s = this.stmts;
    // Only on a connection with the text database attached (SqliteMessages' search connection).
    const insert = (this.textInsert ??= this.db.prepare('INSERT OR REPLACE INTO text_index(rowid, headers, body) VALUES (?, ?, ?)'));
    const sync = this.db.pragma('synchronous', { simple: true }) as number;
    this.db.pragma('synchronous = NORMAL');
    try {
      this.db
        .transaction(() => {
          for (const t of texts) {
            const id = s.textDone.get(t.blobId) as number | undefined;
            if (id !== undefined) insert.run(id, t.headers, t.body);
          }
        })
        .immediate();
    } finally {
      this.db.pragma(`synchronous = ${sync}`);
    }
  }

  pendingTexts(limit: number, afterRow = 0): Array<{ row: number; blobId: string }> {
    return this.stmts.pendingList.all(afterRow, limit) as Array<{ row: number; blobId: string }>;
  }

  uids(mailboxId: number): number[] {
    return this.stmts.uids.all(mailboxId) as number[];
  }

  /** Changes flags in one IMMEDIATE transaction (MessageRepo.storeFlags). */
  storeFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts: StoreOptions = {}): StoreResult {
    return this.db.transaction(() => this.storeRows(mailboxId, uids, op, flags, keywords, opts, true)!).immediate();
  }

  /**
   * The outcome of a STORE that changes no message (every flag already as asked, or failing its UNCHANGEDSINCE),
   * read in one snapshot without a write; null as soon as one message would change. Such STOREs are common
   * (a client marking read what is already read, re-sending its flags after a resync) and need no transaction,
   * no MODSEQ (RFC 7162 3.1.3: the mod-sequence of an unchanged message stays) and no trip to the writer thread.
   * Answering from the snapshot is linearizable: a write still in flight from another session has not been
   * answered yet, so ordering this STORE before it is a valid order.
   */
  storeNoChange(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts: StoreOptions = {}): StoreResult | null {
    return this.db.transaction(() => this.storeRows(mailboxId, uids, op, flags, keywords, opts, false))();
  }

  /**
   * STORE's work inside the caller's transaction. `write`: apply the changes (one new MODSEQ for them all);
   * otherwise return null at the first message that would change.
   */
  private storeRows(mailboxId: number, uids: number[], op: FlagOperation, flags: number, keywords: string[], opts: StoreOptions, write: boolean): StoreResult | null {
    const s = this.stmts;
    const mb = s.mailbox.get(mailboxId) as Row | undefined;
    if (!mb) return write ? { updated: [], unchanged: [], failed: [], modseq: 0 } : null;
    const modseq = (mb.highestmodseq as number) + 1;
    const updated: FlagUpdate[] = [];
    const unchanged: FlagUpdate[] = [];
    const failed: number[] = [];
    let unseenDelta = 0;
    const apply = flagOperation(op, flags, keywords);
    for (const uid of uids) {
      const m = s.row.get(mailboxId, uid) as Row | undefined;
      if (!m) continue;
      const oldFlags = m.flags as number;
      const oldKw: string[] = m.keywords ? JSON.parse(m.keywords as string) : [];
      if (opts.unchangedSince !== undefined && (m.modseq as number) > opts.unchangedSince) {
        failed.push(uid);
        continue;
      }
      const next = apply(oldFlags, oldKw);
      if (!next) {
        unchanged.push({ uid, flags: oldFlags, keywords: oldKw, modseq: m.modseq as number });
        continue;
      }
      if (!write) return null;
      const [nf, nk] = next;
      s.setFlags.run(nf, nk.length ? JSON.stringify(nk) : null, modseq, m.id);
      if (oldFlags & Flag.Seen && !(nf & Flag.Seen)) unseenDelta++;
      if (!(oldFlags & Flag.Seen) && nf & Flag.Seen) unseenDelta--;
      updated.push({ uid, flags: nf, keywords: nk, modseq });
    }
    if (updated.length) s.mbFlags.run(modseq, unseenDelta, mailboxId);
    return { updated, unchanged, failed, modseq: updated.length ? modseq : (mb.highestmodseq as number) };
  }

  /** Copy inside the caller's transaction; `expunge` is the repository's expunge body for MOVE. */
  copy(fromMailboxId: number, uids: number[], toMailboxId: number, expunge: ((mailboxId: number, uids: number[]) => { uids: number[]; modseq: number }) | null): CopyOutcome {
    const s = this.stmts;
    return this.db
      .transaction((): CopyOutcome => {
        const dst = s.mailbox.get(toMailboxId) as Row | undefined;
        if (!dst || !s.mailbox.get(fromMailboxId)) return { ok: false, reason: 'no-mailbox' };
        const rows: Row[] = [];
        let bytes = 0;
        let unseen = 0;
        for (const uid of uids) {
          const m = s.row.get(fromMailboxId, uid) as Row | undefined;
          if (!m) continue;
          rows.push(m);
          bytes += m.size as number;
          if (!((m.flags as number) & Flag.Seen)) unseen++;
        }
        const quota = dst.quota_bytes as number;
        // A move within one account does not change its usage (RFC 9208 5: quota counts what is stored).
        if (!expunge && quota > 0 && (dst.used_bytes as number) + bytes > quota) return { ok: false, reason: 'over-quota' };
        let uid = dst.uidnext as number;
        const modseq = (dst.highestmodseq as number) + 1;
        const pairs: Array<[number, number]> = [];
        for (const m of rows) {
          s.insertCopy.run(toMailboxId, uid, modseq, m.id);
          s.blobRef.run(m.blob_id);
          pairs.push([m.uid as number, uid]);
          uid++;
        }
        if (rows.length) {
          s.mbAdd.run(uid, modseq, rows.length, unseen, bytes, toMailboxId);
          s.accAdd.run(bytes, rows.length, dst.account_id);
        }
        const out: CopyOutcome = { ok: true, uidValidity: dst.uidvalidity as number, pairs, modseq };
        if (expunge && rows.length) out.expungeModseq = expunge(fromMailboxId, pairs.map((p) => p[0])).modseq;
        return out;
      })
      .immediate();
  }

  vanished(mailboxId: number, sinceModseq: number, ranges?: Array<[number, number]>): number[] {
    const all = this.stmts.vanished.all(mailboxId, sinceModseq) as number[];
    return ranges ? all.filter((u) => rangesHas(ranges, u)) : all;
  }

  search(mailboxId: number, query: MessageQuery): SearchHit[] {
    const params: unknown[] = [mailboxId];
    const used: number[] = [];
    try {
      const where = this.compile(query, params, used);
      // Reads only columns of the covering index messages_meta (text keys through m.text_id).
      const sql = `SELECT m.uid AS uid, m.modseq AS modseq FROM messages m WHERE m.mailbox_id = ? AND (${where}) ORDER BY m.uid`;
      let stmt = this.searchStmts.get(sql);
      if (!stmt) {
        // Clients repeat the same few searches (UNSEEN, DELETED, a UID range): keep their prepared statements.
        if (this.searchStmts.size >= 64) this.searchStmts.delete(this.searchStmts.keys().next().value!);
        stmt = this.db.prepare(sql);
        this.searchStmts.set(sql, stmt);
      }
      return stmt.all(...params) as SearchHit[];
    } finally {
      for (const k of used) this.rangeSets.delete(k);
    }
  }

  private compile(q: MessageQuery, params: unknown[], used: number[]): string {
    switch (q.type) {
      case 'all':
        return '1';
      case 'none':
        return '0';
      case 'and':
        return q.keys.length ? q.keys.map((k) => `(${this.compile(k, params, used)})`).join(' AND ') : '1';
      case 'or':
        return `(${this.compile(q.left, params, used)}) OR (${this.compile(q.right, params, used)})`;
      case 'not':
        return `NOT coalesce((${this.compile(q.key, params, used)}), 0)`;
      case 'flag':
        params.push(q.mask);
        return q.set ? '(m.flags & ?) != 0' : '(m.flags & ?) = 0';
      case 'keyword':
        params.push(q.keyword.toLowerCase());
        return `${q.set ? '' : 'NOT '}EXISTS (SELECT 1 FROM json_each(coalesce(m.keywords, '[]')) WHERE lower(value) = ?)`;
      case 'header': {
        const hdr = '(SELECT headers FROM text_index WHERE rowid = m.text_id)';
        let pre = '';
        if ([...q.value].length >= 3) {
          params.push(`headers : ${phrase(q.value)}`);
          pre = 'm.text_id IN (SELECT rowid FROM text_index WHERE text_index MATCH ?) AND ';
        }
        params.push(q.field, q.value);
        return `${pre}coalesce(imap_header(${hdr}, ?, ?), 0)`;
      }
      case 'body':
      case 'text': {
        if (q.value === '') return '1';
        if ([...q.value].length >= 3) {
          params.push(q.type === 'body' ? `body : ${phrase(q.value)}` : phrase(q.value));
          return 'm.text_id IN (SELECT rowid FROM text_index WHERE text_index MATCH ?)';
        }
        // Shorter than a trigram: a scan of the mailbox's text (still correct, just slower).
        const col = q.type === 'body' ? 'body' : `headers || char(10) || body`;
        params.push(q.value.toLowerCase());
        return `coalesce(instr(lower((SELECT ${col} FROM text_index WHERE rowid = m.text_id)), ?), 0) > 0`;
      }
      case 'date': {
        const col = q.field === 'internal' ? 'm.internal_date' : 'm.sent_day';
        const parts: string[] = [];
        if (q.from !== null) {
          params.push(q.from);
          parts.push(`${col} >= ?`);
        }
        if (q.to !== null) {
          params.push(q.to);
          parts.push(`${col} < ?`);
        }
        return parts.length ? `coalesce(${parts.join(' AND ')}, 0)` : '1';
      }
      case 'size':
        params.push(q.size);
        return q.op === 'larger' ? 'm.size > ?' : 'm.size < ?';
      case 'uids': {
        if (q.ranges.length === 0) return '0';
        if (q.ranges.length <= 20) {
          const parts = q.ranges.map(([lo, hi]) => {
            params.push(lo, hi);
            return 'm.uid BETWEEN ? AND ?';
          });
          return parts.join(' OR ');
        }
        const key = ++this.rangeSeq;
        this.rangeSets.set(key, q.ranges);
        used.push(key);
        params.push(key);
        return 'imap_uid_in(m.uid, ?)';
      }
      case 'modseq':
        params.push(q.modseq);
        return 'm.modseq >= ?';
    }
  }

  sortData(mailboxId: number, uids: number[]): SortData[] {
    const out: SortData[] = [];
    for (const uid of uids) {
      const r = this.stmts.sortRow.get(mailboxId, uid) as Row | undefined;
      if (!r) continue;
      out.push({
        uid: r.uid as number,
        internalDate: r.internal_date as number,
        size: r.size as number,
        sentDate: (r.sent_date as number | null) ?? null,
        subject: (r.subject as string | null) ?? '',
        sortFrom: (r.sort_from as string | null) ?? '',
        sortTo: (r.sort_to as string | null) ?? '',
        sortCc: (r.sort_cc as string | null) ?? '',
        messageId: (r.message_id as string | null) ?? null,
        references: r.refs ? (r.refs as string).split(' ') : [],
      });
    }
    return out;
  }
}

function dedupe(keywords: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const k of keywords) {
    const l = k.toLowerCase();
    if (!seen.has(l)) {
      seen.add(l);
      out.push(k);
    }
  }
  return out;
}

function sameKeywords(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(b.map((k) => k.toLowerCase()));
  return a.every((k) => s.has(k.toLowerCase()));
}
