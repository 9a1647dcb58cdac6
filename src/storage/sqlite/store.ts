/**
 * SQLite backend (better-sqlite3, WAL, synchronous=FULL): every commit is durable when it returns.
 *
 * better-sqlite3 is synchronous; the async interface resolves immediately. Group commit happens one level up
 * (core/ingest batches appendMany calls), so one fsync covers many messages. Several processes (the server
 * and the CLI) may open the same database: WAL plus busy_timeout serialises their writers.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { migrate } from './schema.js';
import { FsBlobStore } from '../blob/fs-blob-store.js';
import {
  Flag,
  type Account,
  type Alias,
  type AppendOutcome,
  type BlobStore,
  type DirectoryRepo,
  type Domain,
  type Mailbox,
  type MailboxRepo,
  type MessageMeta,
  type MessageRepo,
  type NewMessage,
  type NewQueueEntry,
  type QueueEntry,
  type QueueRepo,
  type SpecialUse,
  type Store,
} from '../types.js';

type Row = Record<string, unknown>;

const accountFrom = (r: Row): Account => ({
  id: r.id as number,
  address: r.address as string,
  domain: r.domain as string,
  passwordHash: r.password_hash as string,
  quotaBytes: r.quota_bytes as number,
  usedBytes: r.used_bytes as number,
  messageCount: r.message_count as number,
  created: r.created as number,
  updated: r.updated as number,
});

const mailboxFrom = (r: Row): Mailbox => ({
  id: r.id as number,
  accountId: r.account_id as number,
  name: r.name as string,
  specialUse: (r.special_use as SpecialUse | null) ?? null,
  uidValidity: r.uidvalidity as number,
  uidNext: r.uidnext as number,
  highestModseq: r.highestmodseq as number,
  subscribed: !!r.subscribed,
  messageCount: r.message_count as number,
  unseenCount: r.unseen_count as number,
  totalSize: r.total_size as number,
});

const messageFrom = (r: Row): MessageMeta => ({
  id: r.id as number,
  mailboxId: r.mailbox_id as number,
  uid: r.uid as number,
  modseq: r.modseq as number,
  flags: r.flags as number,
  keywords: r.keywords ? (JSON.parse(r.keywords as string) as string[]) : [],
  internalDate: r.internal_date as number,
  size: r.size as number,
  blobId: r.blob_id as string,
  prefixLength: r.prefix_length as number,
});

const MESSAGE_COLS = 'id, mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id, length(prefix) AS prefix_length';

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly blobs: FsBlobStore;
  readonly directory: DirectoryRepo;
  readonly mailboxes: MailboxRepo;
  readonly messages: MessageRepo;
  readonly queue: QueueRepo;

  constructor(opts: { dataDir: string; now?: () => number }) {
    mkdirSync(opts.dataDir, { recursive: true });
    const now = opts.now ?? Date.now;
    this.db = new Database(path.join(opts.dataDir, 'postern.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    this.blobs = new FsBlobStore(path.join(opts.dataDir, 'blobs'));
    this.directory = new SqliteDirectory(this.db, now);
    this.mailboxes = new SqliteMailboxes(this.db);
    this.messages = new SqliteMessages(this.db);
    this.queue = new SqliteQueue(this.db, now);
  }

  async orphanBlobs(limit: number): Promise<string[]> {
    return (this.db.prepare('SELECT id FROM blobs WHERE refs <= 0 LIMIT ?').all(limit) as Row[]).map((r) => r.id as string);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** A uidvalidity that differs between recreations of a mailbox with the same name (RFC 9051 2.3.1.1). */
function newUidValidity(db: Database.Database): number {
  const max = (db.prepare('SELECT max(uidvalidity) AS m FROM mailboxes').get() as Row).m as number | null;
  const t = Math.floor(Date.now() / 1000) >>> 0;
  return Math.max(t, (max ?? 0) + 1) >>> 0;
}

