/**
 * SQLite side of ImapExtraRepo (storage/types.ts): IMAP data the message repository does not serve.
 *
 * keywordsInUse reads the keyword JSON of the mailbox's messages that have any; the partial index
 * messages_keywords (created here, IF NOT EXISTS, so it needs no schema migration slot) means messages without
 * keywords, usually most of a large mailbox, are never visited.
 */
import type Database from 'better-sqlite3';
import type { ImapExtraRepo } from '../types.js';

export class SqliteImapExtra implements ImapExtraRepo {
  private readonly keywordsStmt;

  constructor(db: Database.Database) {
    db.exec('CREATE INDEX IF NOT EXISTS messages_keywords ON messages(mailbox_id) WHERE keywords IS NOT NULL');
    this.keywordsStmt = db
      .prepare("SELECT DISTINCT j.value FROM messages m, json_each(m.keywords) j WHERE m.mailbox_id = ? AND m.keywords IS NOT NULL AND j.type = 'text'")
      .pluck();
  }

  async keywordsInUse(mailboxId: number): Promise<string[]> {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const k of this.keywordsStmt.all(mailboxId) as string[]) {
      const l = k.toLowerCase();
      if (seen.has(l)) continue;
      seen.add(l);
      out.push(k);
    }
    return out;
  }
}
