import type Database from 'better-sqlite3';
import type { GroupCommit, Mailbox, MailboxRepo, SpecialUse } from '../types.js';
import { mailboxFrom, newUidValidity, prep, type Row } from './rows.js';

export class SqliteMailboxes implements MailboxRepo {
  constructor(
    private readonly db: Database.Database,
    /** Writes that need no fsync before their answer (the \Recent claim) take their turn through it. */
    private readonly gc?: GroupCommit,
    /** Runs the \Recent claim's write elsewhere (SqliteMessages: on the writer thread); else here. */
    private readonly claimWriter?: (mailboxId: number, uidNext: number) => Promise<number>,
    /** Runs a write transaction in its turn with the store's writer thread (SqliteStore: the WriteGate). */
    private readonly turn: <T>(fn: () => T) => Promise<T> = async (fn) => fn(),
  ) {}
  async list(accountId: number): Promise<Mailbox[]> {
    return (prep(this.db, 'SELECT * FROM mailboxes WHERE account_id = ? ORDER BY name').all(accountId) as Row[]).map(mailboxFrom);
  }
  async get(accountId: number, name: string): Promise<Mailbox | null> {
    const r = prep(this.db, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async getById(id: number): Promise<Mailbox | null> {
    const r = prep(this.db, 'SELECT * FROM mailboxes WHERE id = ?').get(id) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async bySpecialUse(accountId: number, use: SpecialUse): Promise<Mailbox | null> {
    const r = prep(this.db, 'SELECT * FROM mailboxes WHERE account_id = ? AND special_use = ? ORDER BY id LIMIT 1').get(accountId, use) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async create(accountId: number, name: string, specialUse: SpecialUse | null): Promise<Mailbox | null> {
    return this.turn(() =>
      this.db
        .transaction(() => {
          if (prep(this.db, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name)) return null;
          const id = prep(this.db, 'INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)').run(accountId, name, specialUse, newUidValidity(this.db)).lastInsertRowid;
          return mailboxFrom(prep(this.db, 'SELECT * FROM mailboxes WHERE id = ?').get(id) as Row);
        })
        .immediate(),
    );
  }

  async rename(accountId: number, from: string, to: string): Promise<boolean> {
    const db = this.db;
    return this.turn(() =>
      db
        .transaction(() => {
          const src = prep(db, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, from) as Row | undefined;
          if (!src || prep(db, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, to)) return false;
          if (from === 'INBOX') {
            // RFC 9051 6.3.6: all messages move to a new mailbox; INBOX stays, empty; its inferiors are not renamed.
            const id = prep(db, 'INSERT INTO mailboxes(account_id, name, special_use, uidvalidity, uidnext, highestmodseq, message_count, unseen_count, total_size) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?)')
              .run(accountId, to, newUidValidity(db), src.uidnext, (src.highestmodseq as number) + 1, src.message_count, src.unseen_count, src.total_size).lastInsertRowid;
            const modseq = (src.highestmodseq as number) + 1;
            prep(db, 'INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?').run(modseq, src.id);
            prep(db, 'UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?').run(id, src.id);
            prep(db, 'UPDATE mailboxes SET highestmodseq = ?, message_count = 0, unseen_count = 0, total_size = 0 WHERE id = ?').run(modseq, src.id);
            return true;
          }
          const prefix = from + '/';
          const kids = prep(db, 'SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?').all(accountId, prefix.length, prefix) as Row[];
          for (const k of kids) {
            const nn = to + '/' + (k.name as string).slice(prefix.length);
            if (prep(db, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, nn)) return false;
          }
          prep(db, 'UPDATE mailboxes SET name = ? WHERE id = ?').run(to, src.id);
          for (const k of kids) prep(db, 'UPDATE mailboxes SET name = ? WHERE id = ?').run(to + '/' + (k.name as string).slice(prefix.length), k.id);
          return true;
        })
        .immediate(),
    );
  }

  async delete(mailboxId: number): Promise<boolean> {
    const db = this.db;
    return this.turn(() =>
      db
        .transaction(() => {
          const mb = prep(db, 'SELECT * FROM mailboxes WHERE id = ?').get(mailboxId) as Row | undefined;
          if (!mb) return false;
          prep(db, 'UPDATE blobs SET refs = refs - (SELECT count(*) FROM messages m WHERE m.mailbox_id = ? AND m.blob_id = blobs.id) WHERE id IN (SELECT blob_id FROM messages WHERE mailbox_id = ?)').run(mailboxId, mailboxId);
          const t = prep(db, 'SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM messages WHERE mailbox_id = ?').get(mailboxId) as Row;
          prep(db, 'UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - ? WHERE id = ?').run(t.bytes, t.n, mb.account_id);
          prep(db, 'DELETE FROM messages WHERE mailbox_id = ?').run(mailboxId);
          prep(db, 'DELETE FROM expunged WHERE mailbox_id = ?').run(mailboxId);
          prep(db, 'DELETE FROM mailboxes WHERE id = ?').run(mailboxId);
          return true;
        })
        .immediate(),
    );
  }

  async setSubscribed(mailboxId: number, subscribed: boolean): Promise<void> {
    await this.turn(() => prep(this.db, 'UPDATE mailboxes SET subscribed = ? WHERE id = ?').run(subscribed ? 1 : 0, mailboxId));
  }

  /**
   * Claims of this process not yet in the database, by mailbox id and UIDVALIDITY (a mailbox deleted and created
   * again may get the same id): the IMAP sessions that claim \Recent all live in this process, so the claim is
   * decided here, synchronously, and written behind through claimWriter (the writer thread). SELECT and the
   * EXISTS after an APPEND then answer without waiting for a write. A claim lost to a crash only shows a message
   * as \Recent once more (RFC 3501 2.3.2 allows that).
   */
  private readonly claims = new Map<string, number>();

  /**
   * `known`: the mailbox row as the caller just read it (SELECT), saving a read here; as good as reading it now,
   * since the claims of this process not yet written are in `claims` either way.
   */
  async claimRecent(mailboxId: number, uidNext: number, known?: Pick<Mailbox, 'uidValidity' | 'firstRecentUid'>): Promise<number> {
    const r =
      known?.firstRecentUid !== undefined
        ? { first_recent_uid: known.firstRecentUid, uidvalidity: known.uidValidity }
        : (prep(this.db, 'SELECT first_recent_uid, uidvalidity FROM mailboxes WHERE id = ?').get(mailboxId) as Row | undefined);
    if (!r) return uidNext;
    const key = `${mailboxId}/${r.uidvalidity as number}`;
    const first = Math.max(r.first_recent_uid as number, this.claims.get(key) ?? 0);
    // Nothing to claim (every UID below uidNext already claimed): no write at all.
    if (uidNext <= first) return first;
    if (this.claimWriter) {
      this.claims.set(key, uidNext);
      // The database's value only grows (claimRecentTx), so writes landing out of order do no harm; once this one
      // is in, the entry is no longer needed.
      void this.claimWriter(mailboxId, uidNext)
        .catch(() => undefined)
        .finally(() => {
          if (this.claims.get(key) === uidNext) this.claims.delete(key);
        });
      return first;
    }
    // No fsync on the event loop for this one (every SELECT): a claim lost to a power cut only shows a message
    // as \Recent once more; the next durable commit's WAL sync covers it anyway.
    return this.gc ? this.gc.deferSyncInTurn(() => claimRecentTx(this.db, mailboxId, uidNext)) : claimRecentTx(this.db, mailboxId, uidNext);
  }
}

/** The \Recent claim (SqliteMailboxes.claimRecent): one IMMEDIATE transaction, on whichever connection runs it. */
export function claimRecentTx(db: Database.Database, mailboxId: number, uidNext: number): number {
  return db
    .transaction(() => {
      const r = prep(db, 'SELECT first_recent_uid FROM mailboxes WHERE id = ?').get(mailboxId) as Row | undefined;
      if (!r) return uidNext;
      const first = r.first_recent_uid as number;
      if (uidNext > first) prep(db, 'UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?').run(uidNext, mailboxId);
      return first;
    })
    .immediate();
}