class SqliteDirectory implements DirectoryRepo {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  async listDomains(): Promise<Domain[]> {
    return (this.db.prepare('SELECT name, created FROM domains ORDER BY name').all() as Row[]).map((r) => ({ name: r.name as string, created: r.created as number }));
  }
  async addDomain(name: string): Promise<boolean> {
    return this.db.prepare('INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(name, this.now()).changes > 0;
  }
  async deleteDomain(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM domains WHERE name = ?').run(name).changes > 0;
  }
  async isLocalDomain(name: string): Promise<boolean> {
    return !!this.db.prepare('SELECT 1 FROM domains WHERE name = ?').get(name);
  }
  async getAccount(address: string): Promise<Account | null> {
    const r = this.db.prepare('SELECT * FROM accounts WHERE address = ?').get(address) as Row | undefined;
    return r ? accountFrom(r) : null;
  }
  async getAccountById(id: number): Promise<Account | null> {
    const r = this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(id) as Row | undefined;
    return r ? accountFrom(r) : null;
  }
  async listAccounts(): Promise<Account[]> {
    return (this.db.prepare('SELECT * FROM accounts ORDER BY domain, address').all() as Row[]).map(accountFrom);
  }
  async createAccount(
    input: { address: string; domain: string; passwordHash: string; quotaBytes: number },
    mailboxes: { name: string; specialUse: SpecialUse | null }[],
  ): Promise<Account | null> {
    const t = this.now();
    return this.db
      .transaction(() => {
        if (this.db.prepare('SELECT 1 FROM accounts WHERE address = ?').get(input.address)) return null;
        this.db.prepare('INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(input.domain, t);
        const id = Number(
          this.db
            .prepare('INSERT INTO accounts(address, domain, password_hash, quota_bytes, created, updated) VALUES (?, ?, ?, ?, ?, ?)')
            .run(input.address, input.domain, input.passwordHash, input.quotaBytes, t, t).lastInsertRowid,
        );
        const ins = this.db.prepare('INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)');
        for (const mb of mailboxes) ins.run(id, mb.name, mb.specialUse, newUidValidity(this.db));
        return accountFrom(this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(id) as Row);
      })
      .immediate();
  }
  async setPassword(address: string, passwordHash: string): Promise<boolean> {
    return this.db.prepare('UPDATE accounts SET password_hash = ?, updated = ? WHERE address = ?').run(passwordHash, this.now(), address).changes > 0;
  }
  async setQuota(address: string, quotaBytes: number): Promise<boolean> {
    return this.db.prepare('UPDATE accounts SET quota_bytes = ?, updated = ? WHERE address = ?').run(quotaBytes, this.now(), address).changes > 0;
  }
  async deleteAccount(address: string): Promise<boolean> {
    return this.db
      .transaction(() => {
        const acc = this.db.prepare('SELECT id FROM accounts WHERE address = ?').get(address) as Row | undefined;
        if (!acc) return false;
        this.db
          .prepare(
            `UPDATE blobs SET refs = refs - (SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
               WHERE b.account_id = ? AND m.blob_id = blobs.id)
             WHERE id IN (SELECT m.blob_id FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?)`,
          )
          .run(acc.id, acc.id);
        this.db.prepare('DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)').run(acc.id);
        this.db.prepare('DELETE FROM mailboxes WHERE account_id = ?').run(acc.id);
        this.db.prepare('DELETE FROM accounts WHERE id = ?').run(acc.id);
        return true;
      })
      .immediate();
  }
  async listAliases(): Promise<Alias[]> {
    return (this.db.prepare('SELECT source, target FROM aliases ORDER BY source, target').all() as Row[]).map((r) => ({ source: r.source as string, target: r.target as string }));
  }
  async aliasTargets(source: string): Promise<string[]> {
    return (this.db.prepare('SELECT target FROM aliases WHERE source = ? ORDER BY target').all(source) as Row[]).map((r) => r.target as string);
  }
  async addAlias(source: string, target: string): Promise<boolean> {
    const t = this.now();
    return this.db
      .transaction(() => {
        const domain = source.slice(source.lastIndexOf('@') + 1);
        this.db.prepare('INSERT OR IGNORE INTO domains(name, created) VALUES (?, ?)').run(domain, t);
        return this.db.prepare('INSERT OR IGNORE INTO aliases(source, target, created) VALUES (?, ?, ?)').run(source, target, t).changes > 0;
      })
      .immediate();
  }
  async deleteAlias(source: string, target: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM aliases WHERE source = ? AND target = ?').run(source, target).changes > 0;
  }
}

class SqliteMailboxes implements MailboxRepo {
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

class SqliteMessages implements MessageRepo {
  private readonly stmts;
  constructor(private readonly db: Database.Database) {
    this.stmts = {
      mailbox: db.prepare('SELECT b.*, a.quota_bytes, a.used_bytes FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE b.id = ?'),
      bumpMailbox: db.prepare(
        'UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, message_count = message_count + 1, unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?',
      ),
      bumpAccount: db.prepare('UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE id = ?'),
      blobRef: db.prepare('INSERT INTO blobs(id, size, refs) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET refs = refs + 1'),
      insert: db.prepare('INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id, prefix, mime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      list: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid`),
      get: db.prepare(`SELECT ${MESSAGE_COLS} FROM messages WHERE mailbox_id = ? AND uid = ?`),
      mime: db.prepare('SELECT mime FROM messages WHERE id = ?'),
      prefix: db.prepare('SELECT prefix FROM messages WHERE id = ?'),
    };
  }

  async appendMany(items: NewMessage[]): Promise<AppendOutcome[]> {
    const s = this.stmts;
    return this.db
      .transaction(() =>
        items.map((item): AppendOutcome => {
          const mb = s.mailbox.get(item.mailboxId) as Row | undefined;
          if (!mb) return { ok: false, reason: 'no-mailbox' };
          const size = item.prefix.length + item.blobSize;
          const quota = mb.quota_bytes as number;
          if (!item.ignoreQuota && quota > 0 && (mb.used_bytes as number) + size > quota) return { ok: false, reason: 'over-quota' };
          const uid = mb.uidnext as number;
          const modseq = (mb.highestmodseq as number) + 1;
          s.bumpMailbox.run(item.flags & Flag.Seen ? 0 : 1, size, item.mailboxId);
          s.bumpAccount.run(size, mb.account_id);
          s.blobRef.run(item.blobId, item.blobSize);
          const kw = item.keywords.length ? JSON.stringify(item.keywords) : null;
          const id = Number(s.insert.run(item.mailboxId, uid, modseq, item.flags, kw, item.internalDate, size, item.blobId, item.prefix, item.mime === undefined ? null : JSON.stringify(item.mime)).lastInsertRowid);
          return {
            ok: true,
            accountId: mb.account_id as number,
            uidValidity: mb.uidvalidity as number,
            message: { id, mailboxId: item.mailboxId, uid, modseq, flags: item.flags, keywords: item.keywords, internalDate: item.internalDate, size, blobId: item.blobId, prefixLength: item.prefix.length },
          };
        }),
      )
      .immediate();
  }
  async list(mailboxId: number): Promise<MessageMeta[]> {
    return (this.stmts.list.all(mailboxId) as Row[]).map(messageFrom);
  }
  async get(mailboxId: number, uid: number): Promise<MessageMeta | null> {
    const r = this.stmts.get.get(mailboxId, uid) as Row | undefined;
    return r ? messageFrom(r) : null;
  }
  async mime(messageId: number): Promise<unknown> {
    const r = this.stmts.mime.get(messageId) as Row | undefined;
    return r?.mime ? JSON.parse(r.mime as string) : null;
  }
  async prefix(messageId: number): Promise<Buffer> {
    const r = this.stmts.prefix.get(messageId) as Row | undefined;
    return (r?.prefix as Buffer | undefined) ?? Buffer.alloc(0);
  }
}

class SqliteQueue implements QueueRepo {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  async enqueue(e: NewQueueEntry): Promise<QueueEntry> {
    const id = randomBytes(9).toString('base64url');
    const t = this.now();
    this.db
      .transaction(() => {
        this.db.prepare('INSERT INTO blobs(id, size, refs) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET refs = refs + 1').run(e.blobId, e.size - e.prefix.length);
        this.db
          .prepare('INSERT INTO queue(id, sender, blob_id, prefix, size, created, account_id, envid, ret, smtputf8, body8bit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(id, e.sender, e.blobId, e.prefix, e.size, t, e.accountId, e.envid, e.ret, e.smtputf8 ? 1 : 0, e.body8bit ? 1 : 0);
        const ins = this.db.prepare('INSERT INTO queue_recipients(queue_id, address, orcpt, notify, next_attempt) VALUES (?, ?, ?, ?, ?)');
        for (const r of e.recipients) ins.run(id, r.address, r.orcpt, r.notify ? r.notify.join(',') : null, t);
      })
      .immediate();
    return (await this.get(id))!;
  }
  async list(): Promise<QueueEntry[]> {
    const ids = (this.db.prepare('SELECT id FROM queue ORDER BY created, id').all() as Row[]).map((r) => r.id as string);
    const out: QueueEntry[] = [];
    for (const id of ids) {
      const e = await this.get(id);
      if (e) out.push(e);
    }
    return out;
  }
  async get(id: string): Promise<QueueEntry | null> {
    const r = this.db.prepare('SELECT * FROM queue WHERE id = ?').get(id) as Row | undefined;
    if (!r) return null;
    const rcpts = this.db.prepare('SELECT * FROM queue_recipients WHERE queue_id = ? ORDER BY id').all(id) as Row[];
    return {
      id,
      sender: r.sender as string,
      blobId: r.blob_id as string,
      size: r.size as number,
      created: r.created as number,
      accountId: (r.account_id as number | null) ?? null,
      envid: (r.envid as string | null) ?? null,
      ret: (r.ret as 'FULL' | 'HDRS' | null) ?? null,
      smtputf8: !!r.smtputf8,
      body8bit: !!r.body8bit,
      recipients: rcpts.map((x) => ({
        id: x.id as number,
        address: x.address as string,
        orcpt: (x.orcpt as string | null) ?? null,
        notify: x.notify ? (x.notify as string).split(',') : null,
        status: x.status as QueueEntry['recipients'][number]['status'],
        attempts: x.attempts as number,
        nextAttempt: x.next_attempt as number,
        lastError: (x.last_error as string | null) ?? null,
      })),
    };
  }
  async prefix(id: string): Promise<Buffer> {
    const r = this.db.prepare('SELECT prefix FROM queue WHERE id = ?').get(id) as Row | undefined;
    return (r?.prefix as Buffer | undefined) ?? Buffer.alloc(0);
  }
  async delete(id: string): Promise<boolean> {
    return this.db
      .transaction(() => {
        const r = this.db.prepare('SELECT blob_id FROM queue WHERE id = ?').get(id) as Row | undefined;
        if (!r) return false;
        this.db.prepare('UPDATE blobs SET refs = refs - 1 WHERE id = ?').run(r.blob_id);
        this.db.prepare('DELETE FROM queue WHERE id = ?').run(id);
        return true;
      })
      .immediate();
  }
}

export type { BlobStore };
