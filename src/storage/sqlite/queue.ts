/**
 * The outbound queue in SQLite: one `queue` row per message, one `queue_recipients` row per recipient with its
 * own status, attempt count, next attempt time and last result (Mox's queue.Msg, Postfix's per-recipient
 * status in the queue file). Every write is one IMMEDIATE transaction, durable on return (synchronous=FULL).
 *
 * Invariants:
 *  - a recipient is 'queued' (waiting or leased), 'held', 'delivered' or 'failed'; only 'queued' ones are due;
 *  - a lease (lease_until > now) is held by the one runner in this data dir; clearLeases() at runner start
 *    makes recipients whose attempt was cut short by a crash due again (at most the in-flight attempt repeats);
 *  - an entry is deleted only when no recipient is queued/held and no DSN is pending, so a crash between a
 *    final result and its DSN never loses the DSN.
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { DueRecipient, NewQueueEntry, QueueAttempt, QueueEntry, QueueRepo, QueueResult, QueueTlsInfo, RelayRoute } from '../types.js';
import { prep, type Row } from './rows.js';

const parseTls = (v: unknown): QueueTlsInfo | null => (typeof v === 'string' && v ? (JSON.parse(v) as QueueTlsInfo) : null);

const dueFrom = (r: Row): DueRecipient => ({
  queueId: r.queue_id as string,
  recipientId: r.id as number,
  address: r.address as string,
  sender: r.sender as string,
  created: r.created as number,
});

export class SqliteQueue implements QueueRepo {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
    /**
     * Runs a write transaction in its turn with the store's writer thread (SqliteStore: the WriteGate), so it never
     * sleeps in SQLite's busy handler on the event loop while the thread holds the lock.
     */
    private readonly turn: <T>(fn: () => T) => Promise<T> = async (fn) => fn(),
  ) {
    // The domain of an address as the queue runner keys its destinations (core/queue.ts): what follows the last
    // '@', lower-cased by JavaScript (Unicode), where SQLite's lower() folds ASCII only; '' without an '@'.
    db.function('mail_domain', { deterministic: true }, (a: unknown) => (typeof a === 'string' && a.includes('@') ? a.slice(a.lastIndexOf('@') + 1).toLowerCase() : ''));
  }

  async enqueue(e: NewQueueEntry): Promise<QueueEntry> {
    const id = randomBytes(9).toString('base64url');
    const t = this.now();
    await this.turn(() =>
      this.db
        .transaction(() => {
          this.db.prepare('INSERT INTO blobs(id, size, refs) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET refs = refs + 1').run(e.blobId, e.size - e.prefix.length);
          this.db
            .prepare('INSERT INTO queue(id, sender, blob_id, prefix, size, created, account_id, envid, ret, smtputf8, body8bit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
            .run(id, e.sender, e.blobId, e.prefix, e.size, t, e.accountId, e.envid, e.ret, e.smtputf8 ? 1 : 0, e.body8bit ? 1 : 0);
          const ins = this.db.prepare('INSERT INTO queue_recipients(queue_id, address, orcpt, notify, next_attempt) VALUES (?, ?, ?, ?, ?)');
          for (const r of e.recipients) ins.run(id, r.address, r.orcpt, r.notify ? r.notify.join(',') : null, t);
        })
        .immediate(),
    );
    return (await this.get(id))!;
  }
  async list(): Promise<QueueEntry[]> {
    const ids = (this.db.prepare('SELECT id FROM queue ORDER BY created, id').all() as Row[]).map((r) => r.id as string);
    const out: QueueEntry[] = [];
    for (const id of ids) {
      const e = await this.get(id, false);
      if (e) out.push(e);
    }
    return out;
  }
  async get(id: string, withAttempts = true): Promise<QueueEntry | null> {
    const r = this.db.prepare('SELECT * FROM queue WHERE id = ?').get(id) as Row | undefined;
    if (!r) return null;
    const rcpts = this.db.prepare('SELECT * FROM queue_recipients WHERE queue_id = ? ORDER BY id').all(id) as Row[];
    const entry: QueueEntry = {
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
        lastAttempt: (x.last_attempt as number | null) ?? null,
        statusCode: (x.status_code as string | null) ?? null,
        remoteMta: (x.remote_mta as string | null) ?? null,
        tls: parseTls(x.tls),
        dsnPending: (x.dsn_pending as 'failed' | 'delayed' | 'relayed' | null) ?? null,
        delayNotified: !!x.delay_notified,
      })),
    };
    if (withAttempts) {
      const rows = this.db.prepare('SELECT * FROM (SELECT * FROM queue_attempts WHERE queue_id = ? ORDER BY id DESC LIMIT 50) ORDER BY id').all(id) as Row[];
      entry.attempts = rows.map(
        (a): QueueAttempt => ({
          at: a.at as number,
          recipientId: a.recipient_id as number,
          status: a.status as string,
          statusCode: a.status_code as string,
          diagnostic: a.diagnostic as string,
          remoteMta: (a.remote_mta as string | null) ?? null,
          tls: parseTls(a.tls),
        }),
      );
    }
    return entry;
  }
  async prefix(id: string): Promise<Buffer> {
    const r = this.db.prepare('SELECT prefix FROM queue WHERE id = ?').get(id) as Row | undefined;
    return (r?.prefix as Buffer | undefined) ?? Buffer.alloc(0);
  }
  /** Inside a transaction: drops the entry (recipients cascade) and releases its blob reference. */
  private removeEntry(id: string): boolean {
    const r = this.db.prepare('SELECT blob_id FROM queue WHERE id = ?').get(id) as Row | undefined;
    if (!r) return false;
    this.db.prepare('UPDATE blobs SET refs = refs - 1 WHERE id = ?').run(r.blob_id);
    this.db.prepare('DELETE FROM queue WHERE id = ?').run(id);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    return this.turn(() =>
      this.db
        .transaction(() => {
          return this.removeEntry(id);
        })
        .immediate(),
    );
  }

  async due(now: number, limit: number, skip?: { recipientDomains: string[]; senderDomains: string[] }): Promise<DueRecipient[]> {
    const base = `SELECT r.id, r.queue_id, r.address, q.sender, q.created FROM queue_recipients r JOIN queue q ON q.id = r.queue_id
         WHERE r.status = 'queued' AND r.next_attempt <= ? AND r.lease_until <= ?`;
    const order = 'ORDER BY r.next_attempt, q.created, r.id LIMIT ?';
    if (!skip || (!skip.recipientDomains.length && !skip.senderDomains.length)) {
      return (prep(this.db, `${base} ${order}`).all(now, now, limit) as Row[]).map(dueFrom);
    }
    const sql = `${base} AND mail_domain(r.address) NOT IN (SELECT value FROM json_each(?)) AND mail_domain(q.sender) NOT IN (SELECT value FROM json_each(?)) ${order}`;
    return (prep(this.db, sql).all(now, now, JSON.stringify(skip.recipientDomains), JSON.stringify(skip.senderDomains), limit) as Row[]).map(dueFrom);
  }
  async lease(ids: number[], now: number, until: number): Promise<number[]> {
    if (!ids.length) return [];
    return this.turn(() =>
      this.db
        .transaction(() => {
          const upd = this.db.prepare(`UPDATE queue_recipients SET lease_until = ? WHERE id = ? AND status = 'queued' AND lease_until <= ?`);
          return ids.filter((id) => upd.run(until, id, now).changes === 1);
        })
        .immediate(),
    );
  }
  async clearLeases(): Promise<void> {
    await this.turn(() => this.db.prepare('UPDATE queue_recipients SET lease_until = 0 WHERE lease_until != 0').run());
  }
  async recordResults(queueId: string, results: QueueResult[], at: number): Promise<void> {
    if (!results.length) return;
    await this.turn(() =>
      this.db
        .transaction(() => {
          const upd = this.db.prepare(
            `UPDATE queue_recipients SET status = ?, attempts = attempts + 1, next_attempt = ?, last_error = ?, last_attempt = ?, status_code = ?,
               remote_mta = ?, tls = ?, lease_until = 0, dsn_pending = coalesce(?, dsn_pending) WHERE id = ? AND queue_id = ?`,
    );
        const hist = this.db.prepare('INSERT INTO queue_attempts(queue_id, recipient_id, at, status, status_code, diagnostic, remote_mta, tls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
        for (const r of results) {
          const tls = r.tls ? JSON.stringify(r.tls) : null;
          // A held recipient stays held (hold during an attempt); its result is still recorded.
          const cur = this.db.prepare('SELECT status FROM queue_recipients WHERE id = ?').get(r.recipientId) as Row | undefined;
          const status = cur?.status === 'held' && r.status === 'queued' ? 'held' : r.status;
          upd.run(status, r.nextAttempt ?? at, r.diagnostic, at, r.statusCode, r.remoteMta, tls, r.dsnPending, r.recipientId, queueId);
          hist.run(queueId, r.recipientId, at, r.status, r.statusCode, r.diagnostic, r.remoteMta, tls);
        }
      })
      .immediate(),
  );
  }
  async nextDue(): Promise<number | null> {
    const r = this.db.prepare(`SELECT min(next_attempt) AS t FROM queue_recipients WHERE status = 'queued'`).get() as Row;
    return (r.t as number | null) ?? null;
  }
  async delayed(createdBefore: number, limit: number): Promise<DueRecipient[]> {
    const rows = this.db
      .prepare(
        `SELECT r.id, r.queue_id, r.address, q.sender, q.created FROM queue_recipients r JOIN queue q ON q.id = r.queue_id
         WHERE r.status = 'queued' AND r.delay_notified = 0 AND r.attempts > 0 AND q.created < ? ORDER BY q.created LIMIT ?`,
      )
      .all(createdBefore, limit) as Row[];
    return rows.map(dueFrom);
  }
  async markDelayNotified(ids: number[], dsn: boolean): Promise<void> {
    await this.turn(() =>
      this.db
        .transaction(() => {
          const upd = this.db.prepare(`UPDATE queue_recipients SET delay_notified = 1, dsn_pending = CASE WHEN ? THEN coalesce(dsn_pending, 'delayed') ELSE dsn_pending END WHERE id = ?`);
          for (const id of ids) upd.run(dsn ? 1 : 0, id);
        })
        .immediate(),
    );
  }
  async withPendingDsn(limit: number): Promise<string[]> {
    return (this.db.prepare('SELECT DISTINCT queue_id FROM queue_recipients WHERE dsn_pending IS NOT NULL LIMIT ?').all(limit) as Row[]).map((r) => r.queue_id as string);
  }
  async dsnDone(ids: number[]): Promise<void> {
    await this.turn(() =>
      this.db
        .transaction(() => {
          const upd = this.db.prepare('UPDATE queue_recipients SET dsn_pending = NULL WHERE id = ?');
          for (const id of ids) upd.run(id);
        })
        .immediate(),
    );
  }
  async deleteIfComplete(id: string): Promise<boolean> {
    return this.turn(() =>
      this.db
        .transaction(() => {
          const open = this.db
            .prepare(`SELECT count(*) AS n FROM queue_recipients WHERE queue_id = ? AND (status IN ('queued', 'held') OR dsn_pending IS NOT NULL)`)
            .get(id) as Row;
          if ((open.n as number) > 0) return false;
          return this.removeEntry(id);
        })
        .immediate(),
    );
  }
  async hold(id: string): Promise<number> {
    return this.turn(() => this.db.prepare(`UPDATE queue_recipients SET status = 'held' WHERE queue_id = ? AND status = 'queued'`).run(id).changes);
  }
  async release(id: string, now: number): Promise<number> {
    return this.turn(() => this.db.prepare(`UPDATE queue_recipients SET status = 'queued', next_attempt = ? WHERE queue_id = ? AND status = 'held'`).run(now, id).changes);
  }
  async retryNow(id: string | null, now: number): Promise<number> {
    if (id === null) return this.turn(() => this.db.prepare(`UPDATE queue_recipients SET next_attempt = ? WHERE status = 'queued' AND next_attempt > ?`).run(now, now).changes);
    return this.turn(() => this.db.prepare(`UPDATE queue_recipients SET next_attempt = ? WHERE queue_id = ? AND status = 'queued'`).run(now, id).changes);
  }

  async relayRoutes(): Promise<RelayRoute[]> {
    return (this.db.prepare('SELECT * FROM relay_routes ORDER BY domain').all() as Row[]).map(routeFrom);
  }
  async relayRoute(domain: string): Promise<RelayRoute | null> {
    const r = this.db.prepare('SELECT * FROM relay_routes WHERE domain = ?').get(domain.toLowerCase()) as Row | undefined;
    return r ? routeFrom(r) : null;
  }
  async setRelayRoute(domain: string, change: Partial<Omit<RelayRoute, 'domain'>>): Promise<RelayRoute> {
    const d = domain.toLowerCase();
    return this.turn(() =>
      this.db
        .transaction(() => {
          const cur = (this.db.prepare('SELECT * FROM relay_routes WHERE domain = ?').get(d) as Row | undefined) ?? null;
          const next: RelayRoute = { ...(cur ? routeFrom(cur) : { domain: d, host: null, username: null, password: null, excluded: false }), ...change, domain: d };
          this.db
            .prepare('INSERT OR REPLACE INTO relay_routes(domain, host, username, password, excluded) VALUES (?, ?, ?, ?, ?)')
            .run(d, next.host, next.username, next.password, next.excluded ? 1 : 0);
          return next;
        })
        .immediate(),
    );
  }
}

function routeFrom(r: Row): RelayRoute {
  return {
    domain: r.domain as string,
    host: (r.host as string | null) ?? null,
    username: (r.username as string | null) ?? null,
    password: (r.password as string | null) ?? null,
    excluded: !!r.excluded,
  };
}
