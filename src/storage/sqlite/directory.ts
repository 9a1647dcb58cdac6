import type Database from 'better-sqlite3';
import type { Account, Alias, DirectoryRepo, Domain, SpecialUse } from '../types.js';
import { accountFrom, newUidValidity, prep, type Row } from './rows.js';

export class SqliteDirectory implements DirectoryRepo {
  /** Statements of the per-message lookups (RCPT, delivery, login), prepared once: preparing costs more than running. */
  private readonly hot;
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.hot = {
      isLocalDomain: prep(db, 'SELECT 1 FROM domains WHERE name = ?'),
      getAccount: prep(db, 'SELECT * FROM accounts WHERE address = ?'),
      getAccountById: prep(db, 'SELECT * FROM accounts WHERE id = ?'),
      aliasTargets: prep(db, 'SELECT target FROM aliases WHERE source = ? ORDER BY target'),
    };
  }

  async listDomains(): Promise<Domain[]> {
    return (prep(this.db, 'SELECT name, created FROM domains ORDER BY name').all() as Row[]).map((r) => ({ name: r.name as string, created: r.created as number }));
  }
  async addDomain(name: string): Promise<boolean> {
    return prep(this.db, 'INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(name, this.now()).changes > 0;
  }
  async deleteDomain(name: string): Promise<boolean> {
    return prep(this.db, 'DELETE FROM domains WHERE name = ?').run(name).changes > 0;
  }
  async isLocalDomain(name: string): Promise<boolean> {
    return !!this.hot.isLocalDomain.get(name);
  }
  async getAccount(address: string): Promise<Account | null> {
    const r = this.hot.getAccount.get(address) as Row | undefined;
    return r ? accountFrom(r) : null;
  }
  async getAccountById(id: number): Promise<Account | null> {
    const r = this.hot.getAccountById.get(id) as Row | undefined;
    return r ? accountFrom(r) : null;
  }
  async listAccounts(): Promise<Account[]> {
    return (prep(this.db, 'SELECT * FROM accounts ORDER BY domain, address').all() as Row[]).map(accountFrom);
  }
  async createAccount(
    input: { address: string; domain: string; passwordHash: string; quotaBytes: number },
    mailboxes: { name: string; specialUse: SpecialUse | null }[],
  ): Promise<Account | null> {
    const t = this.now();
    return this.db
      .transaction(() => {
        if (prep(this.db, 'SELECT 1 FROM accounts WHERE address = ?').get(input.address)) return null;
        prep(this.db, 'INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(input.domain, t);
        const id = Number(
          this.db
            .prepare('INSERT INTO accounts(address, domain, password_hash, quota_bytes, created, updated) VALUES (?, ?, ?, ?, ?, ?)')
            .run(input.address, input.domain, input.passwordHash, input.quotaBytes, t, t).lastInsertRowid,
        );
        const ins = prep(this.db, 'INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)');
        for (const mb of mailboxes) ins.run(id, mb.name, mb.specialUse, newUidValidity(this.db));
        return accountFrom(prep(this.db, 'SELECT * FROM accounts WHERE id = ?').get(id) as Row);
      })
      .immediate();
  }
  async setPassword(address: string, passwordHash: string): Promise<boolean> {
    return prep(this.db, 'UPDATE accounts SET password_hash = ?, updated = ? WHERE address = ?').run(passwordHash, this.now(), address).changes > 0;
  }
  async setQuota(address: string, quotaBytes: number): Promise<boolean> {
    return prep(this.db, 'UPDATE accounts SET quota_bytes = ?, updated = ? WHERE address = ?').run(quotaBytes, this.now(), address).changes > 0;
  }
  async deleteAccount(address: string): Promise<boolean> {
    return this.db
      .transaction(() => {
        const acc = prep(this.db, 'SELECT id FROM accounts WHERE address = ?').get(address) as Row | undefined;
        if (!acc) return false;
        this.db
          .prepare(
            `UPDATE blobs SET refs = refs - (SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
               WHERE b.account_id = ? AND m.blob_id = blobs.id)
             WHERE id IN (SELECT m.blob_id FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?)`,
          )
          .run(acc.id, acc.id);
        prep(this.db, 'DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)').run(acc.id);
        prep(this.db, 'DELETE FROM mailboxes WHERE account_id = ?').run(acc.id);
        prep(this.db, 'DELETE FROM accounts WHERE id = ?').run(acc.id);
        return true;
      })
      .immediate();
  }
  async listAliases(): Promise<Alias[]> {
    return (prep(this.db, 'SELECT source, target FROM aliases ORDER BY source, target').all() as Row[]).map((r) => ({ source: r.source as string, target: r.target as string }));
  }
  async aliasTargets(source: string): Promise<string[]> {
    return (this.hot.aliasTargets.all(source) as Row[]).map((r) => r.target as string);
  }
  async addAlias(source: string, target: string): Promise<boolean> {
    const t = this.now();
    return this.db
      .transaction(() => {
        const domain = source.slice(source.lastIndexOf('@') + 1);
        prep(this.db, 'INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(domain, t);
        return prep(this.db, 'INSERT OR IGNORE INTO aliases(source, target, created) VALUES (?, ?, ?)').run(source, target, t).changes > 0;
      })
      .immediate();
  }
  async deleteAlias(source: string, target: string): Promise<boolean> {
    return prep(this.db, 'DELETE FROM aliases WHERE source = ? AND target = ?').run(source, target).changes > 0;
  }
}

