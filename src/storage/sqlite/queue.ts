import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { NewQueueEntry, QueueEntry, QueueRepo } from '../types.js';
import type { Row } from './rows.js';

export class SqliteQueue implements QueueRepo {
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

