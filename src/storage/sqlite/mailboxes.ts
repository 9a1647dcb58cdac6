import type Database from 'better-sqlite3';
import type { Mailbox, MailboxRepo, SpecialUse } from '../types.js';
import { mailboxFrom, newUidValidity, type Row } from './rows.js';

export class SqliteMailboxes implements MailboxRepo {
  constructor(private readonly db: Database.Database) {}
  async list(accountId: number): Promise<Mailbox[]> {
    return (this.db.prepare('SELECT * FROM mailboxes WHERE account_id = ? ORDER BY name').all(accountId) as Row[]).map(mailboxFrom);
  }
  async get(accountId: number, name: string): Promise<Mailbox | null> {
    const r = this.db.prepare('SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async getById(id: number): Promise<Mailbox | null> {
    const r = this.db.prepare('SELECT * FROM mailboxes WHERE id = ?').get(id) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async bySpecialUse(accountId: number, use: SpecialUse): Promise<Mailbox | null> {
    const r = this.db.prepare('SELECT * FROM mailboxes WHERE account_id = ? AND special_use = ? ORDER BY id LIMIT 1').get(accountId, use) as Row | undefined;
    return r ? mailboxFrom(r) : null;
  }
  async create(accountId: number, name: string, specialUse: SpecialUse | null): Promise<Mailbox | null> {
    return this.db
      .transaction(() => {
        if (this.db.prepare('SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, name)) return null;
        const id = this.db.prepare('INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)').run(accountId, name, specialUse, newUidValidity(this.db)).lastInsertRowid;
        return mailboxFrom(this.db.prepare('SELECT * FROM mailboxes WHERE id = ?').get(id) as Row);
      })
      .immediate();
  }
}

